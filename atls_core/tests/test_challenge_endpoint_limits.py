"""The challenge endpoint spends issuer calls under the same bounds as per-connection
certificates: anyone who can open a TLS connection could otherwise make the server quote
without limit."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import pytest

from atls_core.errors import ATLSVerificationError
from atls_core.evidence import Evidence
from atls_core.interfaces import IssuerSpec
from atls_core.server import ChallengeEndpoint, Rate, mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, attested_get
from atls_core.testing.simulated import CHALLENGE_PATH
from atls_core.tls import ATLSContext

NEVER_REFILLS = 1e-9
"""A rate so slow that no token comes back while a test runs."""


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    return SimulatedTEE()


class Counting:
    """The simulated challenge issuer, counting its calls; ``fail`` makes them raise."""

    def __init__(self, inner: Any, *, fail: bool = False) -> None:
        self.inner, self.fail, self.calls = inner, fail, 0
        self._lock = threading.Lock()

    @property
    def spec(self) -> IssuerSpec:
        spec: IssuerSpec = self.inner.spec
        return spec

    def issue(self, report_data: bytes, *, certificate_sha256: bytes | None = None) -> Evidence:
        with self._lock:
            self.calls += 1
        if self.fail:
            raise RuntimeError("detail from the quote service")
        evidence: Evidence = self.inner.issue(report_data, certificate_sha256=certificate_sha256)
        return evidence


def _endpoint(issuer: Any, **limits: Any) -> ChallengeEndpoint:
    certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
    return ChallengeEndpoint(
        issuer, certificate_der=certificate.certificate_der, path=CHALLENGE_PATH, **limits
    )


def _body() -> bytes:
    return json.dumps({"nonce": os.urandom(32).hex()}).encode()


def test_a_client_over_its_rate_gets_503_and_costs_no_issuer_call(tee: SimulatedTEE) -> None:
    issuer = Counting(tee.challenge_issuer)
    endpoint = _endpoint(
        issuer, issuance_rate=None, per_client_rate=Rate(per_second=NEVER_REFILLS, burst=3)
    )
    statuses = [endpoint.answer(_body(), client="192.0.2.1")[0] for _ in range(6)]
    assert statuses == [200, 200, 200, 503, 503, 503]
    status, headers, _ = endpoint.answer(_body(), client="192.0.2.1")
    assert (status, headers["Retry-After"]) == (503, "1")
    assert endpoint.answer(_body(), client="198.51.100.7")[0] == 200  # another client
    assert issuer.calls == 4
    assert endpoint.answered == 4
    assert endpoint.limiter.log.counts == {"rate": 4}


def test_the_server_rate_bounds_every_client_together(tee: SimulatedTEE) -> None:
    issuer = Counting(tee.challenge_issuer)
    endpoint = _endpoint(
        issuer, issuance_rate=Rate(per_second=NEVER_REFILLS, burst=2), per_client_rate=None
    )
    statuses = [endpoint.answer(_body(), client=f"192.0.2.{i}")[0] for i in range(4)]
    assert statuses == [200, 200, 503, 503]
    assert issuer.calls == 2


def test_http_server_rates_by_the_peer_address(tee: SimulatedTEE) -> None:
    """Over real TLS: the second connection from 127.0.0.1 is over its client's rate."""
    issuer = Counting(tee.challenge_issuer)
    certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
    endpoint = ChallengeEndpoint(
        issuer,
        certificate_der=certificate.certificate_der,
        path=CHALLENGE_PATH,
        issuance_rate=None,
        per_client_rate=Rate(per_second=NEVER_REFILLS, burst=1),
    )
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with HTTPSServer(certificate.server_context(), challenge=endpoint) as server:
        result, _ = attested_get(context, server.port, "/after")
        assert result.accepted
        with pytest.raises(ATLSVerificationError):
            attested_get(context, server.port, "/after")
        assert server.wait_finished(1)
        assert server.requests == ["/after"]  # nothing after the refusal
    assert issuer.calls == 1
    assert endpoint.limiter.log.counts == {"rate": 1}


def test_a_failing_issuer_answers_500_and_logs_why_at_debug(
    tee: SimulatedTEE, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = _endpoint(Counting(tee.challenge_issuer, fail=True))
    with caplog.at_level(logging.DEBUG, logger="atls.server"):
        status, _, body = endpoint.answer(_body(), client="192.0.2.1")
    assert (status, body) == (500, b"evidence unavailable\n")
    assert endpoint.answered == 0
    assert endpoint.limiter.log.counts == {"error": 1}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "refused 1 challenge request(s): challenge issuance failed (RuntimeError)"
    ]
    (debug,) = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert "detail from the quote service" in debug.getMessage()  # the operator asked for it
    assert debug.exc_info is not None

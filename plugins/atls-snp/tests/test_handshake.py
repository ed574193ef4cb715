"""Live aTLS handshakes on 127.0.0.1: a configfs-tsm issuer (emulated) and the real verification.

The synthetic PKI is trusted only through the tests-only ``test_ark`` setting,
which the core accepts only with ``allow_insecure_test_validators`` and which
caps every result at ``warning``: the path from the certificate (or the
challenge answer) to the chain, the report signature, the binding and the
policy is the production one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import Freshness
from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.policy import Policy
from atls_core.result import Status
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates, mint_certificate
from atls_core.testing.loopback import (
    HTTPSServer,
    attested_get,
    challenge_handshakes,
    challenge_https_server,
)
from atls_core.tls import ATLSContext
from atls_snp.issuer import ConfigfsSnpIssuer
from atls_snp.specs import CHALLENGE_PATH
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.configfs import FakeConfigfsTsm, certificate_table

PINNED = Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}, require_nonce=True)


def _tsm(directory: Path, world: SyntheticSnp) -> FakeConfigfsTsm:
    root = directory / "report"
    root.mkdir()
    table = certificate_table(
        [("vcek", world.vcek.certificate), ("ask", world.pki.ask), ("ark", world.pki.ark)]
    )
    return FakeConfigfsTsm(
        root, lambda report_data, vmpl: world.report(report_data, vmpl=vmpl), auxblob=table
    )


def _context(world: SyntheticSnp, validator: str = "snp.report", **kw: Any) -> ATLSContext:
    selected = select_validator(
        validator, settings=world.settings(), allow_insecure=True, policy=kw.pop("policy", PINNED)
    )
    return ATLSContext.for_validator(selected)


@pytest.fixture
def certificate_server(milan: SyntheticSnp, tmp_path: Path) -> Iterator[HTTPSServer]:
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer({"root": str(tsm.root)}, fs=tsm)
    certificates = AttestedCertificates(issuer, hostnames=("127.0.0.1",))
    with HTTPSServer(certificates.server_context(per_connection=True)) as server:
        server.certificates = certificates  # type: ignore[attr-defined]
        yield server


def test_certificate_handshake_is_nonce_fresh(
    milan: SyntheticSnp, certificate_server: HTTPSServer
) -> None:
    context = _context(milan)
    for _ in range(2):
        result, data = attested_get(context, certificate_server.port)
        assert result.accepted, result.to_json()
        assert result.status is Status.WARNING  # the test root caps it
        assert result.binding.scheme == "atls-v1"
        assert result.binding.freshness is Freshness.NONCE
        assert result.tee_type == "sev-snp"
        assert b'"/hello"' in data
    assert certificate_server.certificates.minted == 2  # type: ignore[attr-defined]


def test_unpinned_policy_refuses_a_genuine_guest_before_any_byte(
    milan: SyntheticSnp, certificate_server: HTTPSServer
) -> None:
    context = _context(milan, policy=Policy())
    with pytest.raises(ATLSVerificationError) as info:
        attested_get(context, certificate_server.port)
    assert info.value.check == "workload.unpinned"
    assert certificate_server.requests == []


def test_amds_roots_alone_do_not_trust_the_synthetic_pki(
    milan: SyntheticSnp, certificate_server: HTTPSServer
) -> None:
    selected = select_validator("snp.report", settings={"kds": "never"}, policy=PINNED)
    with pytest.raises(ATLSVerificationError) as info:
        attested_get(ATLSContext.for_validator(selected), certificate_server.port)
    assert info.value.check == "snp.chain"
    assert certificate_server.requests == []


def test_report_for_another_key_is_refused(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer({"root": str(tsm.root)}, fs=tsm)
    stolen = mint_certificate(issuer, hostnames=("127.0.0.1",))
    lying = mint_certificate(issuer, hostnames=("127.0.0.1",), evidence=stolen.evidence)
    with HTTPSServer(lying.server_context()) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_context(milan), server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"


def test_challenge_handshake(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer.challenge_issuer({"root": str(tsm.root)}, fs=tsm)
    certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
    server, endpoint = challenge_https_server(issuer, certificate, CHALLENGE_PATH)
    context = _context(milan, "snp.report-challenge")
    with server:
        results = challenge_handshakes(context, server, endpoint)
    assert {result.binding.scheme for result in results} == {"atls-v1"}


def test_challenge_answer_from_another_server_is_refused(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    # A relay presents its own certificate and forwards the challenge to the genuine guest:
    # the report binds the genuine server's key, not the relay's.
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer.challenge_issuer({"root": str(tsm.root)}, fs=tsm)
    genuine = mint_certificate(issuer, hostnames=("127.0.0.1",))
    relay = mint_certificate(issuer, hostnames=("127.0.0.1",))
    server, _ = challenge_https_server(issuer, genuine, CHALLENGE_PATH, presented=relay)
    with server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_context(milan, "snp.report-challenge"), server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"


def test_configuration_file_path(milan: SyntheticSnp, certificate_server: HTTPSServer) -> None:
    rule = {
        "validator": "snp.report",
        "settings": milan.settings(),
        "policy": {"reference_values": {"measurement": DEFAULT_MEASUREMENT.hex()}},
    }
    refused = {"hosts": {"127.0.0.1": rule}}
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(refused).check()
    assert info.value.check == "config.test_settings"
    allowed = {"atls": {"allow_insecure_test_validators": True}, "hosts": {"127.0.0.1": rule}}
    context = ATLSContext(ATLSConfig.from_mapping(allowed))
    result, _ = attested_get(context, certificate_server.port)
    assert result.accepted, result.to_json()
    assert "insecure.test_knob" in {w.split(":", 1)[0] for w in result.warnings}

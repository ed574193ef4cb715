"""Bounded per-connection issuance: rates, the concurrency cap, the deadline, a flood."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import gc
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from atls_core.binding import decode_sni, encode_sni, report_data_for
from atls_core.errors import ConfigurationError, IssuanceRefused
from atls_core.evidence import Evidence
from atls_core.interfaces import IssuerSpec
from atls_core.issuance_limits import (
    ClientBuckets,
    IssuanceLimiter,
    Rate,
    RefusalLog,
    TokenBucket,
    client_address,
)
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates, _on_own_thread
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.testing.simulated import OID
from atls_core.tls import ATLSContext, result_of

NEVER_REFILLS = 1e-9
"""A rate so slow that no token comes back while a test runs (one in ~30 years)."""


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    return SimulatedTEE()


class CountingIssuer:
    """The simulated issuer, counting calls; ``gate`` (when set) holds every call."""

    def __init__(self, inner: Any, *, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.gate: threading.Event | None = None
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self.most_threads = 0
        self._lock = threading.Lock()

    @property
    def spec(self) -> IssuerSpec:
        spec: IssuerSpec = self.inner.spec
        return spec

    def issue(self, report_data: bytes) -> Evidence:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.most_threads = max(self.most_threads, threading.active_count())
        try:
            if self.gate is not None:
                self.gate.wait(60)
            if self.delay:
                time.sleep(self.delay)
            evidence: Evidence = self.inner.issue(report_data)
            return evidence
        finally:
            with self._lock:
                self.running -= 1


def _plain_client() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _certificate_for(port: int, server_name: str) -> x509.Certificate:
    """The certificate the server presents to ``server_name``; raises on a refusal."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        _plain_client().wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _attempt(port: int, nonce: bytes) -> str:
    """``bound`` (a certificate for this nonce), ``unbound``, or the TLS alert refusing it."""
    try:
        certificate = _certificate_for(port, encode_sni(nonce, "victim.test"))
    except ssl.SSLError as error:
        return str(error.reason)
    return "bound" if _binds(certificate, nonce) else "unbound"


def _bound_report_data(certificate: x509.Certificate) -> bytes:
    extension = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(OID))
    value = extension.value
    assert isinstance(value, x509.UnrecognizedExtension)
    payload = json.loads(base64.b64decode(json.loads(value.value)["payload"]))
    return bytes.fromhex(payload["report_data"])


def _binds(certificate: x509.Certificate, nonce: bytes) -> bool:
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _bound_report_data(certificate) == report_data_for("atls-v1", spki_der=spki, nonce=nonce)


# -- the parts -------------------------------------------------------------------------


def test_token_bucket_starts_full_and_refills_with_time() -> None:
    bucket = TokenBucket(Rate(per_second=2.0, burst=3), now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.4)  # 0.8 of a token
    assert bucket.take(100.5)
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]


def test_client_buckets_are_separate_and_bounded() -> None:
    buckets = ClientBuckets(Rate(per_second=NEVER_REFILLS, burst=1), max_clients=2)
    assert buckets.take("192.0.2.1", 0.0)
    assert not buckets.take("192.0.2.1", 0.0)
    assert buckets.take("192.0.2.2", 0.0)
    assert buckets.take("192.0.2.3", 0.0)  # forgets the least recently seen client
    assert len(buckets) == 2
    assert not buckets.take("192.0.2.3", 0.0)


def test_rates_and_settings_are_checked() -> None:
    assert Rate.of(None) is None
    assert Rate.of(2.5) == Rate(per_second=2.5, burst=3)
    assert Rate.of(0.2) == Rate(per_second=0.2, burst=1)
    bad: list[Callable[[], object]] = [
        functools.partial(Rate, 0, 1),
        functools.partial(Rate, 1, 0),
        functools.partial(Rate.of, cast(Any, "fast")),
    ]
    for make in bad:
        with pytest.raises(ConfigurationError) as caught:
            make()
        assert caught.value.check == "server.issuance_rate"
    with pytest.raises(ConfigurationError) as caught:
        IssuanceLimiter(max_concurrent=0)
    assert caught.value.check == "server.max_concurrent_issuances"
    with pytest.raises(ConfigurationError) as caught:
        IssuanceLimiter(timeout=0)
    assert caught.value.check == "server.issuance_timeout"


def test_client_address_keys() -> None:
    class Peer:
        def __init__(self, address: Any) -> None:
            self.address = address

        def getpeername(self) -> Any:
            if isinstance(self.address, Exception):
                raise self.address
            return self.address

    assert client_address(Peer(("192.0.2.7", 4433))) == "192.0.2.7"
    assert client_address(Peer(("::ffff:192.0.2.7", 4433, 0, 0))) == "192.0.2.7"
    assert client_address(Peer(("2001:db8:1:2:3:4:5:6", 4433, 0, 0))) == "2001:db8:1:2::/64"
    assert client_address(Peer(("fe80::1%eth0", 4433, 0, 2))) == "fe80::/64"
    assert client_address(Peer(OSError("not connected"))) is None
    assert client_address(Peer("/run/app.sock")) is None  # a Unix socket
    assert client_address(object()) is None  # an SSLObject has no peer


def test_refusal_log_reports_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = RefusalLog(interval=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="atls.server"):
        for _ in range(3):
            log.refused("rate", "issuance rate exceeded")
        now[0] = 6.0
        log.refused("rate", "issuance rate exceeded")
    lines = [record.getMessage() for record in caplog.records if record.name == "atls.server"]
    assert lines == [
        "refused 1 per-connection handshake(s): issuance rate exceeded",
        "refused 3 per-connection handshake(s): issuance rate exceeded",
    ]
    assert log.counts == {"rate": 4}


def _nothing() -> None:
    return None


def _refusal(action: Callable[[], object]) -> str:
    try:
        action()
    except IssuanceRefused as error:
        return error.phase
    return "admitted"


def test_limiter_cap_pending_and_deadline() -> None:
    limiter = IssuanceLimiter(max_concurrent=1, max_pending=1, timeout=1.5)
    release = threading.Event()
    hung, deadline = limiter.submit(lambda: release.wait(60), limited=False)
    assert _refusal(lambda: limiter.wait(hung, deadline)) == "timeout"
    assert limiter.in_flight == 1, "the hung call keeps its slot"
    # An event loop never waits for a slot; a thread waits in line, up to its deadline.
    assert _refusal(lambda: limiter.submit(lambda: None, may_wait=False)) == "busy"
    waiter: list[str] = []
    thread = threading.Thread(
        target=lambda: waiter.append(_refusal(lambda: limiter.submit(_nothing)))
    )
    thread.start()
    for _ in range(1000):  # until the thread is in line (bounded)
        if limiter.waiting:
            break
        time.sleep(0.01)
    assert limiter.waiting == 1
    assert _refusal(lambda: limiter.submit(_nothing)) == "busy", "the line is full"
    thread.join(30)
    assert waiter == ["timeout"]
    assert limiter.waiting == 0
    release.set()
    assert limiter.idle(30)
    assert limiter.call(lambda: "evidence") == "evidence"
    assert limiter.worker_threads == 1
    assert limiter.log.counts == {"timeout": 2, "busy": 2}


def test_only_a_connection_on_its_own_thread_waits_for_a_slot(tee: SimulatedTEE) -> None:
    context = tee.certificates().static().server_context()
    one, other = socket.socketpair()
    with (
        one,
        other,
        context.wrap_socket(one, server_side=True, do_handshake_on_connect=False) as tls,
    ):
        assert _on_own_thread(tls)
        tls.setblocking(False)  # driven by an event loop
        assert not _on_own_thread(tls)
    assert not _on_own_thread(context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True))


def test_an_issuer_error_is_handed_to_the_handshake() -> None:
    limiter = IssuanceLimiter()

    def failing() -> None:
        raise OSError("quote device gone")

    with pytest.raises(OSError, match="quote device gone"):
        limiter.call(failing)
    assert limiter.idle(30)


# -- end to end on loopback -------------------------------------------------------------


@contextmanager
def _server(certificates: AttestedCertificates) -> Iterator[HTTPSServer]:
    with HTTPSServer(certificates.server_context()) as server:
        yield server


def test_anonymous_handshakes_cost_at_most_the_rate_limit(
    tee: SimulatedTEE, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = CountingIssuer(tee.issuer)
    certificates = AttestedCertificates(
        issuer,
        issuance_rate=Rate(per_second=NEVER_REFILLS, burst=5),
        per_client_rate=None,
    )
    with caplog.at_level(logging.WARNING, logger="atls.server"), _server(certificates) as server:
        assert issuer.calls == 1  # the static certificate
        outcomes = [_attempt(server.port, os.urandom(32)) for _ in range(40)]
        static = _certificate_for(server.port, "victim.test")  # no nonce: never limited
    assert outcomes == ["bound"] * 5 + ["SSLV3_ALERT_HANDSHAKE_FAILURE"] * 35
    assert issuer.calls == 1 + 5
    assert certificates.limiter.log.counts == {"rate": 35}
    assert _binds(static, b"")
    assert any("issuance rate exceeded" in r.getMessage() for r in caplog.records)


def test_one_client_address_is_limited_on_its_own(tee: SimulatedTEE) -> None:
    issuer = CountingIssuer(tee.issuer)
    certificates = AttestedCertificates(
        issuer, issuance_rate=None, per_client_rate=Rate(per_second=NEVER_REFILLS, burst=3)
    )
    with _server(certificates) as server:
        outcomes = [_attempt(server.port, os.urandom(32)) for _ in range(6)]
    assert outcomes == ["bound"] * 3 + ["SSLV3_ALERT_HANDSHAKE_FAILURE"] * 3
    assert issuer.calls == 1 + 3


def test_a_hanging_issuer_is_refused_within_the_deadline(tee: SimulatedTEE) -> None:
    issuer = CountingIssuer(tee.issuer)
    certificates = AttestedCertificates(
        issuer, issuance_timeout=0.5, max_concurrent_issuances=1, max_pending_issuances=0
    )
    with _server(certificates) as server:
        issuer.gate = threading.Event()  # from now on every issuer call hangs
        try:
            # Without the deadline the handshake would wait for the issuer (60 s) and succeed.
            with pytest.raises(ssl.SSLError) as caught:
                _certificate_for(server.port, encode_sni(os.urandom(32), "h"))
            assert "INTERNAL_ERROR" in str(caught.value)
            assert certificates.limiter.in_flight == 1
            # The hung call holds the only slot: the next nonce handshake is refused at once,
            # and a client without a nonce still gets the static certificate.
            with pytest.raises(ssl.SSLError) as caught:
                _certificate_for(server.port, encode_sni(os.urandom(32), "h"))
            assert "HANDSHAKE_FAILURE" in str(caught.value)
            assert _binds(_certificate_for(server.port, "h"), b"")
        finally:
            issuer.gate.set()
        assert certificates.limiter.idle(30)
        nonce = os.urandom(32)
        assert _binds(_certificate_for(server.port, encode_sni(nonce, "h")), nonce)
    assert certificates.limiter.log.counts == {"timeout": 1, "busy": 1}


def test_static_issuance_has_the_deadline_too(tee: SimulatedTEE) -> None:
    issuer = CountingIssuer(tee.issuer)
    issuer.gate = threading.Event()
    certificates = AttestedCertificates(issuer, issuance_timeout=0.2)
    try:
        with pytest.raises(IssuanceRefused) as caught:
            certificates.static()
        assert caught.value.check == "server.issuance_timeout"
    finally:
        issuer.gate.set()


def test_a_failing_issuer_gets_an_alert_and_a_log_line(
    tee: SimulatedTEE, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(CountingIssuer):
        def issue(self, report_data: bytes) -> Evidence:
            if self.calls:
                raise RuntimeError("secret detail from the quote service")
            return super().issue(report_data)

    certificates = AttestedCertificates(Failing(tee.issuer))
    with caplog.at_level(logging.WARNING, logger="atls.server"), _server(certificates) as server:
        outcome = _attempt(server.port, os.urandom(32))
    assert outcome == "TLSV1_ALERT_INTERNAL_ERROR"
    assert certificates.limiter.log.counts == {"error": 1}
    messages = [r.getMessage() for r in caplog.records if r.name == "atls.server"]
    assert messages == [
        "refused 1 per-connection handshake(s): per-connection issuance failed (RuntimeError)"
    ]


def test_a_repeated_nonce_gets_its_own_certificate_again(tee: SimulatedTEE) -> None:
    issuer = CountingIssuer(tee.issuer)
    certificates = AttestedCertificates(issuer)
    nonce, other = os.urandom(32), os.urandom(32)
    with _server(certificates) as server:
        first = _certificate_for(server.port, encode_sni(nonce, "a.test"))
        again = _certificate_for(server.port, encode_sni(nonce, "b.test"))
        different = _certificate_for(server.port, encode_sni(other, "a.test"))
    assert again == first
    assert _binds(first, nonce)
    assert different != first
    assert _binds(different, other)
    assert not _binds(different, nonce)
    assert (issuer.calls, certificates.minted, certificates.repeated) == (1 + 2, 2, 1)


def test_per_connection_certificates_share_a_rotating_key(tee: SimulatedTEE) -> None:
    shared = AttestedCertificates(tee.issuer)
    rotating = AttestedCertificates(tee.issuer, key_rotation=dt.timedelta(microseconds=1))
    keys: dict[str, list[x509.Certificate]] = {}
    for name, certificates in (("shared", shared), ("rotating", rotating)):
        with _server(certificates) as server:
            keys[name] = [
                _certificate_for(server.port, encode_sni(os.urandom(32), "h")) for _ in range(2)
            ]
            static = _certificate_for(server.port, "h")
        for certificate in keys[name]:
            assert certificate.public_key() != static.public_key(), "never the static key"
    one, two = keys["shared"]
    assert one.public_key() == two.public_key()
    assert one.serial_number != two.serial_number
    one, two = keys["rotating"]
    assert one.public_key() != two.public_key()
    with pytest.raises(ConfigurationError):
        AttestedCertificates(tee.issuer, key_rotation=dt.timedelta(0))


# -- a flood ----------------------------------------------------------------------------

FLOOD = 500
SERVER_THREADS = 64


class PooledServer:
    """A TLS echo server on a fixed pool of threads (unlike HTTPSServer's thread per
    connection), so the process's thread count shows what issuance itself adds."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=FLOOD * 2)
        self.port = int(self.listener.getsockname()[1])
        self.threads = [
            threading.Thread(target=self._serve, daemon=True) for _ in range(SERVER_THREADS)
        ]

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            raw.settimeout(60)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    line = tls.recv(64)
                    tls.sendall(b"echo " + line)
            except OSError:
                raw.close()

    def __enter__(self) -> PooledServer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in accept()
        self.listener.close()
        for thread in self.threads:
            thread.join(10)


@pytest.mark.slow
def test_a_flood_of_handshakes_stays_bounded(tee: SimulatedTEE, tmp_path: Path) -> None:
    """500 concurrent handshakes from another process against a slow evidence source."""
    issuer = CountingIssuer(tee.issuer, delay=0.05)
    certificates = AttestedCertificates(
        issuer,
        max_concurrent_issuances=4,
        max_pending_issuances=8,
        issuance_rate=None,
        per_client_rate=None,
    )
    context = certificates.server_context()
    gc.collect()
    threads_before = threading.active_count()
    tracemalloc.start()
    try:
        with PooledServer(context) as server:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            client = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "flood",
                    str(server.port),
                    json.dumps(tee.hardware.validator_settings()),
                    tee.image,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp_path,
                check=False,
            )
            peak = tracemalloc.get_traced_memory()[1] - baseline
            gc.collect()
            kept = _server_module_memory(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert client.returncode == 0, client.stderr[-2000:]
    outcomes = [json.loads(line) for line in client.stdout.splitlines()]
    assert len(outcomes) == FLOOD
    accepted = [o for o in outcomes if o["outcome"] == "accepted"]
    refused = [o for o in outcomes if o["outcome"] == "refused"]
    assert len(accepted) + len(refused) == FLOOD
    assert all(o["bound"] == o["sent"] for o in accepted), "each result binds its own nonce"
    assert len({o["sent"] for o in accepted}) == len(accepted)
    assert all("ALERT" in o["error"] for o in refused), {o["error"] for o in refused}
    assert len(accepted) >= 4
    assert certificates.minted == len(accepted)
    assert issuer.calls == 1 + len(accepted), "a refused handshake cost no issuer call"
    assert certificates.limiter.log.counts == ({"busy": len(refused)} if refused else {}), (
        "every refusal was immediate (no slot), none waited out a deadline"
    )
    assert issuer.most_running <= 4
    # An issuer thread per handshake would show as dozens more threads, retained work as
    # megabytes; the bounds are generous on purpose (64 server threads, 4 issuer
    # workers).
    assert issuer.most_threads - threads_before <= SERVER_THREADS + 4 + 10
    assert certificates.limiter.worker_threads <= 4
    assert peak < 32 * 1024 * 1024, f"{peak} bytes at the server's peak"
    assert kept < 1024 * 1024, f"{kept} bytes held by the server's modules after the flood"


async def _flood_client(context: ATLSContext, port: int) -> dict[str, str]:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except ssl.SSLError as error:
        return {"outcome": "refused", "error": str(error)}
    try:
        sent, _ = decode_sni(writer.get_extra_info("ssl_object").server_hostname)
        result = result_of(writer)
        writer.write(b"ping\n")
        echoed = await reader.readline()
        return {
            "outcome": "accepted"
            if result and result.accepted and echoed == b"echo ping\n"
            else "broken",
            "sent": sent.hex() if sent else "",
            "bound": str(result.binding.nonce) if result else "",
        }
    finally:
        writer.close()


def _flood_main(port: int, settings: dict[str, Any], image: str) -> None:
    """The client side, in its own process: FLOOD aTLS clients at once, one JSON line each."""
    context = ATLSContext.for_validator(
        select_validator(
            "insecure.simulated",
            policy=Policy(reference_values={"image": image}),
            settings=settings,
            allow_insecure=True,
        )
    )

    async def main() -> list[dict[str, str]]:
        return await asyncio.wait_for(
            asyncio.gather(*(_flood_client(context, port) for _ in range(FLOOD))), timeout=240
        )

    for outcome in asyncio.run(main()):
        print(json.dumps(outcome))


def _server_module_memory(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still held by allocations made in the server's modules."""
    kept = snapshot.filter_traces(
        [
            tracemalloc.Filter(True, "*atls_core/server.py"),
            tracemalloc.Filter(True, "*atls_core/issuance_limits.py"),
        ]
    )
    return sum(stat.size for stat in kept.statistics("filename"))


if __name__ == "__main__" and sys.argv[1:2] == ["flood"]:
    _flood_main(int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4])

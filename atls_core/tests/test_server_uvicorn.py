"""A real uvicorn server: static certificate files, the ASGI challenge middleware, SNI minting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import Freshness
from atls_core.httpx_transport import atls_httpx_client, attestation_result
from atls_core.server import (
    AttestedCertificates,
    ChallengeASGIMiddleware,
    ChallengeEndpoint,
    Rate,
)
from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.simulated import CHALLENGE_PATH

uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b'{"hello": "from uvicorn"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _uvicorn(asgi: Any, cert: Path, key: Path, sni: Any = None) -> Iterator[int]:
    config = uvicorn.Config(
        asgi,
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
    )
    config.load()
    if sni is not None:
        config.ssl.sni_callback = sni
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # wait for start-up (bounded)
        if server.started:
            break
        time.sleep(0.01)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    return SimulatedTEE()


def test_static_files_and_per_connection_sni(tee: SimulatedTEE, tmp_path: Path) -> None:
    certificates = tee.certificates()
    cert, key = certificates.static().write_files(tmp_path)
    with _uvicorn(app, cert, key) as port:
        with atls_httpx_client(validator=tee.selected(), timeout=10) as client:
            response = client.get(f"https://127.0.0.1:{port}/")
        assert response.json() == {"hello": "from uvicorn"}
        result = attestation_result(response)
        assert result is not None
        assert result.binding.freshness is Freshness.KEY_ONLY
    with _uvicorn(app, cert, key, sni=certificates.sni_callback) as port:
        with atls_httpx_client(validator=tee.selected(), timeout=10) as client:
            response = client.get(f"https://127.0.0.1:{port}/")
        result = attestation_result(response)
        assert result is not None
        assert result.binding.freshness is Freshness.NONCE
        assert certificates.minted == 1


def test_limits_hold_on_the_event_loop(tee: SimulatedTEE, tmp_path: Path) -> None:
    """uvicorn hands the callback an SSLObject: no peer address, but the global rate holds."""
    certificates = tee.certificates(
        issuance_rate=Rate(per_second=1e-9, burst=1),
        per_client_rate=Rate(per_second=1e-9, burst=1),
    )
    cert, key = certificates.static().write_files(tmp_path)
    with _uvicorn(app, cert, key, sni=certificates.sni_callback) as port:
        with atls_httpx_client(validator=tee.selected(), timeout=10) as client:
            result = attestation_result(client.get(f"https://127.0.0.1:{port}/"))
        assert result is not None
        assert result.binding.freshness is Freshness.NONCE
        # The callback answers with an alert; asyncio drops unsent bytes when a handshake
        # fails, so the client may see the connection end instead.
        with (
            atls_httpx_client(validator=tee.selected(), timeout=10) as client,
            pytest.raises(httpx.ConnectError, match=r"HANDSHAKE_FAILURE|EOF"),
        ):
            client.get(f"https://127.0.0.1:{port}/")
    assert certificates.minted == 1
    assert certificates.limiter.log.counts == {"rate": 1}


def test_asgi_challenge_middleware(tee: SimulatedTEE, tmp_path: Path) -> None:
    certificates = AttestedCertificates(tee.challenge_issuer)
    static = certificates.static()
    cert, key = static.write_files(tmp_path)
    endpoint = ChallengeEndpoint(
        tee.challenge_issuer, certificate_der=static.certificate_der, path=CHALLENGE_PATH
    )
    with _uvicorn(ChallengeASGIMiddleware(app, endpoint), cert, key) as port:
        with atls_httpx_client(validator=tee.selected(challenge=True), timeout=10) as client:
            response = client.get(f"https://127.0.0.1:{port}/")
        assert response.json() == {"hello": "from uvicorn"}
        result = attestation_result(response)
        assert result is not None
        assert result.binding.scheme == "challenge-v1"
        assert endpoint.answered == 1


def test_a_slow_challenge_does_not_stall_the_event_loop(tee: SimulatedTEE, tmp_path: Path) -> None:
    """The issuer call is awaited: while a quote is pending, other requests are served."""
    gate = threading.Event()

    class Gated:
        spec = tee.challenge_issuer.spec

        def issue(self, report_data: bytes, *, certificate_sha256: bytes | None = None) -> Any:
            assert gate.wait(30)
            return tee.challenge_issuer.issue(report_data, certificate_sha256=certificate_sha256)

    certificates = AttestedCertificates(tee.challenge_issuer)
    static = certificates.static()
    cert, key = static.write_files(tmp_path)
    endpoint = ChallengeEndpoint(
        Gated(), certificate_der=static.certificate_der, path=CHALLENGE_PATH
    )
    outcome: list[Any] = []

    def attested() -> None:
        with atls_httpx_client(validator=tee.selected(challenge=True), timeout=30) as client:
            outcome.append(attestation_result(client.get(f"https://127.0.0.1:{port}/")))

    with _uvicorn(ChallengeASGIMiddleware(app, endpoint), cert, key) as port:
        waiting = threading.Thread(target=attested)
        waiting.start()
        try:
            for _ in range(500):  # until the challenge is in the issuer (bounded)
                if endpoint.limiter.in_flight:
                    break
                time.sleep(0.01)
            assert endpoint.limiter.in_flight == 1
            with httpx.Client(verify=False, timeout=10) as plain:
                assert plain.get(f"https://127.0.0.1:{port}/").json() == {"hello": "from uvicorn"}
            assert not outcome  # served while the quote was still pending
        finally:
            gate.set()
            waiting.join(30)
    (result,) = outcome
    assert result is not None
    assert result.accepted

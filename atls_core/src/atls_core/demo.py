"""``atls demo``: attested TLS end to end on this machine, no TEE hardware needed.

It starts a local HTTPS server whose certificates carry evidence from the
INSECURE simulated TEE (an Ed25519 key in this process: it proves nothing about
where code runs), connects with ``http.client``, requests and httpx under a
policy that pins the simulated image, prints each appraisal, then shows two
refusals: a server presenting evidence bound to another key, and a client whose
policy pins no workload (genuine evidence alone proves only that *some* TEE
answered).  Any deviation from the expected behaviour makes it exit non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["run"]

BANNER = """\
================================================================================
 atls demo -- INSECURE SIMULATED TEE
 The "hardware" below is a key generated in this process. Nothing here proves
 that code runs in a TEE; it shows how attested TLS behaves end to end.
================================================================================"""


class DemoFailure(Exception):
    """Something did not behave as the demo expects."""


@contextmanager
def _serving(context: Any) -> Iterator[Any]:
    from atls_core.testing.loopback import HTTPSServer

    with HTTPSServer(context) as server:
        yield server


def _summary(result: Any) -> str:
    return (
        f"status={result.status.value} accepted={result.accepted} "
        f"freshness={result.binding.freshness.value} tee={result.tee_type}"
    )


def _step(title: str, action: Callable[[], str]) -> None:
    print(f"\n--- {title}")
    print(action())


IMAGE = "ab" * 32
"""The simulated workload's image measurement: what the demo's policy pins."""


def _config(hardware_key: str, policy: dict[str, Any]) -> Any:
    from atls_core.testing.plugins import insecure_config

    settings = {"hardware_key": hardware_key}
    return insecure_config("127.0.0.1", "insecure.simulated", settings, policy, source="<demo>")


def _answered(client: str, result: Any, answer_is_right: Callable[[], bool]) -> Any:
    """``result``, if ``client`` got an accepted, appraised and right answer."""
    if result is None or not result.accepted or not answer_is_right():
        raise DemoFailure(f"{client} did not get an accepted, appraised answer")
    return result


def _refused(server: Any, context: Any, check: str, why: str) -> str:
    """Connect to ``server`` expecting the handshake to be refused with ``check``."""
    from atls_core.connection import HTTPAConnection
    from atls_core.errors import ATLSVerificationError
    from atls_core.report import render_error

    connection = HTTPAConnection("127.0.0.1", server.port, context=context, timeout=10)
    try:
        connection.request("GET", "/v1/models")
    except ATLSVerificationError as error:
        if error.check != check:
            raise DemoFailure(f"rejected for the wrong reason: {error.check}") from error
        return "REJECTED as expected:\n" + render_error(error)
    finally:
        connection.close()
    raise DemoFailure(f"{why} was accepted")


def _received_nothing(server: Any) -> None:
    if server.received or server.requests:
        raise DemoFailure(f"the rejected server received {server.received} bytes")
    print("the rejected server received 0 application bytes")


def run() -> int:
    """Run the demo; 0 when everything behaved, 1 otherwise."""
    try:
        _run()
    except DemoFailure as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"\nDEMO FAILED: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\nDemo finished: every connection behaved as expected.")
    return 0


def _run() -> None:
    from atls_core.connection import HTTPAConnection
    from atls_core.report import render_result
    from atls_core.server import AttestedCertificates, mint_certificate
    from atls_core.testing.simulated import SimulatedHardware, SimulatedIssuer
    from atls_core.tls import ATLSContext

    print(BANNER)
    hardware = SimulatedHardware.generate()
    issuer = SimulatedIssuer(
        hardware.issuer_settings(measurements={"image": IMAGE, "config": "cd" * 32})
    )
    certificates = AttestedCertificates(issuer, hostnames=("localhost", "127.0.0.1"))
    # The policy pins the workload: genuine evidence of another image is refused.
    pinned = {"id": "demo-pinned", "reference_values": {"image": [IMAGE]}}
    context = ATLSContext(_config(hardware.public_key_hex, pinned))
    print(f"policy for 127.0.0.1: insecure.simulated, pins image = {IMAGE[:16]}...")

    with _serving(certificates.server_context(per_connection=True)) as server:
        port = server.port
        base = f"127.0.0.1:{port}"

        def with_http_client() -> str:
            connection = HTTPAConnection("127.0.0.1", port, context=context, timeout=10)
            try:
                connection.request("GET", "/v1/models")
                body = connection.getresponse().read()
                result = connection.attestation_result
            finally:
                connection.close()
            return render_result(_answered("http.client", result, lambda: b"demo-model" in body))

        _step(f"http.client -> https://{base}/v1/models (HTTPAConnection)", with_http_client)

        def with_requests() -> str:
            try:
                import requests

                from atls_core.requests_adapter import ATLSAdapter
            except ImportError:
                return "skipped: install atls-core[requests]"
            with requests.Session() as session:
                session.mount("httpa://", ATLSAdapter(context=context))
                response = session.get(f"httpa://{base}/v1/models", timeout=10)
                result = getattr(response, "attestation_result", None)
            return _summary(
                _answered(
                    "requests", result, lambda: response.json()["data"][0]["id"] == "demo-model"
                )
            )

        _step(f"requests -> httpa://{base}/v1/models (ATLSAdapter)", with_requests)

        def with_httpx() -> str:
            try:
                from atls_core.httpx_transport import atls_httpx_client, attestation_result
            except ImportError:
                return "skipped: install atls-core[httpx]"
            with atls_httpx_client(context=context, timeout=10) as client:
                response = client.get(f"https://{base}/v1/models")
                result = attestation_result(response)
            return _summary(_answered("httpx", result, lambda: response.status_code == 200))

        _step(f"httpx -> https://{base}/v1/models (ATLSTransport)", with_httpx)

    # A lying server: a fresh key, but evidence copied from the honest server's certificate.
    honest = certificates.static()
    liar = mint_certificate(issuer, hostnames=("127.0.0.1",), evidence=honest.evidence)
    with _serving(liar.server_context()) as server:
        _step(
            f"http.client -> https://127.0.0.1:{server.port}/ (key does not match its evidence)",
            lambda: _refused(
                server,
                context,
                "binding.report_data",
                "a server whose key does not match its evidence",
            ),
        )
        _received_nothing(server)

    # An honest server, but a client whose policy pins nothing: the core refuses to guess.
    unpinned = ATLSContext(_config(hardware.public_key_hex, {}))
    with _serving(certificates.server_context(per_connection=True)) as server:
        _step(
            f"http.client -> https://127.0.0.1:{server.port}/ (the client's policy pins nothing)",
            lambda: _refused(
                server, unpinned, "workload.unpinned", "a client whose policy pins nothing"
            ),
        )
        _received_nothing(server)

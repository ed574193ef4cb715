"""aTLS handshake (simulated TEE) vs a plain TLS handshake on loopback.

Run: python benchmarks/bench_handshake.py   (prints ratios against plain TLS measured
in the same run; finishes in well under a minute)
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable

from atls_core.testing.loopback import SimulatedTEE
from atls_core.tls import ATLSContext

ROUNDS = 150


def _server(context: ssl.SSLContext) -> tuple[int, Callable[[], None]]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        listener.close()

    return listener.getsockname()[1], close


def _time(context: ssl.SSLContext, port: int, host: str = "localhost") -> float:
    """Best of three batches (the least disturbed by other load), seconds per handshake."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(ROUNDS // 3):
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                pass
        best = min(best, (time.perf_counter() - start) / (ROUNDS // 3))
    return best


def main() -> None:
    tee = SimulatedTEE()
    certificates = tee.certificates()
    plain_client = ssl.create_default_context()
    plain_client.check_hostname = False
    plain_client.verify_mode = ssl.CERT_NONE

    port, close = _server(certificates.server_context(per_connection=False))
    baseline = _time(plain_client, port)
    static = _time(ATLSContext.for_validator(tee.selected()), port)
    from atls_core.tls import AppraisalCache

    static_nocache = _time(
        ATLSContext.for_validator(tee.selected(), cache=AppraisalCache(max_entries=0)), port
    )
    close()

    port, close = _server(certificates.server_context(per_connection=True))
    fresh = _time(ATLSContext.for_validator(tee.selected()), port)
    close()

    challenge_server = tee.challenge_server().start()
    challenge = _time(
        ATLSContext.for_validator(tee.selected(challenge=True)), challenge_server.port
    )
    challenge_server.stop()

    print(f"handshakes per case: {ROUNDS}")
    print(f"plain TLS (no verification)          {baseline * 1e3:7.2f} ms  x1.00")
    for name, value in (
        ("aTLS static cert, cache hit", static),
        ("aTLS static cert, no cache", static_nocache),
        ("aTLS nonce cert (server mints)", fresh),
        ("aTLS challenge transport", challenge),
    ):
        print(f"{name:<37}{value * 1e3:7.2f} ms  x{value / baseline:.2f}")


if __name__ == "__main__":
    main()

"""Server cost of per-connection freshness: a nonce handshake vs a plain one (TDX synthetic PKI).

Same client set-up for both cases: one plain TLS client context that does not appraise, so
only the server's work differs.  A sends an atls nonce in SNI (the server gets a quote for it
and presents a certificate minted for it); B sends an ordinary server name (the server presents
its static certificate).  A and B are interleaved against one server context.

Quote generation (the evidence source: configfs-tsm, emulated in memory as the kernel's is,
over the synthetic DCAP PKI) stays on the critical path and is reported separately: each round
also times one quote on its own (C), and the ratio is (A - C) / B per round; the order
alternates, ABC CBA ABC ...

Wall-clock ratios move with whatever else the machine runs; the CPU line (process CPU time
per handshake, both ends, in alternating blocks) is the steadier view of the same cost.  An
informational line times a real aTLS client (tdx.dcap appraisal through dcap-qvl).

Run: python benchmarks/bench_server_issuance.py   (well under a minute)
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness

from atls_core.binding import encode_sni
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.tls import ATLSContext
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote
from atls_tdx.issuers import ConfigfsTsmIssuer

PAIRS = 500
CPU_BLOCKS, BLOCK = 10, 40
WARM_UP = 20


class MemoryConfigfsTsm:
    """configfs-tsm report entries in memory: ``generation`` counts ``inblob`` writes and
    ``outblob`` is a synthetic quote over ``inblob`` (a disk-backed emulation would time
    the benchmark machine's file system, not the server)."""

    def __init__(self, pki: DcapTestPki) -> None:
        self.pki = pki
        self.entries: dict[Path, dict[str, bytes]] = {}

    def mkdir(self, path: Path) -> None:
        self.entries[path] = {"inblob": b"", "generation": b"0\n", "provider": b"tdx_guest\n"}

    def rmdir(self, path: Path) -> None:
        del self.entries[path]

    def read(self, path: Path) -> bytes:
        entry = self.entries[path.parent]
        if path.name == "outblob":
            return make_tdx_quote(self.pki, entry["inblob"])
        return entry[path.name]

    def write(self, path: Path, data: bytes) -> None:
        entry = self.entries[path.parent]
        entry["inblob"] = data
        entry["generation"] = f"{int(entry['generation']) + 1}\n".encode()


def _serve(context: ssl.SSLContext) -> tuple[int, Callable[[], None]]:
    """One connection at a time: the handshake, then wait for the client to close."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1]), listener.close


def _handshake(context: ssl.SSLContext, port: int, server_name: str) -> float:
    start = time.perf_counter()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        return time.perf_counter() - start


def _constructor_settings() -> dict[str, Any]:
    """Limits off where the server has them (so the same file times an older server too)."""
    import inspect

    names = inspect.signature(AttestedCertificates).parameters
    return {name: value for name, value in harness.UNLIMITED.items() if name in names}


def _quote(issuer: ConfigfsTsmIssuer) -> float:
    start = time.perf_counter()
    issuer.issue(os.urandom(64))
    return time.perf_counter() - start


def _server_side(client: ssl.SSLContext, port: int, issuer: ConfigfsTsmIssuer) -> None:
    for _ in range(WARM_UP):
        _handshake(client, port, encode_sni(os.urandom(32), "localhost"))
        _handshake(client, port, "localhost")
    fresh: list[float] = []
    plain: list[float] = []
    quotes: list[float] = []
    cases: dict[str, Callable[[], float]] = {
        "fresh": lambda: _handshake(client, port, encode_sni(os.urandom(32), "localhost")),
        "plain": lambda: _handshake(client, port, "localhost"),
        "quote": lambda: _quote(issuer),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for index in range(PAIRS):
        for name in cases if index % 2 == 0 else reversed(cases):
            times[name].append(cases[name]())
    fresh, plain, quotes = times["fresh"], times["plain"], times["quote"]
    print(f"rounds: {PAIRS} (ABC CBA ...)")
    harness.time_line("plain handshake (static certificate)", plain)
    harness.time_line("per-connection handshake (quote included)", fresh)
    harness.time_line("quote generation (configfs-tsm, synthetic PKI)", quotes)
    harness.report(
        "server.per_connection_with_quote_vs_plain", harness.ratios(fresh, plain), "none"
    )
    quote_ms = statistics.median(quotes) * 1e3
    harness.report(
        "server.per_connection_vs_plain",
        [(a - q) / b for a, b, q in zip(fresh, plain, quotes, strict=True)],
        f"<=2.0 (+ quote generation {quote_ms:.2f} ms)",
    )


def _cpu_per_call(action: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        action()
    return (time.process_time() - start) / count


def _cpu(client: ssl.SSLContext, port: int, issuer: ConfigfsTsmIssuer) -> None:
    """Process CPU per handshake (client and server both in this process), ABC in blocks."""
    fresh, plain, quotes = [], [], []
    for _ in range(CPU_BLOCKS):
        fresh.append(
            _cpu_per_call(
                lambda: _handshake(client, port, encode_sni(os.urandom(32), "localhost")), BLOCK
            )
        )
        plain.append(_cpu_per_call(lambda: _handshake(client, port, "localhost"), BLOCK))
        quotes.append(_cpu_per_call(lambda: issuer.issue(os.urandom(64)), BLOCK))
    a, b, q = (statistics.median(values) * 1e3 for values in (fresh, plain, quotes))
    print(
        f"CPU per handshake: per-connection {a:.3f} ms, plain {b:.3f} ms, quote {q:.3f} ms; "
        f"(per-connection - quote) / plain = {(a - q) / b:.2f}"
    )


def _end_to_end(client: ssl.SSLContext, port: int, pki: DcapTestPki, directory: Path) -> None:
    """Informational: a real aTLS client (tdx.dcap appraisal through dcap-qvl) vs plain."""
    collateral = directory / "collateral.json"
    collateral.write_text(pki.collateral_json("tdx"))
    root_ca = directory / "root.pem"
    root_ca.write_text(pki.root_ca_pem)
    validator = select_validator(
        "tdx.dcap",
        settings={
            "collateral_file": str(collateral),
            "root_ca": str(root_ca),
            "allow_custom_root": True,
            "cache_dir": "none",
        },
        policy=Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()}),
        allow_insecure=True,  # the synthetic PKI's root is a tests-only setting
    )
    atls_client = ATLSContext.for_validator(validator)
    logging.getLogger("atls").setLevel(logging.ERROR)  # each result warns of the test root
    ratios = []
    for index in range(PAIRS // 4):
        if index % 2 == 0:
            atls = _handshake(atls_client, port, "127.0.0.1")
            ratios.append(atls / _handshake(client, port, "localhost"))
        else:
            plain = _handshake(client, port, "localhost")
            ratios.append(_handshake(atls_client, port, "127.0.0.1") / plain)
    harness.report("server.atls_client_end_to_end_vs_plain", ratios, "none")


def main() -> None:
    harness.header("server: per-connection freshness vs a static certificate")
    pki = DcapTestPki.generate(seed=b"bench server issuance")
    issuer = ConfigfsTsmIssuer({"root": "report"}, fs=MemoryConfigfsTsm(pki))
    certificates = AttestedCertificates(issuer, hostnames=("localhost",), **_constructor_settings())
    port, close = _serve(certificates.server_context(per_connection=True))
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        _server_side(client, port, issuer)
        _cpu(client, port, issuer)
        with tempfile.TemporaryDirectory(prefix="atls-bench-") as folder:
            try:
                _end_to_end(client, port, pki, Path(folder))
            except Exception as error:  # the TDX validator is optional here
                print(f"aTLS client end to end: skipped ({type(error).__name__}: {error})")
    finally:
        close()


if __name__ == "__main__":
    main()

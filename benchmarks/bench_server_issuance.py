"""Server cost of per-connection freshness: a nonce handshake vs a plain one (TDX synthetic PKI).

Same client set-up for both cases: one plain TLS client context that does not appraise, so
only the server's work differs.  A sends an atls nonce in SNI (the server gets a quote for it
and presents a certificate minted for it); B sends an ordinary server name (the server presents
its static certificate).  A and B alternate (ABAB) against one server context.

The ratio is (A - the quote generation of that handshake) / B, per pair; quote generation
(the evidence source, here configfs-tsm over the synthetic DCAP PKI) stays on the critical path
and is printed separately.  An informational line times a real aTLS client (tdx.dcap appraisal
through dcap-qvl) against plain TLS.

Run: python benchmarks/bench_server_issuance.py   (well under a minute)
"""

from __future__ import annotations

import os
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from atls_core.binding import encode_sni
from atls_core.evidence import Evidence
from atls_core.interfaces import IssuerSpec
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.tls import ATLSContext
from atls_tdx.issuers import ConfigfsTsmIssuer
from atls_tdx.testing.dstack import FakeConfigfsTsm
from atls_tdx.testing.pki import DcapTestPki
from atls_tdx.testing.quotes import DEFAULT_MRTD, make_tdx_quote

PAIRS = 300
WARM_UP = 20
UNLIMITED = {"issuance_rate": None, "per_client_rate": None}
"""The benchmark measures cost, not the rate limit (which would refuse a tight loop)."""


class TimedIssuer:
    """Wraps an issuer and records how long its last quote took."""

    def __init__(self, inner: ConfigfsTsmIssuer) -> None:
        self.inner = inner
        self.last = 0.0

    @property
    def spec(self) -> IssuerSpec:
        return self.inner.spec

    def issue(self, report_data: bytes) -> Evidence:
        start = time.perf_counter()
        evidence = self.inner.issue(report_data)
        self.last = time.perf_counter() - start
        return evidence


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


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, p10 and p90."""
    deciles = statistics.quantiles(values, n=10)
    return statistics.median(values), deciles[0], deciles[-1]


def _constructor_settings() -> dict[str, Any]:
    """Limits off where the server has them (so the same file times an older server too)."""
    import inspect

    names = inspect.signature(AttestedCertificates).parameters
    return {name: value for name, value in UNLIMITED.items() if name in names}


def main() -> None:
    pki = DcapTestPki.generate(seed=b"bench server issuance")
    with tempfile.TemporaryDirectory(prefix="atls-bench-") as folder:
        directory = Path(folder)
        root = directory / "report"
        root.mkdir()
        tsm = FakeConfigfsTsm(root, lambda report_data: make_tdx_quote(pki, report_data))
        issuer = TimedIssuer(ConfigfsTsmIssuer({"root": str(root)}, fs=tsm))
        certificates = AttestedCertificates(
            issuer, hostnames=("localhost",), **_constructor_settings()
        )
        port, close = _serve(certificates.server_context(per_connection=True))

        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        for _ in range(WARM_UP):
            _handshake(client, port, encode_sni(os.urandom(32), "localhost"))
            _handshake(client, port, "localhost")

        ratios: list[float] = []
        fresh: list[float] = []
        plain: list[float] = []
        quotes: list[float] = []
        for _ in range(PAIRS):
            a = _handshake(client, port, encode_sni(os.urandom(32), "localhost"))
            quote = issuer.last
            b = _handshake(client, port, "localhost")
            fresh.append(a)
            plain.append(b)
            quotes.append(quote)
            ratios.append((a - quote) / b)

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
        )
        atls_client = ATLSContext.for_validator(validator)
        end_to_end: list[float] = []
        for _ in range(PAIRS // 3):
            a = _handshake(atls_client, port, "127.0.0.1")
            b = _handshake(client, port, "localhost")
            end_to_end.append(a / b)
        close()

    ratio, low, high = _spread(ratios)
    quote_ms = statistics.median(quotes) * 1e3
    a_ms, b_ms = statistics.median(fresh) * 1e3, statistics.median(plain) * 1e3
    raw_ratio, raw_low, raw_high = _spread([a / b for a, b in zip(fresh, plain, strict=True)])
    e2e, e2e_low, e2e_high = _spread(end_to_end)
    print(f"pairs: {PAIRS} (ABAB), per-connection certificates minted: {certificates.minted}")
    print(f"plain handshake (static certificate)    {b_ms:7.3f} ms")
    print(f"per-connection handshake (with quote)   {a_ms:7.3f} ms")
    print(f"quote generation (configfs-tsm, synthetic PKI) {quote_ms:7.3f} ms")
    print(f"including quote generation: {raw_ratio:.2f} ({raw_low:.2f}–{raw_high:.2f})")
    print(f"aTLS client end to end (tdx.dcap appraisal) vs plain: {e2e:.2f} ({e2e_low:.2f}–{e2e_high:.2f})")
    print(
        f"server.per_connection_vs_plain: {ratio:.2f} ({low:.2f}–{high:.2f}) target <=2.0 "
        f"(+ quote generation {quote_ms:.2f} ms)"
    )


if __name__ == "__main__":
    main()

"""A stand-in for AMD's key distribution service on 127.0.0.1 (plain HTTP, loopback only).

Serves the synthetic PKI the way the real service serves AMD's:
``/vcek|vlek/v1/<Product>/cert_chain`` (PEM), ``/vcek|vlek/v1/<Product>/crl``
(DER) and ``/vcek/v1/<Product>/<hwID>?blSPL=..`` (DER, for VCEKs registered
with :meth:`FakeKds.add_vcek`); anything else is 404.  Counts requests per
path so tests can see what a validator fetched and what it took from its cache.
"""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from atls_snp.roots import SigningKey
from atls_snp.testing.pki import Endorsement, SnpTestPki

__all__ = ["FakeKds", "vcek_query"]


def vcek_query(tcb: Mapping[str, int], *, turin: bool) -> dict[str, int]:
    query = {
        "blSPL": tcb["bootloader"],
        "teeSPL": tcb["tee"],
        "snpSPL": tcb["snp"],
        "ucodeSPL": tcb["microcode"],
    }
    if turin:
        query["fmcSPL"] = tcb.get("fmc", 0)
    return query


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        kds = self.server.kds
        parts = urlsplit(self.path)
        with kds.lock:
            kds.requests[parts.path] += 1
        body = kds.answer(parts.path, dict(parse_qsl(parts.query)))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kds: FakeKds) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.kds = kds


class FakeKds:
    """``with FakeKds(pki) as kds: settings = {"kds_url": kds.url, ...}``."""

    def __init__(self, pki: SnpTestPki) -> None:
        self.pki = pki
        self.crl: bytes | None = pki.crl()
        """What ``/crl`` answers (None: 404)."""
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._vceks: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._server = _Server(self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_vcek(self, vcek: Endorsement) -> None:
        turin = self.pki.product.turin_layout
        hw_id = vcek.chip_id[:8] if turin else vcek.chip_id
        query = tuple(sorted((k, f"{v:02d}") for k, v in vcek_query(vcek.tcb, turin=turin).items()))
        self._vceks[(hw_id.hex(), query)] = vcek.certificate

    def answer(self, path: str, query: Mapping[str, str]) -> bytes | None:
        product = self.pki.product.value
        for kind, signing in (("vcek", SigningKey.VCEK), ("vlek", SigningKey.VLEK)):
            if path == f"/{kind}/v1/{product}/cert_chain":
                return self.pki.cert_chain_pem(signing)
            if path == f"/{kind}/v1/{product}/crl":
                return self.crl
        prefix = f"/vcek/v1/{product}/"
        if path.startswith(prefix):
            key = (path[len(prefix) :], tuple(sorted(query.items())))
            return self._vceks.get(key)
        return None

    def total(self) -> int:
        with self.lock:
            return sum(self.requests.values())

    def __enter__(self) -> FakeKds:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

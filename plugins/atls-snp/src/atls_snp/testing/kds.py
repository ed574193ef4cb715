"""A stand-in for AMD's key distribution service on 127.0.0.1 (plain HTTP, loopback only).

Serves the synthetic PKI the way the real service serves AMD's:
``/vcek|vlek/v1/<Product>/cert_chain`` (PEM), ``/vcek|vlek/v1/<Product>/crl``
(DER) and ``/vcek/v1/<Product>/<hwID>?blSPL=..`` (DER, for VCEKs registered
with :meth:`FakeKds.add_vcek`); anything else is 404.  :attr:`FakeKds.replies`
answers a path with other bytes (a wrong answer).  Counts requests per path so
tests can see what a validator fetched and what it took from its cache.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from atls_core.testing.httpd import LoopbackHTTPServer, QuietHandler
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


def _handler(kds: FakeKds) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with kds.lock:
                kds.requests[parts.path] += 1
            body = kds.answer(parts.path, dict(parse_qsl(parts.query)))
            if body is None:
                self.send_body(404, b"")
            else:
                self.send_body(200, body, "application/octet-stream")

    return Handler


class FakeKds:
    """``with FakeKds(pki) as kds: settings = {"kds_url": kds.url, ...}``; it serves from
    construction (on the core test kit's loopback server) until the ``with`` ends."""

    def __init__(self, pki: SnpTestPki) -> None:
        self.pki = pki
        self.crl: bytes | None = pki.crl()
        """What ``/crl`` answers (None: 404)."""
        self.replies: dict[str, bytes] = {}
        """Answers by path (no query) that replace the PKI's, e.g. a wrong certificate."""
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._vceks: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._server = LoopbackHTTPServer(_handler(self))
        self.url = self._server.url

    def add_vcek(self, vcek: Endorsement) -> None:
        turin = self.pki.product.turin_layout
        hw_id = vcek.chip_id[:8] if turin else vcek.chip_id
        query = tuple(sorted((k, f"{v:02d}") for k, v in vcek_query(vcek.tcb, turin=turin).items()))
        self._vceks[(hw_id.hex(), query)] = vcek.certificate

    def answer(self, path: str, query: Mapping[str, str]) -> bytes | None:
        if path in self.replies:
            return self.replies[path]
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
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

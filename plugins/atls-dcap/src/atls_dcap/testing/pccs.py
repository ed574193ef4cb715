"""FakePcs: a real HTTP server on 127.0.0.1 shaped like Intel PCS / a PCCS.

It serves one collateral (dcap-qvl's QuoteCollateralV3 JSON, e.g. from
``DcapTestPki.collateral_json`` or a recorded file) on the PCS API v4
endpoints, with Intel's response headers, as ``atls_dcap.pcs`` fetches them:
``/sgx/certification/v4/pckcrl?ca=...&encoding=der`` (DER), ``/<tee>/certification/v4/tcb?fmspc=``
and ``/<tee>/certification/v4/qe/identity`` (the TEE must be the collateral's,
the FMSPC its TCB info's, else 404).  ``flavour="pccs"`` (default) also serves
``/sgx/certification/v4/rootcacrl`` (hex) and names the TCB info chain
``SGX-TCB-Info-Issuer-Chain``, as a PCCS does; ``flavour="pcs"`` answers as
Intel PCS v4 (``TCB-Info-Issuer-Chain``, no ``rootcacrl``) and serves the root
CRL as DER at :attr:`FakePcs.root_crl_url`, standing in for Intel's
distribution point.  Tests use it to exercise the real fetch path: request
counters prove cache hits perform no request, ``delay`` and ``fail_with``
simulate a slow or broken service, :attr:`FakePcs.authorizations` shows what
credentials arrived.

    with FakePcs(collateral_json) as pcs:
        settings = {"collateral": "pccs", "pccs_url": pcs.url, ...}

For tests only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from atls_core.testing.httpd import LoopbackHTTPServer, QuietHandler

__all__ = ["FakePcs"]

_ROOT_CRL_PATH = "/IntelSGXRootCA.der"


class FakePcs:
    """A PCS/PCCS look-alike serving one collateral (see module doc)."""

    def __init__(self, collateral_json: str, *, delay: float = 0.0, flavour: str = "pccs") -> None:
        if flavour not in ("pccs", "pcs"):
            raise ValueError(f"flavour must be 'pccs' or 'pcs', got {flavour!r}")
        self.flavour = flavour
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        """Requests per endpoint name (``pckcrl``, ``rootcacrl``, ``tcb``, ``qe_identity``,
        ``rootca.crl``)."""
        self.paths: list[str] = []
        self.authorizations: list[str | None] = []
        """The ``Authorization`` header of every request (``None`` when absent)."""
        self.delay = delay
        """Seconds to wait before answering (simulates a slow service)."""
        self.fail_with: int | None = None
        """An HTTP status to answer every request with (simulates a broken service)."""
        self.set_collateral(collateral_json)
        self._server: LoopbackHTTPServer | None = None

    # -- configuration --------------------------------------------------------------

    def set_collateral(self, collateral_json: str) -> None:
        """Serve another collateral from now on (e.g. a newer TCB info)."""
        data = json.loads(collateral_json)
        with self._lock:
            self._collateral: dict[str, Any] = data

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.paths.clear()
            self.authorizations.clear()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakePcs is not running: use it as a context manager")
        return self._server.url

    @property
    def root_crl_url(self) -> str:
        """Where ``flavour="pcs"`` serves the root CA CRL (DER)."""
        return f"{self.url}{_ROOT_CRL_PATH}"

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakePcs:
        owner = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._handle(self)

        self._server = LoopbackHTTPServer(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> FakePcs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------

    def _handle(self, request: QuietHandler) -> None:
        parts = urlsplit(request.path)
        name = self._endpoint(parts.path)
        with self._lock:
            self.requests[name] += 1
            self.paths.append(request.path)
            self.authorizations.append(request.headers.get("Authorization"))
            collateral = dict(self._collateral)
            delay, fail_with = self.delay, self.fail_with
        if delay:
            time.sleep(delay)
        if fail_with is not None:
            self._send(request, fail_with, b"simulated failure", {})
            return
        query = parse_qs(parts.query)
        try:
            status, body, headers = self._answer(name, parts.path, query, collateral)
        except (KeyError, ValueError):
            status, body, headers = 500, b"collateral lacks this item", {}
        self._send(request, status, body, headers)

    @staticmethod
    def _endpoint(path: str) -> str:
        if path == _ROOT_CRL_PATH:
            return "rootca.crl"
        for prefix in ("/sgx/certification/v4/", "/tdx/certification/v4/"):
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                return {"qe/identity": "qe_identity"}.get(rest, rest)
        return path

    def _answer(
        self, name: str, path: str, query: dict[str, list[str]], collateral: dict[str, Any]
    ) -> tuple[int, bytes, dict[str, str]]:
        pcs = self.flavour == "pcs"
        tee = "tdx" if json.loads(collateral["tcb_info"]).get("id") == "TDX" else "sgx"
        if name in ("tcb", "qe_identity") and not path.startswith(f"/{tee}/"):
            return 404, b"no such collateral for this TEE", {}
        if name in ("pckcrl", "rootcacrl") and not path.startswith("/sgx/"):
            return 404, b"not found", {}
        if name == "pckcrl":
            der = bytes.fromhex(collateral["pck_crl"])
            headers = {"SGX-PCK-CRL-Issuer-Chain": quote(collateral["pck_crl_issuer_chain"])}
            if query.get("encoding") == ["der"]:
                return 200, der, {**headers, "Content-Type": "application/pkix-crl"}
            return 200, der.hex().encode(), headers
        if name == "rootcacrl" and not pcs:
            # PCCS answers with the hex of the DER CRL.
            return 200, collateral["root_ca_crl"].encode(), {}
        if name == "rootca.crl" and pcs:
            return 200, bytes.fromhex(collateral["root_ca_crl"]), {}
        if name == "tcb":
            wanted = (query.get("fmspc") or [""])[0].upper()
            tcb_info = collateral["tcb_info"]
            if wanted != str(json.loads(tcb_info).get("fmspc", "")).upper():
                return 404, b"unknown fmspc", {}
            signature = _hex(collateral["tcb_info_signature"])
            body = '{"tcbInfo":' + tcb_info + ',"signature":"' + signature + '"}'
            chain = quote(collateral["tcb_info_issuer_chain"])
            header = "TCB-Info-Issuer-Chain" if pcs else "SGX-TCB-Info-Issuer-Chain"
            return 200, body.encode(), {header: chain, "Content-Type": "application/json"}
        if name == "qe_identity":
            signature = _hex(collateral["qe_identity_signature"])
            body = (
                '{"enclaveIdentity":'
                + collateral["qe_identity"]
                + ',"signature":"'
                + signature
                + '"}'
            )
            chain = quote(collateral["qe_identity_issuer_chain"])
            headers = {
                "SGX-Enclave-Identity-Issuer-Chain": chain,
                "Content-Type": "application/json",
            }
            return 200, body.encode(), headers
        return 404, b"not found", {}

    @staticmethod
    def _send(request: QuietHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        kind = headers.pop("Content-Type", "text/plain")
        request.send_body(status, body, content_type=kind, headers=headers)


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return bytes(value).hex()

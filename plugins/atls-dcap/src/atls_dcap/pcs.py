"""Intel PCS / PCCS collateral, fetched in Python; dcap-qvl only verifies it.

dcap-qvl's own fetcher runs on a native async runtime whose threads outlive
the call: still running at interpreter shutdown they crashed a CLI that could
not reach its PCCS (SIGSEGV in about one run in six), and a forked child (a
pre-forking web server's worker) has no runtime left to fetch with.  So the
documents are fetched here, each through :func:`atls_core.fetch.fetch` under
one deadline for the whole collateral (size caps, no redirects, TLS verified),
and assembled into the ``QuoteCollateralV3`` JSON that dcap-qvl reads.  These
are the documents dcap-qvl's fetcher asks for (PCS API v4):

* PCK CRL: ``/sgx/certification/v4/pckcrl?ca=<processor|platform>&encoding=der``,
  DER body, issuer chain in header ``SGX-PCK-CRL-Issuer-Chain``;
* TCB info: ``/<sgx|tdx>/certification/v4/tcb?fmspc=<FMSPC>``, body
  ``{"tcbInfo": {...}, "signature": "<hex>"}``, chain in ``TCB-Info-Issuer-Chain``
  (Intel PCS v4) or ``SGX-TCB-Info-Issuer-Chain`` (PCCS);
* QE identity: ``/<sgx|tdx>/certification/v4/qe/identity?update=standard``, body
  ``{"enclaveIdentity": {...}, "signature": "<hex>"}``, chain in
  ``SGX-Enclave-Identity-Issuer-Chain``;
* root CA CRL: a PCCS serves it at ``/sgx/certification/v4/rootcacrl`` (hex of
  the DER; DER accepted too); Intel PCS has no such endpoint, the CRL is at the
  distribution point Intel's root certificate names (:data:`INTEL_ROOT_CA_CRL_URL`,
  a fixed URL: never one read from a certificate nobody has verified yet).

Issuer chains are URL-encoded PEM.  The signed ``tcbInfo`` / ``enclaveIdentity``
text is passed on byte for byte: the signatures cover exactly those bytes.
Nothing is trusted here; dcap-qvl checks every signature, chain and CRL at
appraisal time.  Errors name services by their redacted URL (no credentials).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Mapping

from atls_core.errors import CollateralUnavailable, ServiceUnavailable
from atls_core.fetch import Response, fetch
from atls_core.redact import redact_url

__all__ = ["INTEL_ROOT_CA_CRL_URL", "fetch_collateral"]

INTEL_ROOT_CA_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
"""The CRL distribution point of Intel's SGX root CA (where Intel PCS users get the root CRL)."""

_CHECK = "collateral.fetch"
_MAX_BYTES = 4 << 20
"""Per document; Intel's largest (a platform CA's PCK CRL) is a few hundred KiB."""
_CAS = frozenset({"processor", "platform"})
_TEES = frozenset({"sgx", "tdx"})
_FMSPC = re.compile(r"[0-9A-F]{12}")
_DECODER = json.JSONDecoder()
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_SUFFIXES = ("/sgx/certification/v4", "/tdx/certification/v4")


def fetch_collateral(
    base_url: str,
    *,
    tee: str,
    fmspc: str,
    ca: str,
    timeout: float,
    root_crl_url: str | None = None,
) -> str:
    """The ``QuoteCollateralV3`` JSON for one platform (FMSPC, PCK CA) and TEE type.

    ``timeout`` bounds the whole exchange (every document).  ``root_crl_url``:
    where the root CA CRL is (Intel PCS); ``None`` asks the PCCS at ``base_url``.
    Raises :class:`~atls_core.errors.CollateralUnavailable` (check
    ``collateral.fetch``, or ``collateral.timeout`` when the deadline passed).
    """
    if tee not in _TEES or ca not in _CAS or not _FMSPC.fullmatch(fmspc):
        raise ValueError(f"unexpected platform: tee={tee!r} ca={ca!r} fmspc={fmspc!r}")
    client = _Client(base_url, deadline=time.monotonic() + timeout, timeout=timeout)
    pck_crl = client.get("sgx", "pckcrl", {"ca": ca, "encoding": "der"}, what="PCK CRL")
    tcb = client.get(tee, "tcb", {"fmspc": fmspc}, what="TCB info")
    qe = client.get(tee, "qe/identity", {"update": "standard"}, what="QE identity")
    if root_crl_url is None:
        root = client.get("sgx", "rootcacrl", {}, what="root CA CRL")
    else:
        root = client.get_url(root_crl_url, what="root CA CRL")
    tcb_info, tcb_signature = _signed_body(tcb, "tcbInfo", "TCB info")
    qe_identity, qe_signature = _signed_body(qe, "enclaveIdentity", "QE identity")
    return json.dumps(
        {
            "pck_crl_issuer_chain": _chain(pck_crl, ("SGX-PCK-CRL-Issuer-Chain",), "PCK CRL"),
            "root_ca_crl": _crl_der(root.body, "root CA CRL").hex(),
            "pck_crl": _crl_der(pck_crl.body, "PCK CRL").hex(),
            "tcb_info_issuer_chain": _chain(
                tcb, ("TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"), "TCB info"
            ),
            "tcb_info": tcb_info,
            "tcb_info_signature": tcb_signature,
            "qe_identity_issuer_chain": _chain(
                qe, ("SGX-Enclave-Identity-Issuer-Chain",), "QE identity"
            ),
            "qe_identity": qe_identity,
            "qe_identity_signature": qe_signature,
        }
    )


class _Client:
    """GETs under one deadline; URLs built from the configured base (userinfo and query kept)."""

    def __init__(self, base_url: str, *, deadline: float, timeout: float) -> None:
        parts = urllib.parse.urlsplit(base_url)
        path = parts.path.rstrip("/")
        for suffix in _SUFFIXES:  # a PCCS URL pasted with its API path
            path = path.removesuffix(suffix)
        self._parts = parts._replace(path=path, fragment="")
        self._deadline = deadline
        self._timeout = timeout

    def get(self, tee: str, endpoint: str, query: Mapping[str, str], *, what: str) -> Response:
        parts = self._parts
        encoded = urllib.parse.urlencode(query)
        if parts.query:
            encoded = f"{parts.query}&{encoded}" if encoded else parts.query
        url = parts._replace(path=f"{parts.path}/{tee}/certification/v4/{endpoint}", query=encoded)
        return self.get_url(urllib.parse.urlunsplit(url), what=what)

    def get_url(self, url: str, *, what: str) -> Response:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise CollateralUnavailable(
                f"{what}: no answer within {self._timeout:g} s from {redact_url(url)}",
                check="collateral.timeout",
            )
        try:
            return fetch(
                url,
                timeout=left,
                expect=(200,),
                max_bytes=_MAX_BYTES,
                name=what,
                check=_CHECK,
            )
        except ServiceUnavailable as exc:
            if exc.phase != "timeout":
                raise
            raise ServiceUnavailable(
                f"{what}: no answer within {self._timeout:g} s from {exc.service}",
                service=exc.service,
                phase=exc.phase,
                check="collateral.timeout",
            ) from None


def _unusable(what: str, why: str) -> CollateralUnavailable:
    return CollateralUnavailable(f"{what} is unusable: {why}", check=_CHECK)


def _chain(response: Response, headers: tuple[str, ...], what: str) -> str:
    for name in headers:
        value = response.header(name)
        if value is not None:
            chain = urllib.parse.unquote(value.strip())
            if _PEM_CERTIFICATE not in chain:
                raise _unusable(what, f"header {name} holds no PEM certificate")
            return chain
    raise _unusable(what, f"the answer lacks header {headers[0]}")


def _looks_like_der(data: bytes) -> bool:
    """A DER SEQUENCE with a long-form length, as any CRL (over 127 bytes) starts.

    Hex text never does: its second byte is an ASCII digit or letter.
    """
    return len(data) > 2 and data[0] == 0x30 and 0x81 <= data[1] <= 0x84


def _crl_der(body: bytes, what: str) -> bytes:
    """A CRL as DER: given as DER, PEM, or the hex of the DER (PCCS)."""
    if _looks_like_der(body):
        return body
    text = body.strip()
    if text.startswith(b"-----BEGIN X509 CRL-----"):
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        try:
            return x509.load_pem_x509_crl(text).public_bytes(Encoding.DER)
        except ValueError:
            raise _unusable(what, "not a PEM CRL") from None
    try:
        der = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise _unusable(what, "neither DER, PEM nor hex") from None
    if not _looks_like_der(der):
        raise _unusable(what, "not a DER CRL")
    return der


def _signed_body(response: Response, member: str, what: str) -> tuple[str, str]:
    """The exact text of ``member`` (a JSON object) and its hex ``signature``."""
    try:
        text = response.body.decode("utf-8")
        spans = _members(text)
        start, end = spans[member]
        signature = json.loads(text[slice(*spans["signature"])])
    except UnicodeDecodeError:
        raise _unusable(what, "the answer is not UTF-8") from None
    except KeyError as exc:
        raise _unusable(what, f"the answer lacks {exc.args[0]!r}") from None
    except (ValueError, RecursionError):
        raise _unusable(what, "the answer is not a JSON object") from None
    if text[start] != "{":
        raise _unusable(what, f"{member!r} is not an object")
    if not isinstance(signature, str):
        raise _unusable(what, "the signature is not a string")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise _unusable(what, "the signature is not hex") from None
    return text[start:end], raw.hex()


def _members(text: str) -> dict[str, tuple[int, int]]:
    """Top-level members of a JSON object and the spans of their values' text.

    Raises ValueError for anything but one object (duplicate names included:
    two signed bodies in one answer would leave it open which one was meant).
    """
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not an object")
    spans: dict[str, tuple[int, int]] = {}
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i : i + 1] != '"':
                raise ValueError("expected a member name")
            name, i = _scanstring(text, i + 1)
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError("expected ':'")
            start = _skip(text, i + 1)
            _value, end = _DECODER.raw_decode(text, start)
            if name in spans:
                raise ValueError(f"duplicate member {name!r}")
            spans[name] = (start, end)
            i = _skip(text, end)
            if text[i : i + 1] == "}":
                i += 1
                break
            if text[i : i + 1] != ",":
                raise ValueError("expected ',' or '}'")
            i = _skip(text, i + 1)
    if _skip(text, i) != len(text):
        raise ValueError("trailing data")
    return spans


def _skip(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after ``i`` (JSON whitespace)."""
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _scanstring(text: str, end: int) -> tuple[str, int]:
    """A JSON string whose opening quote is at ``end - 1``: its value and the index after it."""
    name, after = json.decoder.scanstring(text, end)  # type: ignore[attr-defined]
    return str(name), int(after)

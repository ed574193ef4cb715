"""A stand-in Intel Trust Authority service on loopback, for tests and demos.

A real HTTP server on 127.0.0.1 that implements the three endpoints atls uses:

* ``GET /appraisal/v2/nonce`` -- a signed nonce (``x-api-key`` required);
* ``POST /appraisal/v2/attest`` -- checks the API key and that the nonce is one
  it issued (signature and single use), then signs a token (v2 or v1 shape);
* ``GET /certs`` -- the JWKS, each key with its ``x5c`` chain;

plus ``/crl/root.crl`` and ``/crl/signing-ca.crl`` for the CRL distribution
points of its :class:`~atls_ita.testing.pki.StandInPki`.

It does NOT verify the quote (it cannot: the tests' configfs-tsm emulation
returns arbitrary bytes); it only checks that the quote bytes contain the
report data ITA's rule requires, SHA-512(nonce.val || nonce.iat ||
runtime_data), so an issuer computing it wrongly gets no token.  It reports the measurements, TCB status and debug
flag it was configured with, and computes ``tdx_report_data`` from the nonce and
runtime data as a real ITA would find it in a quote made by atls' issuer.  What
it proves is the protocol and the token path, not a TEE.  INSECURE BY DESIGN.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from atls_core.clock import Clock, SystemClock
from atls_core.testing.httpd import LoopbackHTTPServer, QuietHandler
from atls_ita.testing.pki import StandInPki

__all__ = ["SGX_MRENCLAVE", "SGX_MRSIGNER", "StandInIta", "default_measurements", "workload_pin"]

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.DIGEST_LENGTH)


SGX_MRENCLAVE = hashlib.sha256(b"enclave").hexdigest()
SGX_MRSIGNER = hashlib.sha256(b"signer").hexdigest()


def workload_pin(tee: str = "tdx") -> dict[str, str]:
    """Reference values that pin the stand-in's default workload (``mrtd`` / ``mrenclave``).

    The core refuses an unpinned workload; tests that are about something
    else pin with this so that only what they change decides.
    """
    if tee == "sgx":
        return {"mrenclave": SGX_MRENCLAVE}
    return {"mrtd": default_measurements()["mrtd"]}


def default_measurements() -> dict[str, str]:
    """Plausible-looking TDX measurements (48 bytes each)."""
    names = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrseam")
    values = {n: hashlib.sha384(n.encode()).hexdigest() for n in names}
    values |= dict.fromkeys(("mrsignerseam", "mrconfigid", "mrowner", "mrownerconfig"), "00" * 48)
    return values


class StandInIta:
    """Context manager: ``with StandInIta(api_key="k") as ita: ita.url``."""

    def __init__(
        self,
        *,
        api_key: str,
        clock: Clock | None = None,
        shape: str = "v2",
        issuer: str = "Intel Trust Authority",
        lifetime: dt.timedelta = dt.timedelta(minutes=5),
        pki_not_before: dt.datetime | None = None,
    ) -> None:
        self._api_key = api_key
        self.clock = clock or SystemClock()
        self.shape = shape
        self.tee = "tdx"
        """``tdx`` or ``sgx``: which TEE's claims tokens carry (the attest endpoint is TDX)."""
        self.issuer = issuer
        self.lifetime = lifetime
        self.tcb_status = "UpToDate"
        self.tcb_date = "2024-03-13T00:00:00Z"
        self.advisory_ids: list[str] = []
        self.debug = False
        self.measurements = default_measurements()
        self.policy_ids_matched: list[str] = []
        self.policy_ids_unmatched: list[str] = []
        self.report_data_override: bytes | None = None
        self.tdx_claims_override: dict[str, Any] = {}
        """TDX claims replacing those a token carries; ``None`` leaves a claim out."""
        self.fail_certs = False
        self.fail_crls = False
        self.check_quote_report_data = True
        self.revoked_leaves: set[int] = set()
        self.revoked_cas: set[int] = set()
        self.crl_lifetime = dt.timedelta(days=7)
        """nextUpdate of the CRLs served, after the clock's now (zero: stale at once)."""
        self.crl_key: rsa.RSAPrivateKey | None = None
        """Signs the CRLs served instead of their issuer (forged CRLs), when set."""
        self.requests: collections.Counter[str] = collections.Counter()
        self.last_attest_body: dict[str, Any] | None = None
        self._nonces: set[bytes] = set()
        self._lock = threading.Lock()
        self._server = LoopbackHTTPServer(_handler(self))
        self.url = self._server.url
        self.pki = StandInPki.generate(crl_base_url=self.url, not_before=pki_not_before)

    def __repr__(self) -> str:
        return f"StandInIta(url={self.url!r})"

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> StandInIta:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    # -- helpers for tests ---------------------------------------------------

    @property
    def jwks_url(self) -> str:
        return self.url + "/certs"

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.pki.root_pem)
        return path

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.pki.jwks()))
        return path

    def validator_settings(self, root_path: Path, **extra: Any) -> dict[str, Any]:
        """Settings that trust this stand-in (explicitly: its root and its key URL, which is
        plain http on loopback: the tests-only ``allow_http_loopback``)."""
        return {
            "jwks_url": self.jwks_url,
            "root_ca": str(self.write_root(root_path)),
            "allow_http_loopback": True,
            **extra,
        }

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        alg: str = "PS384",
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        signer = self.pki.signers[alg]
        header = {"kid": signer.kid if kid is None else kid, "typ": "JWT"}
        header |= {"jku": self.jwks_url} | dict(headers or {})
        return jwt.encode(dict(claims), signer.key, algorithm=alg, headers=header)

    def new_nonce(self) -> dict[str, str]:
        val = base64.b64encode(secrets.token_bytes(48))
        iat = self.clock.now().strftime("%Y-%m-%d %H:%M:%S +0000 UTC").encode()
        signature = self.pki.signers["PS384"].key.sign(val + iat, _PSS, hashes.SHA384())
        with self._lock:
            self._nonces.add(val + iat)
        return {
            "val": base64.b64encode(val).decode(),
            "iat": base64.b64encode(iat).decode(),
            "signature": base64.b64encode(signature).decode(),
        }

    def take_nonce(self, nonce: Mapping[str, Any]) -> bytes:
        """Check a nonce we issued (signature, single use); return val || iat."""
        val = base64.b64decode(nonce["val"], validate=True)
        iat = base64.b64decode(nonce["iat"], validate=True)
        signature = base64.b64decode(nonce["signature"], validate=True)
        self.pki.signers["PS384"].key.public_key().verify(
            signature, val + iat, _PSS, hashes.SHA384()
        )
        with self._lock:
            if val + iat not in self._nonces:
                raise ValueError("unknown or reused nonce")
            self._nonces.discard(val + iat)
        return val + iat

    def claims_for(
        self,
        *,
        runtime_data: bytes,
        nonce: Mapping[str, Any] | None,
        nonce_prefix: bytes = b"",
    ) -> dict[str, Any]:
        """The claims a real ITA would sign for a quote over our issuer's report data."""
        now = int(self.clock.now().timestamp())
        common: dict[str, Any] = {
            "attester_tcb_status": self.tcb_status,
            "attester_tcb_date": self.tcb_date,
            "attester_advisory_ids": list(self.advisory_ids),
            "attester_held_data": base64.b64encode(runtime_data).decode(),
            "dbgstat": "enabled" if self.debug else "disabled",
        }
        if self.tee == "sgx":
            report_data = self.report_data_override or (
                hashlib.sha256(nonce_prefix + runtime_data).digest() + bytes(32)
            )
            tee: dict[str, Any] = {
                "attester_type": "SGX",
                **common,
                "sgx_report_data": report_data.hex(),
                "sgx_is_debuggable": self.debug,
                "sgx_mrenclave": SGX_MRENCLAVE,
                "sgx_mrsigner": SGX_MRSIGNER,
                "sgx_isvprodid": 1,
                "sgx_isvsvn": 3,
            }
        else:
            report_data = (
                self.report_data_override or hashlib.sha512(nonce_prefix + runtime_data).digest()
            )
            tee = {
                "attester_type": "TDX",
                **common,
                "tdx_report_data": report_data.hex(),
                "tdx_is_debuggable": self.debug,
                "tdx_td_attributes": ("01" if self.debug else "00") + "00001000000000",
                "tdx_td_attributes_debug": self.debug,
                "tdx_seam_attributes": "0000000000000000",
                "tdx_tee_tcb_svn": "04010700000000000000000000000000",
                "tdx_xfam": "e702060000000000",
                "tdx_seamsvn": 263,
            }
            tee |= {f"tdx_{name}": value for name, value in self.measurements.items()}
            tee |= self.tdx_claims_override
            tee = {name: value for name, value in tee.items() if value is not None}
        if nonce is not None:
            tee["verifier_nonce"] = dict(nonce)
        top: dict[str, Any] = {
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + int(self.lifetime.total_seconds()),
            "jti": str(uuid.uuid4()),
            "eat_profile": self.url + "/eat_profile.html",
            "intuse": "generic",
            "verifier_instance_ids": [str(uuid.uuid4())],
            "policy_ids_matched": [{"id": p, "version": "v1"} for p in self.policy_ids_matched],
            "policy_ids_unmatched": [{"id": p, "version": "v1"} for p in self.policy_ids_unmatched],
        }
        if self.shape == "v2":
            return {"ver": "2.0.0", **top, self.tee: tee}
        return {"ver": "1.0.0", **top, **tee}

    # -- endpoints -----------------------------------------------------------

    def _authorised(self, given: str | None) -> bool:
        given = given or ""
        return secrets.compare_digest(given.encode(), self._api_key.encode())

    def _attest(self, body: Mapping[str, Any]) -> str:
        tdx = body["tdx"]
        quote = base64.b64decode(tdx["quote"], validate=True)
        runtime_data = base64.b64decode(tdx.get("runtime_data") or "", validate=True)
        nonce = tdx.get("verifier_nonce")
        prefix = self.take_nonce(nonce) if nonce is not None else b""
        # Not a quote verification: only that the attester asked its TEE for the
        # report data ITA's rule gives (the emulated quote embeds it).
        expected = hashlib.sha512(prefix + runtime_data).digest()
        if self.check_quote_report_data and expected not in quote:
            raise ValueError("the quote does not carry the expected report data")
        claims = self.claims_for(runtime_data=runtime_data, nonce=nonce, nonce_prefix=prefix)
        alg = body.get("token_signing_alg") or "PS384"
        return self.sign(claims, alg=alg)

    def crl(self, which: str) -> bytes:
        revoked = self.revoked_cas if which == "root" else self.revoked_leaves
        return self.pki.crl(
            which,
            revoked=revoked,
            now=self.clock.now(),
            lifetime=self.crl_lifetime,
            key=self.crl_key,
        )


def _handler(service: StandInIta) -> type[QuietHandler]:
    class Handler(QuietHandler):
        server_version = "StandInITA/0"

        def do_GET(self) -> None:
            service.requests[self.path] += 1
            if self.path == "/certs":
                if service.fail_certs:
                    self.send_json(503, {"error": "unavailable"})
                else:
                    self.send_json(200, service.pki.jwks())
            elif self.path == "/appraisal/v2/nonce":
                if not service._authorised(self.headers.get("x-api-key")):
                    self.send_json(401, {"error": "unauthorized"})
                else:
                    self.send_json(200, service.new_nonce())
            elif self.path in ("/crl/root.crl", "/crl/signing-ca.crl") and service.fail_crls:
                self.send_json(503, {"error": "unavailable"})
            elif self.path in ("/crl/root.crl", "/crl/signing-ca.crl"):
                which = "root" if self.path.endswith("root.crl") else "signing-ca"
                self.send_body(200, service.crl(which), "application/pkix-crl")
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            service.requests[self.path] += 1
            if self.path != "/appraisal/v2/attest":
                self.send_json(404, {"error": "not found"})
                return
            if not service._authorised(self.headers.get("x-api-key")):
                self.send_json(401, {"error": "unauthorized"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
                service.last_attest_body = body
                token = service._attest(body)
            except (ValueError, KeyError, TypeError, InvalidSignature):
                self.send_json(400, {"error": "bad request"})
                return
            self.send_json(200, {"token": token})

    return Handler

"""A stand-in Microsoft Azure Attestation service on loopback, for tests.

A real HTTP server on 127.0.0.1 that behaves like an MAA instance as far as a
relying party can see: ``/.well-known/openid-configuration``, ``/certs``
(self-signed RSA certificates in ``x5c``, as MAA publishes) and RS256 tokens
with MAA's claim names.  It also answers the SKR sidecar's ``POST
/attest/maa`` so the ACI issuer can be exercised end to end.  It attests
nothing: it signs whatever claims the test asks for with a key generated in
this process.  Configure it as a trusted instance with
``allow_http_loopback = true`` (test-only; production requires https).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from atls_azure import specs
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import IssuerSpec
from atls_core.testing.httpd import LoopbackHTTPServer, QuietHandler

if TYPE_CHECKING:
    import atls_azure.aci

__all__ = [
    "STAND_IN_VM_ID",
    "SigningKey",
    "StandInCvmIssuer",
    "StandInMaa",
    "held_data_for",
    "new_tls_key",
    "token_evidence",
]


class SigningKey:
    """An RSA key with a self-signed certificate, published as an MAA-style JWK."""

    def __init__(self, subject: str, *, kid: str | None = None, bits: int = 2048) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2019, 5, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2050, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
            .sign(self.private_key, hashes.SHA256())
        )
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.kid = kid or base64.b64encode(hashlib.sha256(der).digest()).decode()
        self.jwk: dict[str, Any] = {
            "kid": self.kid,
            "kty": "RSA",
            "x5c": [base64.b64encode(der).decode()],
        }

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_tls_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A fresh P-256 TLS key and its SubjectPublicKeyInfo (DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, spki


def held_data_for(private_key: ec.EllipticCurvePrivateKey, **extra: Any) -> bytes:
    """Enclave-held data in the shape MAA samples use: JSON carrying the key as ``jwk``."""
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    return json.dumps({"jwk": jwk, **extra}).encode()


STAND_IN_VM_ID = "A80B7FE7-5B93-4027-9971-6CCEE468C2B3"
"""The VM ID (``x-ms-azurevm-vmid``) of the stand-in's confidential VM unless a test names another."""


def token_evidence(token: str, oid: str = specs.ACI_OID, runtime: bytes | None = None) -> Evidence:
    """An MAA token as certificate-borne evidence (``runtime``: the held data beside it)."""
    return Evidence(
        media_type=specs.MEDIA_TYPE,
        data=token.encode(),
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=oid),
        endorsements={"runtime_data": runtime} if runtime is not None else {},
    )


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


class StandInMaa:
    """A loopback MAA instance; use as a context manager or call :meth:`close`."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.down = False
        self.jwks_uri_override: str | None = None
        self.issuer_override: str | None = None
        self.aci_overrides: dict[str, Any] = {}
        self.lifetime = 8 * 3600
        service = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                service.requests[self.path] = service.requests.get(self.path, 0) + 1
                if service.down:
                    self.send_json(503, {"error": "down"})
                elif self.path == "/.well-known/openid-configuration":
                    self.send_json(200, service.openid_configuration())
                elif self.path == "/certs":
                    self.send_json(200, service.jwks())
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                service.requests[self.path] = service.requests.get(self.path, 0) + 1
                body = self.read_body()
                if service.down:
                    self.send_json(503, {"error": "down"})
                    return
                if self.path != "/attest/maa":
                    self.send_json(404, {"error": "not found"})
                    return
                try:
                    request = json.loads(body)
                    runtime = base64.b64decode(request["runtime_data"], validate=True)
                    if not isinstance(request["maa_endpoint"], str):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    self.send_json(400, {"error": "bad request"})
                    return
                self.send_json(200, {"token": service.aci_token(runtime, **service.aci_overrides)})

        self._server = LoopbackHTTPServer(Handler)
        self.url = self._server.url
        self.keys: list[SigningKey] = [SigningKey(self.url)]

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> StandInMaa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it publishes -------------------------------------------------------

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def rotate(self) -> SigningKey:
        """Add a new signing key (published alongside the old ones) and sign with it."""
        key = SigningKey(self.url)
        self.keys.insert(0, key)
        return key

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer_override or self.url,
            "jwks_uri": self.jwks_uri_override or f"{self.url}/certs",
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.keys]}

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Validator settings that trust this instance (test-only http allowance)."""
        return {"instances": [self.url], "allow_http_loopback": True, **extra}

    def aci_validator(
        self, policies: Sequence[str] | None = None, **options: Any
    ) -> atls_azure.aci.AciValidator:
        """The opaque-systems-shaped ``AciValidator`` trusting this instance's keys (over
        loopback http: the tests-only ``allow_http_loopback``, so ``allow_insecure``)."""
        from atls_azure.aci import AciValidator

        settings = {"allow_http_loopback": True, **options.pop("settings", {})}
        return AciValidator(
            policies, [f"{self.url}/certs"], settings=settings, allow_insecure=True, **options
        )

    # -- tokens --------------------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        key = key or self.key
        headers = {"jku": f"{self.url}/certs", "kid": key.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(dict(claims), key.private_key, algorithm="RS256", headers=headers)

    def base_claims(self, attestation_type: str, *, now: int | None = None) -> dict[str, Any]:
        iat = _now() if now is None else now
        return {
            "iss": self.url,
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.lifetime,
            "jti": hashlib.sha256(str(iat).encode() + attestation_type.encode()).hexdigest(),
            "x-ms-attestation-type": attestation_type,
            "x-ms-ver": "1.0",
            "x-ms-policy-hash": "stand-in",
        }

    def aci_claims(self, runtime_data: bytes, **overrides: Any) -> dict[str, Any]:
        claims = self.base_claims("sevsnpvm", now=overrides.pop("now", None))
        claims.update(
            {
                "x-ms-compliance-status": "azure-compliant-uvm",
                "x-ms-runtime": json.loads(runtime_data),
                "x-ms-sevsnpvm-reportdata": hashlib.sha256(runtime_data).hexdigest() + "00" * 32,
                "x-ms-sevsnpvm-hostdata": hashlib.sha256(b"package policy").hexdigest(),
                "x-ms-sevsnpvm-is-debuggable": False,
                "x-ms-sevsnpvm-launchmeasurement": "ab" * 48,
                "x-ms-sevsnpvm-idkeydigest": "cd" * 48,
                "x-ms-sevsnpvm-guestsvn": 2,
                "x-ms-sevsnpvm-bootloader-svn": 3,
                "x-ms-sevsnpvm-tee-svn": 0,
                "x-ms-sevsnpvm-snpfw-svn": 8,
                "x-ms-sevsnpvm-microcode-svn": 115,
                "x-ms-sevsnpvm-vmpl": 0,
                "x-ms-sevsnpvm-migration-allowed": False,
            }
        )
        claims.update(overrides)
        return claims

    def aci_token(self, runtime_data: bytes, **overrides: Any) -> str:
        return self.sign(self.aci_claims(runtime_data, **overrides))

    def cvm_claims(
        self,
        user_data: bytes,
        *,
        tee: str = "sevsnpvm",
        vm_id: str = STAND_IN_VM_ID,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A guest-attestation (``azurevm``) token's claims for one VM, as MAA lays them out."""
        claims = self.base_claims("azurevm", now=overrides.pop("now", None))
        isolation: dict[str, Any] = {
            "x-ms-attestation-type": tee,
            "x-ms-compliance-status": "azure-compliant-cvm",
            "x-ms-runtime": {
                "keys": [{"kid": "HCLAkPub", "kty": "RSA"}],
                "user-data": user_data.hex(),
                "vm-configuration": {
                    "console-enabled": False,
                    "current-time": claims["iat"],
                    "secure-boot": True,
                    "tpm-enabled": True,
                    "vmUniqueId": vm_id,
                },
            },
        }
        if tee == "sevsnpvm":
            isolation["x-ms-sevsnpvm-is-debuggable"] = False
            isolation["x-ms-sevsnpvm-launchmeasurement"] = "ab" * 48
        else:
            isolation["tdx_td_attributes_debug"] = False
            isolation["tdx_mrtd"] = "ab" * 48
        isolation.update(overrides.pop("isolation", {}))
        claims.update(
            {
                "secureboot": True,
                "x-ms-azurevm-attested-pcrs": [0, 1, 2, 3, 4, 5, 6, 7],
                "x-ms-azurevm-debuggersdisabled": True,
                "x-ms-azurevm-kerneldebug-enabled": False,
                "x-ms-azurevm-osdistro": "Ubuntu",
                "x-ms-azurevm-ostype": "Linux",
                "x-ms-azurevm-osversion-major": 22,
                "x-ms-azurevm-osversion-minor": 4,
                "x-ms-azurevm-vmid": vm_id,
                "x-ms-isolation-tee": isolation,
            }
        )
        claims.update(overrides)
        return claims

    def cvm_issuer(self, *, vm_id: str = STAND_IN_VM_ID) -> StandInCvmIssuer:
        """A server-side issuer for one confidential VM whose tokens this instance signs."""
        return StandInCvmIssuer(self, vm_id=vm_id)

    def sgx_claims(
        self, held_data: bytes, *, in_token: bool = True, **overrides: Any
    ) -> dict[str, Any]:
        claims = self.base_claims("sgx", now=overrides.pop("now", None))
        claims.update(
            {
                "x-ms-sgx-is-debuggable": False,
                "x-ms-sgx-mrenclave": "11" * 32,
                "x-ms-sgx-mrsigner": "22" * 32,
                "x-ms-sgx-product-id": 1,
                "x-ms-sgx-svn": 1,
                "x-ms-sgx-report-data": hashlib.sha256(held_data).hexdigest() + "00" * 32,
            }
        )
        if in_token:
            claims["x-ms-sgx-ehd"] = base64.urlsafe_b64encode(held_data).decode().rstrip("=")
        else:
            claims["x-ms-runtime"] = json.loads(held_data)
        claims.update(overrides)
        return claims

    def tdx_claims(self, runtime_data: bytes, **overrides: Any) -> dict[str, Any]:
        claims = self.base_claims("tdxvm", now=overrides.pop("now", None))
        claims.update(
            {
                "tdx_td_attributes_debug": False,
                "tdx_report_data": hashlib.sha256(runtime_data).hexdigest() + "00" * 32,
                "tdx_mrtd": "33" * 48,
                "tdx_rtmr0": "44" * 48,
                "tdx_rtmr1": "00" * 48,
                "tdx_rtmr2": "00" * 48,
                "tdx_rtmr3": "00" * 48,
                "tdx_mrseam": "55" * 48,
                "tdx_mrsignerseam": "00" * 48,  # Intel's TDX module
                "tdx_td_attributes": "0000001000000000",  # SEPT_VE_DISABLE, nothing else
                "attester_tcb_status": "UpToDate",
                "x-ms-runtime": json.loads(runtime_data),
            }
        )
        claims.update(overrides)
        return claims


class StandInCvmIssuer:
    """A confidential VM's side, for loopback servers: ``atls-v1`` report data in, token out.

    A real CVM writes the report data to its vTPM's user-data and has MAA
    attest the vTPM; here the stand-in MAA signs the same claims for the VM
    ``vm_id``.  Hand it to ``atls_core.server.AttestedCertificates``.
    """

    def __init__(self, maa: StandInMaa, *, vm_id: str) -> None:
        self.maa = maa
        self.vm_id = vm_id
        self.spec = IssuerSpec(
            id=specs.CVM_SPEC.id,
            validator_id=specs.CVM_SPEC.id,
            binding_scheme=specs.CVM_SPEC.binding_scheme,
            media_type=specs.MEDIA_TYPE,
            transport=Transport.CERTIFICATE,
            oid=specs.CVM_OID,
            description="stand-in confidential VM (tests only)",
        )

    def issue(self, report_data: bytes) -> Evidence:
        token = self.maa.sign(self.maa.cvm_claims(report_data, vm_id=self.vm_id))
        return Evidence(
            media_type=specs.MEDIA_TYPE,
            data=token.encode(),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=specs.CVM_OID),
        )

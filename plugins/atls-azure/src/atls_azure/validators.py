"""Four claim mappings over one token-validation path.

:class:`MaaValidator` verifies the token (``atls_azure.token``), records the
token's time window, and hands the verified claims to the variant's mapping:
ACI containers (SEV-SNP), confidential VMs, SGX enclaves, TDX VMs.  Every
mapping records the debug state, the binding, measurements for reference
values, and refuses a workload that policy does not pin (a token only proves
"some workload on Azure hardware": without hostdata/MRENCLAVE/MRTD pins an
attacker's own container would pass) unless ``allow_any_workload`` is set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs

from atls_azure import specs
from atls_azure.token import VerifiedToken, verify_token
from atls_azure.trust import TokenTrust, build_trust
from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.clock import Clock
from atls_core.errors import BindingMismatch, ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.result import AttestationResult

__all__ = [
    "AciTokenValidator",
    "CvmTokenValidator",
    "HeldDataValidator",
    "MaaValidator",
    "SgxTokenValidator",
    "TdxTokenValidator",
    "TokenCase",
    "cce_policy_hash",
    "spki_from_jwk",
]


# -- small helpers ---------------------------------------------------------------


def _hex_bytes(value: Any, *, check: str, sizes: Iterable[int]) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvidence("claim must be a hex string", check=check, actual=value)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MalformedEvidence("claim is not hex", check=check) from None
    allowed = tuple(sizes)
    if len(raw) not in allowed:
        raise MalformedEvidence(
            "claim has the wrong length", check=check, expected=allowed, actual=len(raw)
        )
    return raw


def _b64(value: Any, *, check: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvidence("claim must be a base64 string", check=check, actual=value)
    text = value.strip()
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence("claim is not base64", check=check) from None


def _bool(claims: Mapping[str, Any], name: str, *, check: str) -> bool:
    value = claims.get(name)
    if not isinstance(value, bool):
        raise MalformedEvidence(f"claim {name} must be true or false", check=check, actual=value)
    return value


def _mapping(claims: Mapping[str, Any], name: str, *, check: str) -> Mapping[str, Any]:
    value = claims.get(name)
    if not isinstance(value, Mapping):
        raise MalformedEvidence(f"claim {name} must be an object", check=check, actual=value)
    return value


_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1
_CURVES = {
    "P-256": (bytes.fromhex("06082a8648ce3d030107"), 32),
    "P-384": (bytes.fromhex("06052b81040022"), 48),
    "P-521": (bytes.fromhex("06052b81040023"), 66),
}


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _ec_spki(jwk: Mapping[str, Any], *, check: str) -> bytes:
    """RFC 5480 SubjectPublicKeyInfo of an EC JWK, encoded byte for byte.

    Encoded directly rather than through a key object: the binding compares
    bytes, and a point that is not on the curve (the Azure SDK's recorded test
    key is one) can then never equal a real TLS key's SPKI.
    """
    curve = _CURVES.get(str(jwk.get("crv")))
    if curve is None:
        raise BindingMismatch(
            "unsupported curve in attested key", check=check, actual=jwk.get("crv")
        )
    oid, size = curve
    x = _b64url(jwk.get("x"), check=check)
    y = _b64url(jwk.get("y"), check=check)
    if len(x) != size or len(y) != size:
        raise BindingMismatch("attested EC key has the wrong size", check=check)
    algorithm = _der(0x30, _EC_PUBLIC_KEY + oid)
    return _der(0x30, algorithm + _der(0x03, b"\x00\x04" + x + y))


def _b64url(value: Any, *, check: str) -> bytes:
    if not isinstance(value, str):
        raise BindingMismatch("attested key is malformed", check=check)
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BindingMismatch("attested key is malformed", check=check) from None


def spki_from_jwk(jwk: Any, *, check: str) -> bytes:
    """SubjectPublicKeyInfo (DER) of a JWK the attested data carries (EC or RSA)."""
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import RSAAlgorithm
    from jwt.exceptions import PyJWTError

    if not isinstance(jwk, Mapping):
        raise BindingMismatch("the attested data carries no key (jwk)", check=check)
    kty = jwk.get("kty")
    if kty == "EC":
        return _ec_spki(jwk, check=check)
    if kty != "RSA":
        raise BindingMismatch("unsupported key type in attested data", check=check, actual=kty)
    try:
        key: Any = RSAAlgorithm.from_jwk(json.dumps(dict(jwk)))
        public = key.public_key() if hasattr(key, "private_numbers") else key
        spki: bytes = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, KeyError, PyJWTError) as error:
        raise BindingMismatch(
            f"the attested key cannot be read: {type(error).__name__}", check=check
        ) from None
    return spki


def cce_policy_hash(policy_text: str) -> str:
    """ACI's hostdata for a confidential-container (CCE) policy: SHA-256 of the Rego text.

    The ARM template carries the policy base64-encoded (``ccePolicy``); the
    hash is over the decoded Rego text, as ``az confcom acipolicygen`` prints it.
    """
    return hashlib.sha256(policy_text.encode()).hexdigest()


def _option_strings(policy: Policy, name: str) -> list[str]:
    value = policy.option(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigurationError(
            f"policy option {name} must be a list of strings", check=f"config.policy.{name}"
        )
    return list(value)


def _require_compliance(
    appraisal: Appraisal, status: Any, *, claim: str, default: str, subject: str
) -> None:
    """MAA's compliance status must be one policy accepts (default: Azure's own)."""
    accepted = _option_strings(appraisal.policy, "compliance_statuses") or [default]
    appraisal.claim(claim, status)
    appraisal.require(
        "azure.compliance_status",
        status in accepted,
        f"{subject} is not Azure-compliant",
        expected=accepted,
        actual=status,
    )


def _require_pinned(appraisal: Appraisal, names: Iterable[str], *, extra: bool = False) -> None:
    """Fail unless policy pins the workload (reference values or an allow-list)."""
    wanted = tuple(names)
    if extra or any(n in appraisal.policy.reference_values for n in wanted):
        return
    if appraisal.policy.option("allow_any_workload") is True:
        appraisal.warn(
            "azure.workload",
            "no reference value pins the workload: any workload on this platform is accepted",
        )
        return
    appraisal.fail(
        "azure.workload",
        "policy pins no workload identity; set reference values for one of "
        + ", ".join(wanted)
        + " (or allow_any_workload = true)",
        expected=list(wanted),
    )


# -- the shared validator --------------------------------------------------------


@attrs.frozen(kw_only=True)
class TokenCase:
    """A verified token on its way to a result: what a variant's claim mapping reads.

    The evidence it came in is ``appraisal.evidence`` (side material such as
    the raw runtime data travels in its endorsements).
    """

    token: VerifiedToken
    appraisal: Appraisal
    binding: b.BindingContext


class MaaValidator(ValidatorBase):
    """Certificate-borne MAA tokens; subclasses map the claims."""

    attestation_type: ClassVar[str] = ""
    """``x-ms-attestation-type`` a token must carry for this variant."""
    default_spec: ClassVar[ValidatorSpec]

    def __init__(self, settings: Settings, *, spec: ValidatorSpec | None = None) -> None:
        self.spec = spec or self.default_spec
        self._trust: TokenTrust = build_trust(settings)

    @property
    def trust(self) -> TokenTrust:
        return self._trust

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        evidence = super().evidence_from_certificate(certificate)
        runtime = certificate.extension(specs.RUNTIME_DATA_OID)
        if runtime is not None:
            return Evidence(
                media_type=evidence.media_type,
                data=evidence.data,
                source=evidence.source,
                endorsements={"runtime_data": runtime},
            )
        return evidence

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        return Evidence(
            media_type=specs.MEDIA_TYPE,
            data=data.strip(),
            source=EvidenceSource(transport=Transport.FILE, location=name),
        )

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: b.BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        evidence.require_media_type(specs.MEDIA_TYPE)
        appraisal = Appraisal(spec=self.spec, policy=policy, evidence=evidence, clock=clock)
        token = verify_token(evidence.data, self._trust, now=appraisal.now)
        kind = token.claims.get("x-ms-attestation-type")
        if kind != self.attestation_type:
            raise MalformedEvidence(
                f"not an {self.spec.id} token",
                check="azure.attestation_type",
                expected=self.attestation_type,
                actual=kind,
            )
        appraisal.set_evidence_time(token.issued_at)
        appraisal.valid_until(token.expires_at, "token exp")
        appraisal.claim("issuer", token.issuer)
        appraisal.claim("kid", token.kid)
        appraisal.claim("x-ms-attestation-type", kind)
        for name in ("x-ms-policy-hash", "x-ms-ver", "jti"):
            if name in token.claims:
                appraisal.claim(name, token.claims[name])
        self.map_claims(TokenCase(token=token, appraisal=appraisal, binding=binding))
        return appraisal.finish()

    def map_claims(self, case: TokenCase) -> None:
        """Record the variant's facts (debug, binding, measurements) from the verified claims."""
        raise NotImplementedError


# -- ACI (SEV-SNP containers) ----------------------------------------------------


class AciTokenValidator(MaaValidator):
    attestation_type = "sevsnpvm"
    default_spec = specs.ACI_SPEC

    def map_claims(self, case: TokenCase) -> None:
        claims, appraisal, binding = case.token.claims, case.appraisal, case.binding
        policy = appraisal.policy
        _require_compliance(
            appraisal,
            claims.get("x-ms-compliance-status"),
            claim="x-ms-compliance-status",
            default="azure-compliant-uvm",
            subject="the utility VM",
        )
        appraisal.debug = _bool(claims, "x-ms-sevsnpvm-is-debuggable", check="azure.debug")
        report_data = _hex_bytes(
            claims.get("x-ms-sevsnpvm-reportdata"), check="azure.reportdata", sizes=(32, 64)
        )
        report_data = report_data.ljust(64, b"\x00")
        bound = b.bind("azure-aci", binding, report_data)
        if not binding.offline:
            self._check_runtime(claims, binding)
        appraisal.set_binding(bound)
        hostdata = _hex_bytes(
            claims.get("x-ms-sevsnpvm-hostdata"), check="azure.hostdata", sizes=(32,)
        ).hex()
        allowed = {h.lower().removeprefix("0x") for h in _option_strings(policy, "hostdata")}
        allowed |= {cce_policy_hash(text) for text in _option_strings(policy, "cce_policies")}
        if allowed:
            appraisal.require(
                "azure.hostdata",
                hostdata in allowed,
                "the confidential-container policy is not allowed",
                expected=sorted(allowed),
                actual=hostdata,
            )
        _require_pinned(appraisal, ("hostdata",), extra=bool(allowed))
        appraisal.measure("hostdata", hostdata)
        for name, claim in (
            ("launch_measurement", "x-ms-sevsnpvm-launchmeasurement"),
            ("idkeydigest", "x-ms-sevsnpvm-idkeydigest"),
        ):
            if isinstance(claims.get(claim), str):
                appraisal.measure(name, claims[claim])
        for name, claim in (
            ("guest_svn", "x-ms-sevsnpvm-guestsvn"),
            ("bootloader_svn", "x-ms-sevsnpvm-bootloader-svn"),
            ("tee_svn", "x-ms-sevsnpvm-tee-svn"),
            ("snpfw_svn", "x-ms-sevsnpvm-snpfw-svn"),
            ("microcode_svn", "x-ms-sevsnpvm-microcode-svn"),
        ):
            value = claims.get(claim)
            if isinstance(value, int) and not isinstance(value, bool):
                appraisal.measure(name, str(value))
        for claim in ("x-ms-sevsnpvm-vmpl", "x-ms-sevsnpvm-migration-allowed"):
            if claim in claims:
                appraisal.claim(claim, claims[claim])
        appraisal.no_tcb(
            "MAA appraised the SEV-SNP TCB; the token carries SVNs, not a TCB status "
            "(pin them with reference values)"
        )

    @staticmethod
    def _check_runtime(claims: Mapping[str, Any], binding: b.BindingContext) -> None:
        """x-ms-runtime must repeat the TLS key and this connection's nonce."""
        runtime = _mapping(claims, "x-ms-runtime", check="azure.runtime")
        public_key = _b64(runtime.get("publicKey"), check="azure.runtime.publicKey")
        nonce = _b64(runtime.get("nonce"), check="azure.runtime.nonce")
        b.check_public_key(binding, public_key, check="azure.runtime.publicKey")
        if not b.constant_time_equal(binding.nonce or b"", nonce):
            raise BindingMismatch(
                "x-ms-runtime carries another nonce",
                check="azure.runtime.nonce",
                expected=(binding.nonce or b"").hex(),
                actual=nonce.hex(),
            )


# -- confidential VMs --------------------------------------------------------------


class CvmTokenValidator(MaaValidator):
    attestation_type = "azurevm"
    default_spec = specs.CVM_SPEC

    def map_claims(self, case: TokenCase) -> None:
        claims, appraisal, binding = case.token.claims, case.appraisal, case.binding
        tee = _mapping(claims, "x-ms-isolation-tee", check="azure.isolation_tee")
        tee_type = tee.get("x-ms-attestation-type")
        if tee_type not in ("sevsnpvm", "tdxvm"):
            raise MalformedEvidence(
                "unknown isolation TEE",
                check="azure.isolation_tee.type",
                expected=["sevsnpvm", "tdxvm"],
                actual=tee_type,
            )
        appraisal.tee_type = "sev-snp" if tee_type == "sevsnpvm" else "tdx"
        appraisal.claim("x-ms-isolation-tee.x-ms-attestation-type", tee_type)
        _require_compliance(
            appraisal,
            tee.get("x-ms-compliance-status"),
            claim="x-ms-isolation-tee.x-ms-compliance-status",
            default="azure-compliant-cvm",
            subject="the confidential VM",
        )
        secure_boot = _bool(claims, "secureboot", check="azure.secureboot")
        appraisal.claim("secureboot", secure_boot)
        appraisal.require(
            "azure.secureboot", secure_boot, "secure boot is off", expected=True, actual=False
        )
        debuggers_disabled = _bool(
            claims, "x-ms-azurevm-debuggersdisabled", check="azure.debuggersdisabled"
        )
        if tee_type == "sevsnpvm":
            tee_debug = _bool(tee, "x-ms-sevsnpvm-is-debuggable", check="azure.debug")
        else:
            tee_debug = _bool(tee, "tdx_td_attributes_debug", check="azure.debug")
        kernel_debug = claims.get("x-ms-azurevm-kerneldebug-enabled") is True
        appraisal.debug = tee_debug or kernel_debug or not debuggers_disabled
        runtime = _mapping(tee, "x-ms-runtime", check="azure.runtime")
        user_data = _hex_bytes(runtime.get("user-data"), check="azure.user_data", sizes=(64,))
        appraisal.set_binding(b.bind("atls-v1", binding, user_data))
        keys = runtime.get("keys")
        if isinstance(keys, list):
            appraisal.claim("runtime_keys", [k.get("kid") for k in keys if isinstance(k, Mapping)])
        if tee_type == "sevsnpvm" and isinstance(tee.get("x-ms-sevsnpvm-launchmeasurement"), str):
            appraisal.measure("launch_measurement", tee["x-ms-sevsnpvm-launchmeasurement"])
        if tee_type == "tdxvm" and isinstance(tee.get("tdx_mrtd"), str):
            appraisal.measure("mrtd", tee["tdx_mrtd"])
        appraisal.no_tcb(
            "MAA appraised the platform TCB (compliance status); the token carries no TCB status"
        )


# -- SGX and TDX: the key travels in the enclave-held (runtime) data --------------


def _held_data(token: VerifiedToken, evidence: Evidence, *, claim: str | None) -> bytes | None:
    if claim is not None and claim in token.claims:
        return _b64(token.claims[claim], check="azure.ehd")
    return evidence.endorsements.get("runtime_data")


def _bind_held_data(
    appraisal: Appraisal,
    binding: b.BindingContext,
    report_data: bytes,
    held: bytes | None,
    *,
    runtime_claim: Any,
    check: str,
) -> None:
    if held is not None:
        # MAA promises report data = SHA-256(held data) || zeros; check it ourselves too.
        expected = hashlib.sha256(held).digest() + bytes(32)
        if not b.constant_time_equal(expected, report_data):
            raise BindingMismatch(
                "report data is not SHA-256 of the enclave-held data",
                check=check,
                expected=expected,
                actual=report_data,
            )
    if binding.offline:
        appraisal.set_binding(b.bind("maa-held-data", binding, report_data))
        return
    if held is None:
        raise BindingMismatch(
            "the token carries no enclave-held data and none travelled with it",
            check="azure.held_data",
        )
    try:
        document = json.loads(held)
    except ValueError:
        raise BindingMismatch(
            "the enclave-held data is not JSON", check="azure.held_data"
        ) from None
    if not isinstance(document, Mapping):
        raise BindingMismatch("the enclave-held data is not an object", check="azure.held_data")
    if isinstance(runtime_claim, Mapping) and dict(runtime_claim) != document:
        raise BindingMismatch(
            "x-ms-runtime does not match the enclave-held data", check="azure.runtime"
        )
    spki = spki_from_jwk(document.get("jwk"), check="azure.held_data.jwk")
    appraisal.set_binding(
        b.bind(
            "maa-held-data",
            binding,
            report_data,
            material={"held_data": held, "held_key_spki": spki},
        )
    )


class HeldDataValidator(MaaValidator):
    """SGX and TDX: the debug flag, then 64 bytes of report data over the held data.

    Subclasses name their claims and record the workload's measurements.
    """

    debug_claim: ClassVar[str]
    report_data_claim: ClassVar[str]
    report_data_check: ClassVar[str]
    held_data_claim: ClassVar[str | None] = None
    """Claim carrying the held data itself, if the token has one."""

    def map_claims(self, case: TokenCase) -> None:
        claims, appraisal = case.token.claims, case.appraisal
        appraisal.debug = _bool(claims, self.debug_claim, check="azure.debug")
        report_data = _hex_bytes(
            claims.get(self.report_data_claim), check=self.report_data_check, sizes=(64,)
        )
        _bind_held_data(
            appraisal,
            case.binding,
            report_data,
            _held_data(case.token, appraisal.evidence, claim=self.held_data_claim),
            runtime_claim=claims.get("x-ms-runtime"),
            check=self.report_data_check,
        )
        self.map_workload(claims, appraisal)

    def map_workload(self, claims: Mapping[str, Any], appraisal: Appraisal) -> None:
        raise NotImplementedError


class SgxTokenValidator(HeldDataValidator):
    attestation_type = "sgx"
    default_spec = specs.SGX_SPEC
    debug_claim = "x-ms-sgx-is-debuggable"
    report_data_claim = "x-ms-sgx-report-data"
    report_data_check = "azure.sgx.report_data"
    held_data_claim = "x-ms-sgx-ehd"

    def map_workload(self, claims: Mapping[str, Any], appraisal: Appraisal) -> None:
        for name in ("mrenclave", "mrsigner"):
            value = _hex_bytes(claims.get(f"x-ms-sgx-{name}"), check=f"azure.{name}", sizes=(32,))
            appraisal.measure(name, value)
        for name in ("product_id", "svn"):
            number = claims.get(f"x-ms-sgx-{name.replace('_', '-')}")
            if isinstance(number, int) and not isinstance(number, bool):
                appraisal.measure(name, str(number))
        _require_pinned(appraisal, ("mrenclave", "mrsigner"))
        appraisal.no_tcb(
            "MAA appraised the SGX TCB under its attestation policy; the token carries no "
            "TCB status"
        )


class TdxTokenValidator(HeldDataValidator):
    attestation_type = "tdxvm"
    default_spec = specs.TDX_SPEC
    debug_claim = "tdx_td_attributes_debug"
    report_data_claim = "tdx_report_data"
    report_data_check = "azure.tdx.report_data"

    def map_workload(self, claims: Mapping[str, Any], appraisal: Appraisal) -> None:
        for name in specs.TDX_SPEC.measurements:
            value = claims.get(f"tdx_{name}")
            if isinstance(value, str):
                appraisal.measure(name, _hex_bytes(value, check=f"azure.{name}", sizes=(48,)))
        _require_pinned(appraisal, ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"))
        status = claims.get("attester_tcb_status")
        advisories = claims.get("attester_advisory_ids", [])
        if status is None:
            appraisal.no_tcb("the token carries no attester_tcb_status")
            return
        if not isinstance(status, str):
            raise MalformedEvidence(
                "attester_tcb_status is not a string",
                check="azure.tdx.tcb_status",
                actual=type(status).__name__,
            )
        if not isinstance(advisories, list) or not all(isinstance(a, str) for a in advisories):
            raise MalformedEvidence(
                "attester_advisory_ids is not a list of strings", check="azure.tdx.advisories"
            )
        appraisal.set_tcb(status, advisories)


FACTORIES: Mapping[str, Callable[[Settings], MaaValidator]] = {
    "azure.aci": AciTokenValidator,
    "azure.cvm": CvmTokenValidator,
    "azure.sgx": SgxTokenValidator,
    "azure.tdx": TdxTokenValidator,
}

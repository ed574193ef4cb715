"""Four claim mappings over one token-validation path.

:class:`MaaValidator` verifies the token (``atls_azure.token``), records the
token's time window, and hands the verified claims to the variant's mapping:
ACI containers (SEV-SNP), confidential VMs, SGX enclaves, TDX VMs.  Every
mapping records the debug state and the measurements, and returns the report
data the core binds with the spec's scheme.  Whether the workload is pinned is
the core's one rule, over each spec's ``workload_identity`` and
``pinning_options``: a token only proves "some workload on Azure hardware",
and an attacker's own container, enclave or VM has one too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs

from atls_azure import specs
from atls_azure.settings import ACI_WIRE_FORMS, AciSettings
from atls_azure.token import VerifiedToken, verify_token
from atls_azure.trust import TokenTrust, build_trust
from atls_core import binding as b
from atls_core import strict_json
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.errors import BindingMismatch, ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, Settings, ValidatorBase, ValidatorSpec
from atls_core.jose import b64url_decode, jwk_public_key
from atls_core.policy import Policy
from atls_core.settings import load
from atls_core.tdx_rules import check_td_identity, sept_ve_disable_required

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


def _hex_or_none(claims: Mapping[str, Any], name: str, *, size: int) -> bytes | None:
    """A hex claim of ``size`` bytes, or ``None`` when the token does not carry it."""
    value = claims.get(name)
    return None if value is None else _hex_bytes(value, check=f"azure.{name}", sizes=(size,))


def _b64(value: Any, *, check: str) -> bytes:
    """Standard base64 (what atls-python put in the ACI runtime data), or base64url."""
    if not isinstance(value, str):
        raise MalformedEvidence("claim must be a base64 string", check=check, actual=value)
    text = value.strip()
    if "-" in text or "_" in text:
        return b64url_decode(text, check=check)
    try:
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


def spki_from_jwk(jwk: Any, *, check: str) -> bytes:
    """SubjectPublicKeyInfo (DER) of the public JWK the attested data carries.

    Read by the one JWK reader (:func:`atls_core.jose.jwk_public_key`): a key
    that is not a valid public key (private members, a point off its curve)
    can never be a TLS key, so it is a :class:`BindingMismatch`.
    """
    from cryptography.hazmat.primitives import serialization

    if not isinstance(jwk, Mapping):
        raise BindingMismatch("the attested data carries no key (jwk)", check=check)
    key = jwk_public_key(jwk, check=check, error=BindingMismatch)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


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


def _guest_options(policy: Policy) -> tuple[int, bool]:
    """``max_vmpl`` (default 0) and ``allow_migration_agent`` (default false), as in atls-snp."""
    max_vmpl = policy.option("max_vmpl")
    max_vmpl = 0 if max_vmpl is None else max_vmpl
    if isinstance(max_vmpl, bool) or not isinstance(max_vmpl, int) or not 0 <= max_vmpl <= 3:
        raise ConfigurationError(
            "policy option max_vmpl must be an integer 0..3",
            check="config.policy.max_vmpl",
            actual=max_vmpl,
        )
    allow = policy.option("allow_migration_agent")
    allow = False if allow is None else allow
    if not isinstance(allow, bool):
        raise ConfigurationError(
            "policy option allow_migration_agent must be true or false",
            check="config.policy.allow_migration_agent",
            actual=allow,
        )
    return max_vmpl, allow


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


# -- the shared validator --------------------------------------------------------


@attrs.frozen(kw_only=True)
class TokenCase:
    """A verified token on its way to a result: what a variant's claim mapping reads.

    The evidence it came in is ``appraisal.evidence`` (side material such as
    the raw runtime data travels in its endorsements); the connection is
    ``appraisal.context``.
    """

    token: VerifiedToken
    appraisal: Appraisal


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

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The token's header and claims, signature NOT verified (``atls inspect``)."""
        try:
            header, body, _signature = evidence.data.decode("ascii").split(".")
            parts = [json.loads(b64url_decode(part, check="jwt.format")) for part in (header, body)]
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedEvidence("not a compact JWS", check="jwt.format") from None
        kind = parts[1].get("x-ms-attestation-type") if isinstance(parts[1], dict) else None
        self._require_kind(kind)
        return {
            "format": f"Microsoft Azure Attestation token ({kind}): signature NOT verified",
            "header": parts[0],
            "claims": parts[1],
        }

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        token = verify_token(evidence.data, self._trust, now=appraisal.now)
        kind = token.claims.get("x-ms-attestation-type")
        self._require_kind(kind)
        appraisal.set_evidence_time(token.issued_at)
        appraisal.valid_until(token.expires_at, "token exp")
        appraisal.claim("issuer", token.issuer)
        appraisal.claim("kid", token.kid)
        appraisal.claim("x-ms-attestation-type", kind)
        for name in ("x-ms-policy-hash", "x-ms-ver", "jti"):
            if name in token.claims:
                appraisal.claim(name, token.claims[name])
        return self.map_claims(TokenCase(token=token, appraisal=appraisal))

    def map_claims(self, case: TokenCase) -> ReportData:
        """Record the variant's facts (debug, measurements); return the report data to bind."""
        raise NotImplementedError

    def _require_kind(self, kind: Any) -> None:
        """A token of another variant is not this validator's to read (nor to describe)."""
        if kind != self.attestation_type:
            raise MalformedEvidence(
                f"not an {self.spec.id} token",
                check="azure.attestation_type",
                expected=self.attestation_type,
                actual=kind,
            )


# -- ACI (SEV-SNP containers) ----------------------------------------------------


class AciTokenValidator(MaaValidator):
    attestation_type = "sevsnpvm"
    default_spec = specs.ACI_SPEC

    def __init__(self, settings: Settings, *, spec: ValidatorSpec | None = None) -> None:
        super().__init__(settings, spec=spec)
        wire = load(AciSettings, settings, partial=True).wire
        self.spec = attrs.evolve(self.spec, sni_form=ACI_WIRE_FORMS[wire])

    def map_claims(self, case: TokenCase) -> ReportData:
        claims, appraisal = case.token.claims, case.appraisal
        _require_compliance(
            appraisal,
            claims.get("x-ms-compliance-status"),
            claim="x-ms-compliance-status",
            default="azure-compliant-uvm",
            subject="the utility VM",
        )
        appraisal.set_debug(_bool(claims, "x-ms-sevsnpvm-is-debuggable", check="azure.debug"))
        report_data = _hex_bytes(
            claims.get("x-ms-sevsnpvm-reportdata"), check="azure.reportdata", sizes=(32, 64)
        )
        if not appraisal.context.offline:
            self._check_runtime(claims, appraisal.context)
        hostdata = _hex_bytes(
            claims.get("x-ms-sevsnpvm-hostdata"), check="azure.hostdata", sizes=(32,)
        ).hex()
        appraisal.measure("hostdata", hostdata)
        self._check_hostdata(appraisal, hostdata)
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
        self._check_guest_policy(claims, appraisal)
        appraisal.no_tcb(
            "MAA appraised the SEV-SNP TCB; the token carries SVNs, not a TCB status "
            "(pin them with reference values)"
        )
        return ReportData(value=report_data.ljust(64, b"\x00"))

    def check_policy(self, policy: Policy) -> None:
        _guest_options(policy)

    @staticmethod
    def _check_guest_policy(claims: Mapping[str, Any], appraisal: Appraisal) -> None:
        """VMPL and MIGRATE_MA, refused by default as ``snp.report`` refuses them.

        MAA signs what the report says without judging these, so the same
        report gets the same answer here as from the report itself.
        """
        vmpl = claims.get("x-ms-sevsnpvm-vmpl")
        if isinstance(vmpl, bool) or not isinstance(vmpl, int) or not 0 <= vmpl <= 3:
            raise MalformedEvidence(
                "claim x-ms-sevsnpvm-vmpl must be a VMPL, 0..3", check="azure.vmpl", actual=vmpl
            )
        migration = _bool(claims, "x-ms-sevsnpvm-migration-allowed", check="azure.migration")
        appraisal.claim("x-ms-sevsnpvm-vmpl", vmpl)
        appraisal.claim("x-ms-sevsnpvm-migration-allowed", migration)
        max_vmpl, allow_migration_agent = _guest_options(appraisal.policy)
        appraisal.require(
            "azure.vmpl",
            vmpl <= max_vmpl,
            "the report was requested from a less privileged VMPL than policy allows "
            "(policy option max_vmpl)",
            expected=f"<= {max_vmpl}",
            actual=vmpl,
        )
        if migration:
            appraisal.require(
                "azure.migration_agent",
                allow_migration_agent,
                "the guest policy allows a migration agent (MIGRATE_MA; policy option "
                "allow_migration_agent)",
                expected=False,
                actual=True,
            )

    def _check_hostdata(self, appraisal: Appraisal, hostdata: str) -> None:
        """A listed ``hostdata``/``cce_policies`` allow-list must contain the container's policy.

        An allow-list that is set but empty allows nothing (the core counts it as a pin).
        """
        policy = appraisal.policy
        if all(policy.option(name) is None for name in self.spec.pinning_options):
            return
        allowed = {
            h.strip().lower().removeprefix("0x") for h in _option_strings(policy, "hostdata")
        }
        allowed |= {cce_policy_hash(text) for text in _option_strings(policy, "cce_policies")}
        appraisal.require(
            "azure.hostdata",
            hostdata in allowed,
            "the confidential-container policy is not allowed",
            expected=sorted(allowed),
            actual=hostdata,
        )

    @staticmethod
    def _check_runtime(claims: Mapping[str, Any], context: b.BindingContext) -> None:
        """x-ms-runtime must repeat the TLS key and this connection's nonce."""
        runtime = _mapping(claims, "x-ms-runtime", check="azure.runtime")
        public_key = _b64(runtime.get("publicKey"), check="azure.runtime.publicKey")
        nonce = _b64(runtime.get("nonce"), check="azure.runtime.nonce")
        b.check_public_key(context, public_key, check="azure.runtime.publicKey")
        if not b.constant_time_equal(context.nonce or b"", nonce):
            raise BindingMismatch(
                "x-ms-runtime carries another nonce than this connection's: a replayed "
                "token, or a server that reads the nonce in pyatls's SNI form (for those, "
                'set wire = "pyatls")',
                check="azure.runtime.nonce",
                expected=(context.nonce or b"").hex(),
                actual=nonce.hex(),
            )


# -- confidential VMs --------------------------------------------------------------


def _vm_id(claims: Mapping[str, Any], runtime: Mapping[str, Any]) -> str | None:
    """The VM ID as 32 lowercase hex digits, or ``None`` when the token names none.

    It travels twice: ``x-ms-azurevm-vmid`` and the paravisor's runtime
    ``vm-configuration.vmUniqueId``; when both are present they must agree.
    """
    configuration = runtime.get("vm-configuration")
    named = {
        "x-ms-azurevm-vmid": claims.get("x-ms-azurevm-vmid"),
        "vm-configuration.vmUniqueId": (
            configuration.get("vmUniqueId") if isinstance(configuration, Mapping) else None
        ),
    }
    found: set[str] = set()
    for where, value in named.items():
        if value is None:
            continue
        try:
            found.add(uuid.UUID(value).hex)
        except (TypeError, ValueError, AttributeError):
            raise MalformedEvidence(
                f"{where} is not a GUID", check="azure.vmid", actual=value
            ) from None
    if len(found) > 1:
        raise MalformedEvidence(
            "the token names two different VM IDs", check="azure.vmid", actual=sorted(found)
        )
    return found.pop() if found else None


_OS_CLAIMS = (
    "x-ms-azurevm-ostype",
    "x-ms-azurevm-osdistro",
    "x-ms-azurevm-osversion-major",
    "x-ms-azurevm-osversion-minor",
    "x-ms-azurevm-attested-pcrs",
)
"""Recorded as claims: MAA derives them from the vTPM's boot log; they describe an
OS family (every Ubuntu 22.04 CVM has the same), not a workload, and are not hex."""


class CvmTokenValidator(MaaValidator):
    """Azure confidential VMs: the token vouches for Azure's platform and one VM by ID.

    The SEV-SNP launch measurement / TDX MRTD measure Azure's paravisor firmware,
    which every Azure CVM shares, and the token carries no vTPM PCR values, only
    which PCRs MAA checked.  The one value that tells one customer's VM from
    another's is the VM ID: it is this validator's workload identity.
    """

    attestation_type = "azurevm"
    default_spec = specs.CVM_SPEC

    def map_claims(self, case: TokenCase) -> ReportData:
        claims, appraisal = case.token.claims, case.appraisal
        tee = _mapping(claims, "x-ms-isolation-tee", check="azure.isolation_tee")
        tee_type = tee.get("x-ms-attestation-type")
        if tee_type not in ("sevsnpvm", "tdxvm"):
            raise MalformedEvidence(
                "unknown isolation TEE",
                check="azure.isolation_tee.type",
                expected=["sevsnpvm", "tdxvm"],
                actual=tee_type,
            )
        appraisal.set_tee_type("sev-snp" if tee_type == "sevsnpvm" else "tdx")
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
        appraisal.set_debug(tee_debug or kernel_debug or not debuggers_disabled)
        runtime = _mapping(tee, "x-ms-runtime", check="azure.runtime")
        user_data = _hex_bytes(runtime.get("user-data"), check="azure.user_data", sizes=(64,))
        keys = runtime.get("keys")
        if isinstance(keys, list):
            appraisal.claim("runtime_keys", [k.get("kid") for k in keys if isinstance(k, Mapping)])
        if tee_type == "sevsnpvm" and isinstance(tee.get("x-ms-sevsnpvm-launchmeasurement"), str):
            appraisal.measure("launch_measurement", tee["x-ms-sevsnpvm-launchmeasurement"])
        if tee_type == "tdxvm" and isinstance(tee.get("tdx_mrtd"), str):
            appraisal.measure("mrtd", tee["tdx_mrtd"])
        vm_id = _vm_id(claims, runtime)
        if vm_id is not None:
            appraisal.measure(specs.CVM_VMID, vm_id)
        for name in _OS_CLAIMS:
            if name in claims:
                appraisal.claim(name, claims[name])
        appraisal.no_tcb(
            "MAA appraised the platform TCB (compliance status); the token carries no TCB status"
        )
        return ReportData(value=user_data)


# -- SGX and TDX: the key travels in the enclave-held (runtime) data --------------


def _held_data(token: VerifiedToken, evidence: Evidence, *, claim: str | None) -> bytes | None:
    if claim is not None and claim in token.claims:
        return b64url_decode(token.claims[claim], check="azure.ehd")
    return evidence.endorsements.get("runtime_data")


def _held_data_report(
    appraisal: Appraisal,
    report_data: bytes,
    held: bytes | None,
    *,
    runtime_claim: Any,
    check: str,
) -> ReportData:
    """Report data over the held data, with the held data and its key as binding material.

    Offline there is no TLS key to compare, so no material is needed.
    """
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
    if appraisal.context.offline:
        return ReportData(value=report_data)
    if held is None:
        raise BindingMismatch(
            "the token carries no enclave-held data and none travelled with it",
            check="azure.held_data",
        )
    try:  # its "jwk" is the bound key: two of them would bind another key elsewhere
        document = strict_json.loads(held)
    except strict_json.RepeatedName as exc:
        raise BindingMismatch(
            f"the enclave-held data repeats {exc.name!r}", check="azure.held_data"
        ) from None
    except (ValueError, RecursionError):
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
    return ReportData(value=report_data, material={"held_data": held, "held_key_spki": spki})


class HeldDataValidator(MaaValidator):
    """SGX and TDX: the debug flag, then 64 bytes of report data over the held data.

    Subclasses name their claims and record the workload's measurements.
    """

    debug_claim: ClassVar[str]
    report_data_claim: ClassVar[str]
    report_data_check: ClassVar[str]
    held_data_claim: ClassVar[str | None] = None
    """Claim carrying the held data itself, if the token has one."""

    def map_claims(self, case: TokenCase) -> ReportData:
        claims, appraisal = case.token.claims, case.appraisal
        appraisal.set_debug(_bool(claims, self.debug_claim, check="azure.debug"))
        report_data = _hex_bytes(
            claims.get(self.report_data_claim), check=self.report_data_check, sizes=(64,)
        )
        report = _held_data_report(
            appraisal,
            report_data,
            _held_data(case.token, appraisal.evidence, claim=self.held_data_claim),
            runtime_claim=claims.get("x-ms-runtime"),
            check=self.report_data_check,
        )
        self.map_workload(claims, appraisal)
        return report

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

    def check_policy(self, policy: Policy) -> None:
        sept_ve_disable_required(policy)

    def map_workload(self, claims: Mapping[str, Any], appraisal: Appraisal) -> None:
        for name in specs.TDX_SPEC.measurements:
            value = claims.get(f"tdx_{name}")
            if isinstance(value, str):
                appraisal.measure(name, _hex_bytes(value, check=f"azure.{name}", sizes=(48,)))
        check_td_identity(
            appraisal,
            mrsignerseam=_hex_or_none(claims, "tdx_mrsignerseam", size=48),
            td_attributes=_hex_or_none(claims, "tdx_td_attributes", size=8),
        )
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

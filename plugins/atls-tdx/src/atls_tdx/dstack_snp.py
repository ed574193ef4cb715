"""dstack on AMD SEV-SNP: what binds the application, and the hand-over to ``snp.report``.

A SEV-SNP guest has no runtime measurement register, so the runtime events a
dstack attestation carries are signed by nothing.  What the signed report does
bind (upstream ``dstack-attest``: ``AttestationV1::verify`` and
``decode_app_info`` for ``PlatformEvidence::SevSnp``):

- REPORT_DATA (all 64 bytes) = the stack's report data, which an RA-TLS
  certificate sets to SHA-512("ratls-cert:" || SPKI DER);
- HOST_DATA = SHA-256("dstack-mr-config-v3:" || 0x00 || document), over the
  exact bytes of the MrConfigV3 JSON document the attestation carries; that
  document names the application (compose hash, app id, instance id, key
  provider, optional GPU policy hash and init script hashes);
- MEASUREMENT: the launch digest of firmware, kernel, initrd and command line
  (the OS image, shared by every app on it).

So the report is verified first -- by atls-snp's ``snp.report``, found through
the registry (this plugin never imports atls-snp) -- and only once its HOST_DATA
equals the document's hash is anything read from the document.  The VM config
(``os_image_hash``) and the runtime events are not read: nothing signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from atls_core import strict_json
from atls_core.appraisal import Appraisal
from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource
from atls_tdx.dstack_attestation import DstackAttestation, SevSnpPlatform, require_dstack_stack
from atls_tdx.dstack_eventlog import DstackFacts
from atls_tdx.specs import DSTACK_SNP_MEDIA_TYPE, DSTACK_SNP_SETTINGS

__all__ = [
    "MR_CONFIG_DOMAIN",
    "SNP_REPORT_MEDIA_TYPE",
    "SNP_VALIDATOR",
    "MrConfig",
    "certificate_blobs",
    "describe_sev_snp",
    "mr_config_host_data",
    "parse_mr_config",
    "sev_snp_evidence",
    "snp_settings",
    "verify_sev_snp",
]

SNP_VALIDATOR = "snp.report"
SNP_REPORT_MEDIA_TYPE = "application/vnd.atls.snp-report"
"""atls-snp's media type for one raw report (``cert_chain`` endorsement), by value."""
MR_CONFIG_DOMAIN = b"dstack-mr-config-v3:"
MAX_MR_CONFIG_BYTES = 64 * 1024
"""A MrConfigV3 document is a few hundred bytes."""
MAX_INIT_SCRIPTS = 5
_CERT_TABLE_ENTRY = 24
_MAX_CERT_TABLE_ENTRIES = 16
_CERTIFICATE_GUIDS = tuple(
    uuid.UUID(text)
    for text in (
        "c0b406a4-a803-4952-9743-3fb6014cd0ae",  # ARK
        "4ab7b379-bbac-4fe4-a02f-05aef327c782",  # ASK
        "63da758d-e664-4564-adc5-f4b93be8accd",  # VCEK
        "a8074bc2-a25a-483e-aae6-39c045a0b8a1",  # VLEK
    )
)
_CERTIFICATE_ENTRIES = frozenset(
    form for guid in _CERTIFICATE_GUIDS for form in (guid.bytes, guid.bytes_le)
)
"""GHCB certificate table GUIDs of certificates, in either byte order (hosts differ)."""
_HEX = frozenset(string.hexdigits)
_KEY_PROVIDERS = {"none": "none", "kms": "kms", "local": "local-sgx", "tpm": "tpm"}
"""MrConfigV3 ``key_provider`` -> the name upstream's key provider info uses."""
_FIELDS = frozenset(
    {
        "version",
        "app_id",
        "compose_hash",
        "gpu_policy_hash",
        "key_provider",
        "key_provider_id",
        "instance_id",
        "init_script_hashes",
    }
)
# Raw SEV-SNP report offsets, only to *describe* an unverified report (``atls inspect``).
_REPORT_DATA = slice(0x50, 0x90)
_MEASUREMENT = slice(0x90, 0xC0)
_HOST_DATA = slice(0xC0, 0xE0)


def _malformed(message: str, **kw: Any) -> MalformedEvidence:
    return MalformedEvidence(message, check="dstack.mr_config", **kw)


# --- the MrConfigV3 document ------------------------------------------------------------------


def mr_config_host_data(document: str | bytes) -> bytes:
    """HOST_DATA of a dstack SEV-SNP guest: SHA-256(domain || 0x00 || the document's bytes)."""
    data = document.encode() if isinstance(document, str) else document
    return hashlib.sha256(MR_CONFIG_DOMAIN + b"\x00" + data).digest()


@attrs.frozen(kw_only=True)
class MrConfig:
    """A parsed MrConfigV3 document (trusted only once HOST_DATA matched it)."""

    document: str = attrs.field(repr=lambda s: f"<{len(s)} chars>")
    compose_hash: bytes
    key_provider: str
    app_id: bytes | None = None
    instance_id: bytes | None = None
    key_provider_id: bytes | None = None
    gpu_policy_hash: bytes | None = None
    init_script_hashes: tuple[bytes, ...] | None = None

    @property
    def host_data(self) -> bytes:
        return mr_config_host_data(self.document)

    def key_provider_info(self) -> bytes:
        """As the TDX ``key-provider`` event's payload: ``{"name": ..., "id": <hex>}``."""
        info = {
            "name": _KEY_PROVIDERS[self.key_provider],
            "id": (self.key_provider_id or b"").hex(),
        }
        return json.dumps(info, separators=(",", ":")).encode()

    def facts(self) -> DstackFacts:
        return DstackFacts(
            app_id=self.app_id,
            compose_hash=self.compose_hash,
            instance_id=self.instance_id,
            key_provider=self.key_provider_info(),
        )


def _hex_field(fields: Mapping[str, Any], name: str, *, size: int | None = None) -> bytes | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) % 2 or not set(value) <= _HEX:
        raise _malformed(f"MrConfig {name} must be a hex string", actual=value)
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise _malformed(f"MrConfig {name} must be {size} bytes", actual=len(raw))
    return raw or None


def _init_script_hashes(fields: Mapping[str, Any]) -> tuple[bytes, ...] | None:
    value = fields.get("init_script_hashes")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_INIT_SCRIPTS:
        raise _malformed(f"MrConfig init_script_hashes must list at most {MAX_INIT_SCRIPTS} hashes")
    hashes = []
    for item in value:
        digest = _hex_field({"init_script_hash": item}, "init_script_hash", size=32)
        if digest is None:
            raise _malformed("MrConfig init_script_hashes must hold 32-byte hashes")
        hashes.append(digest)
    return tuple(hashes)


def parse_mr_config(document: str) -> MrConfig:
    """Parse a MrConfigV3 document as upstream does: unknown fields, duplicate keys, a
    missing compose hash or key provider, or a version other than 3 are refused."""
    if len(document) > MAX_MR_CONFIG_BYTES:
        raise _malformed("the MrConfig document is too large", actual=len(document))
    try:
        fields = strict_json.loads(document)
    except strict_json.RepeatedName as exc:
        raise _malformed(f"the MrConfig document repeats {exc.name!r}") from None
    except (ValueError, RecursionError):
        raise _malformed("the MrConfig document is not JSON") from None
    if not isinstance(fields, dict):
        raise _malformed("the MrConfig document is not a JSON object")
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise _malformed("the MrConfig document has unknown fields", actual=unknown)
    version = fields.get("version", 3)
    if type(version) is not int or version != 3:
        raise _malformed("unsupported MrConfig version", expected=3, actual=version)
    compose = _hex_field(fields, "compose_hash", size=32)
    if compose is None:
        raise _malformed("the MrConfig document names no compose_hash")
    provider = fields.get("key_provider")
    if provider not in _KEY_PROVIDERS:
        raise _malformed(
            "MrConfig key_provider is not one dstack knows",
            expected=sorted(_KEY_PROVIDERS),
            actual=provider,
        )
    return MrConfig(
        document=document,
        compose_hash=compose,
        key_provider=provider,
        app_id=_hex_field(fields, "app_id"),
        instance_id=_hex_field(fields, "instance_id"),
        key_provider_id=_hex_field(fields, "key_provider_id"),
        gpu_policy_hash=_hex_field(fields, "gpu_policy_hash"),
        init_script_hashes=_init_script_hashes(fields),
    )


# --- evidence ---------------------------------------------------------------------------------


def _certificate_table(blob: bytes) -> list[bytes]:
    """The certificates of a host certificate table (the kernel's ``auxblob``): entries of
    GUID, offset and length (little endian), ended by an all-zero entry.  Entries that are
    not certificates (a CRL, vendor data) are skipped, as upstream skips them."""
    found: list[bytes] = []
    for index in range(_MAX_CERT_TABLE_ENTRIES + 1):
        entry = blob[index * _CERT_TABLE_ENTRY : (index + 1) * _CERT_TABLE_ENTRY]
        if len(entry) != _CERT_TABLE_ENTRY:
            break
        offset = int.from_bytes(entry[16:20], "little")
        length = int.from_bytes(entry[20:24], "little")
        if not any(entry):
            return found
        if offset < _CERT_TABLE_ENTRY or length == 0 or offset + length > len(blob):
            break
        if entry[:16] in _CERTIFICATE_ENTRIES:
            found.append(blob[offset : offset + length])
    raise MalformedEvidence(
        "a SEV-SNP certificate blob is neither PEM, DER nor a host certificate table",
        check="dstack.cert_chain",
        actual=blob[:8],
    )


def certificate_blobs(chain: Sequence[bytes]) -> bytes:
    """dstack's ``cert_chain`` as atls-snp's ``cert_chain`` endorsement: certificates (PEM
    or DER) concatenated.  Upstream carries either the certificates themselves or one host
    certificate table; a table's entries are the certificates (their GUIDs do not matter:
    atls-snp places each certificate by its subject)."""
    parts: list[bytes] = []
    for blob in chain:
        if blob.lstrip()[:5] == b"-----" or blob[:1] == b"\x30":
            parts.append(blob)
        else:
            parts.extend(_certificate_table(blob))
    return b"\n".join(parts)


def sev_snp_evidence(attestation: DstackAttestation, *, source: EvidenceSource) -> Evidence:
    """Evidence of a dstack SEV-SNP attestation (see :data:`~atls_tdx.specs.DSTACK_SNP_MEDIA_TYPE`)."""
    platform = attestation.platform
    if not isinstance(platform, SevSnpPlatform):
        raise ValueError("not a SEV-SNP attestation")
    stack = require_dstack_stack(attestation)
    endorsements = {
        "mr_config": platform.mr_config.encode(),
        "report_data": stack.report_data,
        "attestation_version": str(attestation.wire_version).encode(),
    }
    chain = certificate_blobs(platform.cert_chain)
    if chain:
        endorsements["cert_chain"] = chain
    return Evidence(
        media_type=DSTACK_SNP_MEDIA_TYPE,
        data=platform.report,
        source=source,
        endorsements=endorsements,
    )


def snp_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``snp_*`` settings, named as atls-snp names them (``snp_kds`` -> ``kds``)."""
    return {
        name.removeprefix("snp_"): value
        for name, value in settings.items()
        if name in DSTACK_SNP_SETTINGS and value is not None
    }


# --- appraisal --------------------------------------------------------------------------------


def _document(evidence: Evidence) -> str:
    raw = evidence.endorsements.get("mr_config")
    if not raw:
        raise _malformed("the dstack SEV-SNP attestation carries no MrConfig document")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("the MrConfig document is not UTF-8") from None


def _hand_over(evidence: Evidence, appraisal: Appraisal, settings: Mapping[str, Any]) -> bytes:
    chain = evidence.endorsements.get("cert_chain")
    report = Evidence(
        media_type=SNP_REPORT_MEDIA_TYPE,
        data=evidence.data,
        source=evidence.source,
        endorsements={"cert_chain": chain} if chain else {},
    )
    try:
        verified = appraisal.hand_over(report, validator=SNP_VALIDATOR, settings=settings)
    except MalformedEvidence as error:
        if error.check != "evidence.hand_over":
            raise
        raise MalformedEvidence(
            "this dstack attestation carries AMD SEV-SNP evidence, which atls-tdx hands to "
            f"{SNP_VALIDATOR}, and that validator is not available: install a SEV-SNP plugin "
            "(pip install atls-snp), or stop disabling its plugin 'snp'",
            check="dstack.platform_plugin_missing",
            expected=SNP_VALIDATOR,
            actual=error.reason,
        ) from error
    return verified.value


def verify_sev_snp(
    evidence: Evidence, appraisal: Appraisal, *, settings: Mapping[str, Any]
) -> tuple[DstackFacts, bytes]:
    """Verify the report through ``snp.report``, then the MrConfig document through HOST_DATA.

    Returns the application's facts (from the document) and the report data to
    bind.  ``settings`` are atls-snp's (see :func:`snp_settings`).
    """
    document = _document(evidence)
    mr_config = parse_mr_config(document)  # a malformed document is refused before any fetch
    report_data = _hand_over(evidence, appraisal, settings)
    host_data = appraisal.measurements.get("host_data")
    expected = mr_config.host_data.hex()
    if host_data is None or not hmac.compare_digest(host_data, expected):
        raise UntrustedChain(
            "the report's HOST_DATA is not the hash of the MrConfig document the attestation "
            "carries: nothing ties that application to this guest",
            check="dstack.host_data",
            expected=expected,
            actual=host_data,
        )
    stack = evidence.endorsements.get("report_data")
    if stack is not None and not hmac.compare_digest(stack, report_data):
        raise MalformedEvidence(
            "the attestation's report data is not the report's",
            check="dstack.report_data",
            expected=report_data,
            actual=stack,
        )
    _record(appraisal, mr_config)
    return mr_config.facts(), report_data


def _record(appraisal: Appraisal, mr_config: MrConfig) -> None:
    appraisal.measure("compose_hash", mr_config.compose_hash)
    for name in ("app_id", "instance_id"):
        value = getattr(mr_config, name)
        if value is not None:
            appraisal.measure(name, value)
    appraisal.claim("mr_config", mr_config.document)
    appraisal.claim("key_provider", mr_config.key_provider_info().decode())
    if mr_config.gpu_policy_hash is not None:
        appraisal.claim("gpu_policy_hash", mr_config.gpu_policy_hash.hex())
    if mr_config.init_script_hashes is not None:
        appraisal.claim("init_script_hashes", [h.hex() for h in mr_config.init_script_hashes])


def describe_sev_snp(evidence: Evidence) -> dict[str, Any]:
    """The report's key fields and the MrConfig document (unverified: ``atls inspect``)."""
    report = evidence.data
    version = evidence.endorsements.get("attestation_version", b"?").decode(errors="replace")
    where = evidence.source.oid or evidence.source.location or evidence.source.transport.value
    description: dict[str, Any] = {
        "format": f"dstack attestation V{version} (AMD SEV-SNP) from {where}",
        "report_bytes": len(report),
        "measurements": {
            "measurement": report[_MEASUREMENT].hex(),
            "host_data": report[_HOST_DATA].hex(),
        },
        "report_data": report[_REPORT_DATA].hex(),
        "certificates_carried": bool(evidence.endorsements.get("cert_chain")),
        "note": "verified by snp.report (atls-snp); runtime events and VM config are not "
        "signed on SEV-SNP and are not read",
    }
    try:
        mr_config = parse_mr_config(_document(evidence))
    except MalformedEvidence as error:
        description["mr_config"] = f"unreadable: {error}"
        return description
    description["mr_config"] = json.loads(mr_config.document)
    description["mr_config_host_data"] = mr_config.host_data.hex()
    description["host_data_matches"] = hmac.compare_digest(mr_config.host_data, report[_HOST_DATA])
    return description

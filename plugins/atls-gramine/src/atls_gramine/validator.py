"""``gramine.ratls``: appraise a Gramine RA-TLS certificate's SGX quote.

:meth:`GramineRatlsValidator.verify` parses the extension (strictly), verifies
the quote with DCAP (signatures, chain, CRLs, TCB: ``atls_dcap``), records
facts and Gramine's enclave checks, and returns the quote's report data with
its scheme (``gramine-tcg`` or ``gramine-legacy``); the core binds it to the
TLS key and applies TCB / advisory / debug / reference-value / pinning policy.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from operator import eq, ge
from typing import Any

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, Settings, ValidatorBase, refuse_unknown_names
from atls_dcap import DcapSettings, DcapVerifier, VerifiedQuote, record_quote
from atls_dcap.tee import verify_quote_of
from atls_gramine.gramine_env import validator_from_gramine_env
from atls_gramine.gramine_policy import policy_option_int
from atls_gramine.ratls import extension_for, parse_tcg_evidence
from atls_gramine.specs import (
    LEGACY_OID,
    MEDIA_TYPE_LEGACY,
    MEDIA_TYPE_TCG,
    SCHEME_LEGACY,
    SCHEME_TCG,
    SGX_FLAGS,
    TCG_OID,
    VALIDATOR_SPEC,
)

__all__ = ["SGX_FLAGS", "GramineRatlsValidator", "certificate_der_from_file"]

_MEDIA_FOR_OID = {TCG_OID: MEDIA_TYPE_TCG, LEGACY_OID: MEDIA_TYPE_LEGACY}
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)
_CERTIFICATE = "certificate"
"""Endorsement name: the whole certificate, when evidence came from a file."""
_QUOTE_TEES = {0x00: "SGX", 0x81: "TDX"}
"""DCAP quote header TEE types (u32 at offset 4)."""
_QUOTE_HEADER = 48


def _raw_quote_kind(data: bytes) -> str | None:
    """``"TDX quote (version 4)"`` when ``data`` starts like a DCAP quote, else ``None``.

    Only a diagnosis: people hand ``atls verify-evidence`` the quote they
    extracted instead of the certificate that binds it to a key.
    """
    if len(data) < _QUOTE_HEADER:
        return None
    version = int.from_bytes(data[0:2], "little")
    key_type = int.from_bytes(data[2:4], "little")
    tee = _QUOTE_TEES.get(int.from_bytes(data[4:8], "little"))
    if version not in (3, 4, 5) or key_type not in (2, 3) or tee is None:
        return None
    return f"{tee} quote (version {version})"


def _hex_quote_kind(data: bytes) -> str | None:
    """What :func:`_raw_quote_kind` says of a quote written as hex text (optional ``0x``)."""
    head = data.lstrip()[: 2 * _QUOTE_HEADER + 2]
    head = head[2:] if head[:2].lower() == b"0x" else head
    try:
        return _raw_quote_kind(bytes.fromhex(head[: 2 * _QUOTE_HEADER].decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None


def _quote_file_kind(data: bytes) -> str | None:
    """``"raw SGX quote (version 3)"``, ``"hex-encoded TDX quote (version 4)"`` or None."""
    raw = _raw_quote_kind(data)
    if raw is not None:
        return f"raw {raw}"
    written = _hex_quote_kind(data)
    return None if written is None else f"hex-encoded {written}"


def _refuse_quote_file(data: bytes) -> None:
    """Name a DCAP quote handed over instead of a certificate (check ``gramine.file.quote``).

    Raw, its PCK chain's PEM blocks would read as "three certificates"; as hex text
    (starting with ASCII ``0``, the byte a DER certificate starts with) as no certificate.
    """
    quote = _quote_file_kind(data)
    if quote is not None:
        hint = (
            "appraise it with tdx.dcap"
            if "TDX" in quote
            else "give the RA-TLS certificate that carries it (PEM or DER)"
        )
        raise MalformedEvidence(
            f"the file is a {quote}, not a Gramine RA-TLS certificate: {hint}",
            check="gramine.file.quote",
            expected="a PEM or DER RA-TLS certificate",
            actual=quote,
        )


def certificate_der_from_file(data: bytes) -> bytes:
    """A certificate file's DER: PEM (exactly one certificate) or raw DER.

    A DER certificate starts with a SEQUENCE tag; it is not searched for PEM
    markers (Gramine's quote embeds its PCK chain as PEM text).  A DCAP quote,
    raw or hex, is named as such (:func:`_refuse_quote_file`).
    """
    _refuse_quote_file(data)
    if data[:1] == b"\x30":
        return data
    blocks = _PEM.findall(data)
    if not blocks:
        raise MalformedEvidence(
            "not a certificate: neither DER nor a PEM CERTIFICATE block",
            check="gramine.file",
            expected="a PEM or DER RA-TLS certificate",
            actual="no certificate",
        )
    if len(blocks) != 1:
        raise MalformedEvidence(
            f"expected exactly one PEM certificate, found {len(blocks)}",
            check="gramine.file",
            expected=1,
            actual=len(blocks),
        )
    try:
        return base64.b64decode(b"".join(blocks[0].split()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence(
            "PEM certificate is not valid base64", check="gramine.file"
        ) from None


class GramineRatlsValidator(ValidatorBase):
    """Appraises Gramine RA-TLS certificates (TCG DICE extension first, else legacy)."""

    spec = VALIDATOR_SPEC

    def __init__(self, settings: Settings) -> None:
        refuse_unknown_names("settings", settings, self.spec.settings, where=self.spec.id)
        self._dcap = DcapVerifier(DcapSettings.for_validator(settings))

    from_gramine_env = staticmethod(validator_from_gramine_env)
    """``gramine.ratls`` with the policy Gramine's ``RA_TLS_*`` variables describe: a ready
    validator for ``HTTPAConnection(validator=...)``, ``ATLSContext.for_validator`` and the
    requests/httpx adapters (:func:`atls_gramine.gramine_env.validator_from_gramine_env`)."""

    # -- evidence ------------------------------------------------------------

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        oid, value = extension_for(certificate)
        return Evidence(
            media_type=_MEDIA_FOR_OID[oid],
            data=value,
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=oid),
        )

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        """A PEM or DER RA-TLS certificate file (``atls verify-evidence cert.pem``)."""
        der = certificate_der_from_file(data)
        oid, value = extension_for(PeerCertificate.from_der(der))
        return Evidence(
            media_type=_MEDIA_FOR_OID[oid],
            data=value,
            source=EvidenceSource(transport=Transport.FILE, oid=oid, location=name),
            endorsements={_CERTIFICATE: der},
        )

    # -- inspection ----------------------------------------------------------

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The extension's SGX quote and key binding, signature NOT verified (``atls inspect``)."""
        from atls_gramine.inspection import describe_ratls

        scheme, quote, material, extras = self._parse(evidence)
        return describe_ratls(scheme, quote, material, extras)

    # -- appraisal -----------------------------------------------------------

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        scheme, quote, material, extras = self._parse(evidence)
        isv_prod_id = policy_option_int(appraisal.policy, "isv_prod_id")
        min_isv_svn = policy_option_int(appraisal.policy, "min_isv_svn")
        verified = verify_quote_of(
            self._dcap,
            quote,
            now=appraisal.now,
            tee_type="sgx",
            check="gramine.tee_type",
            refusal="a Gramine RA-TLS certificate must carry an SGX quote",
        )
        if self._check_certificate(evidence, scheme, verified, material):
            extras["certificate_key_binding"] = "verified"
        record_quote(appraisal, verified)
        for name, value in extras.items():
            appraisal.claim(name, value)
        _gramine_checks(appraisal, verified, isv_prod_id=isv_prod_id, min_isv_svn=min_isv_svn)
        return ReportData(value=verified.report_data, scheme=scheme, material=material)

    def _parse(self, evidence: Evidence) -> tuple[str, bytes, dict[str, bytes], dict[str, Any]]:
        if evidence.media_type == MEDIA_TYPE_TCG:
            tcg = parse_tcg_evidence(evidence.data)
            material = {
                "claims": tcg.claims,
                "pubkey_hash_alg": tcg.pubkey_hash_alg.encode(),
                "pubkey_hash": tcg.pubkey_hash,
            }
            extras: dict[str, Any] = {
                "ratls_extension": "tcg-dice",
                "pubkey_hash_alg": tcg.pubkey_hash_alg,
            }
            if tcg.other_claims:
                extras["ignored_tcg_claims"] = list(tcg.other_claims)
            return SCHEME_TCG, tcg.quote, material, extras
        if evidence.media_type == MEDIA_TYPE_LEGACY:
            return SCHEME_LEGACY, evidence.data, {}, {"ratls_extension": "legacy"}
        raise MalformedEvidence(
            "unexpected media type",
            check="evidence.media_type",
            expected=list(self.spec.media_types),
            actual=evidence.media_type,
        )

    def _check_certificate(
        self,
        evidence: Evidence,
        scheme: str,
        verified: VerifiedQuote,
        material: Mapping[str, bytes],
    ) -> bool:
        """Evidence read from a certificate file: it must be that certificate's, bound to its key.

        Offline appraisal checks no TLS binding, but a file holds the whole
        certificate, so its own key binding is checked (a swapped SPKI fails).
        This is an extra check on the file's own context; the result's binding
        is the core's, to the appraisal's context: given a connection, the core's
        ``bind`` refuses a certificate whose key is not the TLS key.
        """
        der = evidence.endorsements.get(_CERTIFICATE)
        if der is None:
            return False
        certificate = PeerCertificate.from_der(der)
        oid, value = extension_for(certificate)
        if value != evidence.data or _MEDIA_FOR_OID[oid] != evidence.media_type:
            raise MalformedEvidence(
                "evidence is not the certificate's RA-TLS extension",
                check="gramine.certificate",
            )
        own = b.BindingContext(spki_der=certificate.spki_der, certificate_der=der)
        b.bind(scheme, own, verified.report_data, material=material)
        return True


def _gramine_checks(
    appraisal: Appraisal,
    verified: VerifiedQuote,
    *,
    isv_prod_id: int | None,
    min_isv_svn: int | None,
) -> None:
    """Gramine's enclave checks: attributes, ISV_PROD_ID, ISV_SVN.

    Whether MRENCLAVE / MRSIGNER are pinned is the core's pinning rule
    (``workload_identity``), not a check here.
    """
    raw = verified.fields.get("attributes")
    if not isinstance(raw, bytes) or len(raw) != 16:
        raise MalformedEvidence("SGX quote has no 16-byte attributes", check="gramine.attributes")
    flags = int.from_bytes(raw[:8], "little")
    # Debug is the core's decision (policy.allow_debug); never let it read "false" when set.
    appraisal.set_debug(bool(verified.debug or flags & SGX_FLAGS["debug"]))
    for name, must_be_set in (
        ("init", True),
        ("mode64", True),
        ("provision_key", False),
        ("einittoken_key", False),
    ):
        is_set = bool(flags & SGX_FLAGS[name])
        appraisal.require(
            f"gramine.attributes.{name}",
            is_set == must_be_set,
            f"enclave attribute {name.upper()} must be {'set' if must_be_set else 'clear'}",
            expected=must_be_set,
            actual=is_set,
        )
    for name, wanted, holds, expected, why in (
        ("isv_prod_id", isv_prod_id, eq, isv_prod_id, "ISV_PROD_ID does not match policy"),
        ("isv_svn", min_isv_svn, ge, f">= {min_isv_svn}", "ISV_SVN is below the policy minimum"),
    ):
        if wanted is not None:
            actual = _int_field(verified, name)
            appraisal.require(
                f"gramine.{name}", holds(actual, wanted), why, expected=expected, actual=actual
            )


def _int_field(verified: VerifiedQuote, name: str) -> int:
    value = verified.fields.get(name)
    if not isinstance(value, int):
        raise MalformedEvidence(f"SGX quote has no integer {name}", check=f"gramine.{name}")
    return value

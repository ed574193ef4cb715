"""``gramine.ratls``: appraise a Gramine RA-TLS certificate's SGX quote.

Order of work: parse the extension (strictly), verify the quote with DCAP
(signatures, chain, CRLs, TCB: ``atls_tdx.dcap``), bind its report data to the
TLS key through the core (``gramine-tcg`` or ``gramine-legacy``), then record
facts and Gramine's checks; the core applies TCB / advisory / debug /
reference-value policy in :meth:`Appraisal.finish`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.clock import Clock
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings, ValidatorBase, refuse_unknown_names
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_gramine.gramine_policy import policy_from_gramine_env, policy_option_int
from atls_gramine.ratls import extension_for, parse_tcg_evidence
from atls_gramine.specs import (
    LEGACY_OID,
    MEDIA_TYPE_LEGACY,
    MEDIA_TYPE_TCG,
    TCG_OID,
    VALIDATOR_SPEC,
)
from atls_tdx.dcap import DcapSettings, DcapVerifier, VerifiedQuote, record_quote

__all__ = ["SGX_FLAGS", "GramineRatlsValidator", "certificate_der_from_file"]

SGX_FLAGS = {
    "init": 0x01,
    "debug": 0x02,
    "mode64": 0x04,
    "provision_key": 0x10,
    "einittoken_key": 0x20,
}
"""SGX ``ATTRIBUTES.FLAGS`` bits Gramine looks at."""

_MEDIA_FOR_OID = {TCG_OID: MEDIA_TYPE_TCG, LEGACY_OID: MEDIA_TYPE_LEGACY}
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)
_CERTIFICATE = "certificate"
"""Endorsement name: the whole certificate, when evidence came from a file."""


def certificate_der_from_file(data: bytes) -> bytes:
    """A certificate file's DER: PEM (exactly one certificate) or raw DER.

    A DER certificate starts with a SEQUENCE tag; it is not searched for PEM
    markers (Gramine's quote embeds its PCK chain as PEM text).
    """
    if data[:1] == b"\x30":
        return data
    blocks = _PEM.findall(data)
    if len(blocks) != 1:
        raise MalformedEvidence(
            "expected exactly one PEM certificate",
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
        values = dict(settings)
        if values.get("collateral_file") is not None and "collateral" not in values:
            # `atls verify-evidence --collateral FILE` gives only the file.
            values["collateral"] = "file"
        self._dcap = DcapVerifier(DcapSettings.from_settings(values))

    @classmethod
    def from_gramine_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        settings: Settings | None = None,
        accepted_advisory_ids: Iterable[str] = (),
    ) -> tuple[GramineRatlsValidator, Policy]:
        """A validator and the policy Gramine's ``RA_TLS_*`` variables describe.

        ``environ`` defaults to ``os.environ`` and is read once, now.  ``settings``
        are the DCAP collateral settings (Gramine takes those from the host's DCAP
        library configuration, not from its environment).
        """
        policy = policy_from_gramine_env(environ, accepted_advisory_ids=accepted_advisory_ids)
        return cls(settings or {}), policy

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

    # -- appraisal -----------------------------------------------------------

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: b.BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        scheme, quote, material, extras = self._parse(evidence)
        isv_prod_id = policy_option_int(policy, "isv_prod_id")
        min_isv_svn = policy_option_int(policy, "min_isv_svn")
        appraisal = Appraisal(spec=self.spec, policy=policy, evidence=evidence, clock=clock)
        verified = self._dcap.verify(quote, now=appraisal.now)
        if verified.tee_type != "sgx":
            raise MalformedEvidence(
                "a Gramine RA-TLS certificate must carry an SGX quote",
                check="gramine.tee_type",
                expected="sgx",
                actual=verified.tee_type,
            )
        if self._check_certificate(evidence, binding, scheme, verified, material):
            extras["certificate_key_binding"] = "verified"
        appraisal.set_binding(b.bind(scheme, binding, verified.report_data, material=material))
        record_quote(appraisal, verified)
        for name, value in extras.items():
            appraisal.claim(name, value)
        _gramine_checks(appraisal, verified, isv_prod_id=isv_prod_id, min_isv_svn=min_isv_svn)
        return appraisal.finish()

    def _parse(
        self, evidence: Evidence
    ) -> tuple[str, bytes, dict[str, bytes] | None, dict[str, Any]]:
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
            return "gramine-tcg", tcg.quote, material, extras
        if evidence.media_type == MEDIA_TYPE_LEGACY:
            return "gramine-legacy", evidence.data, None, {"ratls_extension": "legacy"}
        raise MalformedEvidence(
            "unexpected media type",
            check="evidence.media_type",
            expected=list(self.spec.media_types),
            actual=evidence.media_type,
        )

    def _check_certificate(
        self,
        evidence: Evidence,
        context: b.BindingContext,
        scheme: str,
        verified: VerifiedQuote,
        material: Mapping[str, bytes] | None,
    ) -> bool:
        """Evidence read from a certificate file: it must be that certificate's, bound to its key.

        Offline appraisal checks no TLS binding, but a file holds the whole
        certificate, so its own key binding is checked (a swapped SPKI fails).
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
        b.check_public_key(context, certificate.spki_der, check="gramine.certificate_key")
        return True


def _gramine_checks(
    appraisal: Appraisal,
    verified: VerifiedQuote,
    *,
    isv_prod_id: int | None,
    min_isv_svn: int | None,
) -> None:
    """Gramine's enclave checks: attributes, ISV_PROD_ID, ISV_SVN, pinned identity."""
    raw = verified.fields.get("attributes")
    if not isinstance(raw, bytes) or len(raw) != 16:
        raise MalformedEvidence("SGX quote has no 16-byte attributes", check="gramine.attributes")
    flags = int.from_bytes(raw[:8], "little")
    # Debug is the core's decision (policy.allow_debug); never let it read "false" when set.
    appraisal.debug = bool(verified.debug or flags & SGX_FLAGS["debug"])
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
    if isv_prod_id is not None:
        actual = _int_field(verified, "isv_prod_id")
        appraisal.require(
            "gramine.isv_prod_id",
            actual == isv_prod_id,
            "ISV_PROD_ID does not match policy",
            expected=isv_prod_id,
            actual=actual,
        )
    if min_isv_svn is not None:
        actual = _int_field(verified, "isv_svn")
        appraisal.require(
            "gramine.isv_svn",
            actual >= min_isv_svn,
            "ISV_SVN is below the policy minimum",
            expected=f">= {min_isv_svn}",
            actual=actual,
        )
    if not {"mrenclave", "mrsigner"} & set(appraisal.policy.reference_values):
        appraisal.warn(
            "gramine.identity",
            "policy pins neither mrenclave nor mrsigner: any enclave is accepted",
        )


def _int_field(verified: VerifiedQuote, name: str) -> int:
    value = verified.fields.get(name)
    if not isinstance(value, int):
        raise MalformedEvidence(f"SGX quote has no integer {name}", check=f"gramine.{name}")
    return value

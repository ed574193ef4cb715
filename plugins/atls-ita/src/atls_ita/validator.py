"""``ita.tdx`` / ``ita.sgx``: appraise an Intel Trust Authority token.

The token is a passport: ITA appraised the TEE's quote and signed the result.
This validator trusts the token only after :class:`atls_ita.token.TokenVerifier`
verified its signature to the configured root, then maps its claims
(:func:`atls_ita.claims.map_claims`) onto the appraisal and hands the core the
report data to bind to the TLS key:

* the attester asked ITA to attest ``atls-v1`` report data for (client nonce,
  TLS key) as its runtime data, which ITA reports as ``attester_held_data``:
  :meth:`ItaValidator.verify` returns it and the core binds it to this
  connection (and applies the pinning rule: the policy must pin one of the
  spec's ``workload_identity`` measurements, e.g. ``mrtd`` or ``mrenclave``);
* ITA's own report-data rule must hold too, or the held data was not what the
  quote covered: TDX ``tdx_report_data`` = SHA-512(nonce.val || nonce.iat ||
  held data), SGX ``sgx_report_data`` = SHA-256(same) || 32 zero bytes (the
  nonce part is empty when the token has no ``verifier_nonce``).  Checked
  against ITA's recorded real tokens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from atls_core.appraisal import Appraisal
from atls_core.binding import constant_time_equal
from atls_core.errors import BindingMismatch, ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import ReportData, Settings, ValidatorBase, ValidatorSpec
from atls_core.jose import b64url_decode
from atls_core.policy import Policy
from atls_core.tdx_rules import check_td_identity, sept_ve_disable_required
from atls_ita.claims import ItaClaims, map_claims
from atls_ita.settings import ItaValidatorSettings
from atls_ita.specs import POLICY_OPTIONS, SGX_SPEC, TDX_SPEC
from atls_ita.token import TokenVerifier, VerifiedToken

__all__ = [
    "POLICY_OPTIONS",
    "SGX_SPEC",
    "TDX_SPEC",
    "ItaValidator",
    "expected_report_data",
]


def expected_report_data(tee: str, held_data: bytes, nonce_prefix: bytes) -> bytes:
    """ITA's report data for ``held_data`` (see the module docstring)."""
    if tee == "tdx":
        return hashlib.sha512(nonce_prefix + held_data).digest()
    return hashlib.sha256(nonce_prefix + held_data).digest() + bytes(32)


def _required_policy_ids(policy: Policy) -> tuple[str, ...]:
    value = policy.option("required_policy_ids", ())
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            "policy.required_policy_ids must be a list of ITA policy ids",
            check="config.policy",
            actual=value,
        )
    return tuple(value)


class ItaValidator(ValidatorBase):
    """One verifier (keys, root, issuer) and one TEE's claim mapping."""

    def __init__(
        self,
        settings: Settings,
        *,
        spec: ValidatorSpec = TDX_SPEC,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.spec = spec
        self._verifier = verifier or ItaValidatorSettings.from_settings(settings).build_verifier()

    @classmethod
    def sgx_validator(cls, settings: Settings) -> ItaValidator:
        """``ita.sgx``: the same verifier, the SGX claim mapping."""
        return cls(settings, spec=SGX_SPEC)

    @property
    def verifier(self) -> TokenVerifier:
        return self._verifier

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        """A raw JWT, or ITA's attest answer ``{"token": "<JWT>"}`` as saved from the API."""
        text = data.strip()
        if text.startswith(b"{"):
            try:
                answer = json.loads(text)
                token = answer["token"]
                if not isinstance(token, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError, RecursionError):
                raise MalformedEvidence(
                    'a JSON evidence file must be ITA\'s answer {"token": "<JWT>"}',
                    check="evidence.format",
                ) from None
            text = token.encode()
        return super().evidence_from_file(text, name=name)

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """Header, claims and the measurements this validator would read; signature NOT
        verified (``atls inspect``)."""
        try:
            header, body, _signature = evidence.data.decode("ascii").split(".")
            parts = [json.loads(b64url_decode(part, check="jwt.format")) for part in (header, body)]
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedEvidence("not a compact JWS", check="jwt.format") from None
        if not isinstance(parts[1], dict):
            raise MalformedEvidence("the token's claims are not an object", check="jwt.claims")
        mapped = map_claims(parts[1], tee=self.spec.tee_type)
        return {
            "format": f"Intel Trust Authority token ({mapped.shape}): signature NOT verified",
            "header": parts[0],
            "measurements": dict(mapped.measurements),
            "tcb_status": mapped.tcb_status,
            "claims": parts[1],
        }

    def check_policy(self, policy: Policy) -> None:
        _required_policy_ids(policy)
        if self.spec.tee_type == "tdx":
            sept_ve_disable_required(policy)

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        """The token's signature, then its claims; the held data is what the core binds."""
        required = _required_policy_ids(appraisal.policy)
        token = self._verifier.verify(evidence.data, now=appraisal.now)
        mapped = map_claims(token.claims, tee=self.spec.tee_type)
        held = _held_data(mapped)
        self._record(appraisal, token, mapped)
        matched = set(mapped.policy_ids_matched)
        missing = [p for p in required if p not in matched]
        appraisal.require(
            "ita.policy_ids",
            not missing,
            "required ITA policies did not match",
            expected=list(required),
            actual=sorted(matched),
        )
        return ReportData(value=held)

    # -- facts ---------------------------------------------------------------

    def _record(self, appraisal: Appraisal, token: VerifiedToken, mapped: ItaClaims) -> None:
        appraisal.set_tee_type(mapped.tee)
        if mapped.debug is not None:
            appraisal.set_debug(mapped.debug)
        if mapped.tcb_status is not None:
            appraisal.set_tcb(mapped.tcb_status, mapped.advisory_ids, date=mapped.tcb_date)
        for name, value in mapped.measurements.items():
            appraisal.measure(name, value)
        for name, value in mapped.claims.items():
            appraisal.claim(name, value)
        if mapped.tee == "tdx":
            check_td_identity(
                appraisal,
                mrsignerseam=_hex_field(mapped.measurements, "mrsignerseam"),
                td_attributes=_hex_field(mapped.claims, "td_attributes"),
            )
        appraisal.claim("ita_token_shape", mapped.shape)
        appraisal.claim("ita_policy_ids_matched", list(mapped.policy_ids_matched))
        appraisal.claim("ita_policy_ids_unmatched", list(mapped.policy_ids_unmatched))
        appraisal.claim("ita_signer", token.signer)
        for name in ("jti", "ver", "iss"):
            text: Any = token.claims.get(name)
            if isinstance(text, str):
                appraisal.claim(f"ita_{name}", text)
        if mapped.verifier_nonce is not None:
            appraisal.claim("ita_verifier_nonce_iat", _printable(mapped.verifier_nonce.iat))
        appraisal.set_evidence_time(token.issued_at)
        appraisal.valid_until(token.expires_at, "ITA token exp")
        appraisal.valid_until(token.signer_valid_until, "ITA signing chain / CRL")


def _held_data(mapped: ItaClaims) -> bytes:
    """The held data, once ITA's report-data rule shows the quote covered it."""
    held = mapped.held_data
    if held is None:
        raise MalformedEvidence(
            "the token carries no attester_held_data to bind the TLS key",
            check="ita.held_data",
        )
    if mapped.report_data is None:
        raise MalformedEvidence(
            f"the token carries no {mapped.tee}_report_data", check="ita.report_data"
        )
    prefix = mapped.verifier_nonce.prefix if mapped.verifier_nonce else b""
    expected = expected_report_data(mapped.tee, held, prefix)
    if not constant_time_equal(expected, mapped.report_data):
        raise BindingMismatch(
            "the quote's report data does not cover the token's held data",
            check="ita.report_data",
            expected=expected,
            actual=mapped.report_data,
        )
    return held


def _hex_field(fields: Mapping[str, Any], name: str) -> bytes | None:
    """A hex field the claim mapping kept (it checked the hex), or ``None``."""
    value = fields.get(name)
    return bytes.fromhex(value) if isinstance(value, str) else None


def _printable(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if text.isprintable() else raw.hex()

"""What both TDX validators do with a quote: verify it, record it, check the SEAM signer.

One implementation so that ``tdx.dcap`` and the dstack validators cannot drift
apart on the parts that decide whether a quote is genuine.  Called from their
``verify``: the core binds the returned report data and applies the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atls_core.evidence import bytes_from_hex_text
from atls_dcap.report import record_quote
from atls_dcap.tee import verify_quote_of

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal
    from atls_dcap import DcapVerifier, VerifiedQuote

__all__ = ["make_verifier", "quote_from_bytes", "verify_tdx_quote"]


def make_verifier(settings: Mapping[str, Any], keys: tuple[str, ...]) -> DcapVerifier:
    """A DCAP verifier from the DCAP part of a validator's settings."""
    from atls_dcap import DcapSettings, DcapVerifier

    dcap = {k: v for k, v in settings.items() if k in keys}
    return DcapVerifier(DcapSettings.for_validator(dcap))


def quote_from_bytes(data: bytes, *, name: str = "quote") -> bytes:
    """A quote from a file: raw bytes, or hex text (optional ``0x``, whitespace ignored).

    Trailing zero padding (seen on some platforms) is left in place: dcap-qvl
    reads the quote's own lengths and the padding is outside the signed part.
    """
    decoded = bytes_from_hex_text(data, odd_digits=name)
    return data if decoded is None else decoded


def verify_tdx_quote(verifier: DcapVerifier, quote: bytes, appraisal: Appraisal) -> VerifiedQuote:
    """Verify with dcap-qvl, insist on TDX, record every field, check MRSIGNERSEAM.

    A non-zero MRSIGNERSEAM means a TDX module not signed by Intel; dstack's
    verifier refuses it and so do we (no policy knob: Intel's TCB info cannot
    vouch for someone else's module).
    """
    verified = verify_quote_of(
        verifier, quote, now=appraisal.now, tee_type="tdx", check="tdx.tee_type"
    )
    record_quote(appraisal, verified)
    signer = verified.fields.get("mrsignerseam")
    if not isinstance(signer, bytes) or signer.count(0) != len(signer):  # a non-zero byte
        appraisal.fail(
            "tdx.mrsignerseam",
            "the TDX module is not Intel's (MRSIGNERSEAM is not zero)",
            expected="00" * 48,
            actual=signer.hex() if isinstance(signer, bytes) else signer,
        )
    return verified

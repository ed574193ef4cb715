"""What both TDX validators do with a quote: verify it, record it, check the SEAM signer.

One implementation so that ``tdx.dcap`` and the dstack validators cannot drift
apart on the parts that decide whether a quote is genuine.  Called from their
``verify``: the core binds the returned report data and applies the policy.
"""

from __future__ import annotations

import binascii
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atls_core.errors import MalformedEvidence
from atls_dcap.report import record_quote
from atls_dcap.tee import verify_quote_of

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal
    from atls_dcap import DcapVerifier, VerifiedQuote

__all__ = ["make_verifier", "quote_from_bytes", "verify_tdx_quote"]

_HEX = frozenset(string.hexdigits)


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
    stripped = data.strip()
    try:
        text = stripped.decode("ascii")
    except UnicodeDecodeError:
        return data
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if not compact:
        return data
    try:
        # In C, and only hex digits pass: a set of a 10,000-digit quote cost 17x more.
        return binascii.a2b_hex(compact)
    except binascii.Error:
        if len(compact) % 2 and set(compact) <= _HEX:
            raise MalformedEvidence(
                f"{name}: odd number of hex digits", check="evidence.encoding"
            ) from None
    return data


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
    if not isinstance(signer, bytes) or any(signer):
        appraisal.fail(
            "tdx.mrsignerseam",
            "the TDX module is not Intel's (MRSIGNERSEAM is not zero)",
            expected="00" * 48,
            actual=signer.hex() if isinstance(signer, bytes) else signer,
        )
    return verified

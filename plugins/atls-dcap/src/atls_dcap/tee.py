"""A DCAP quote verified as the TEE's a validator appraises.

dcap-qvl verifies SGX and TDX quotes alike; a validator of one TEE must refuse
a genuine quote of the other (its report fields mean something else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.errors import MalformedEvidence

if TYPE_CHECKING:
    import datetime as dt

    from atls_dcap.report import VerifiedQuote
    from atls_dcap.verifier import DcapVerifier

__all__ = ["verify_quote_of"]

_A_QUOTE = {"sgx": "an SGX quote", "tdx": "a TDX quote"}


def verify_quote_of(
    verifier: DcapVerifier,
    quote: bytes,
    *,
    now: dt.datetime,
    tee_type: str,
    check: str,
    refusal: str | None = None,
) -> VerifiedQuote:
    """``quote`` verified at ``now`` if it is a ``tee_type`` quote; ``MalformedEvidence``
    (``check``, message ``refusal``) if it is another TEE's."""
    verified = verifier.verify(quote, now=now)
    if verified.tee_type != tee_type:
        raise MalformedEvidence(
            refusal or f"the quote is not {_A_QUOTE.get(tee_type, tee_type)}",
            check=check,
            expected=tee_type,
            actual=verified.tee_type,
        )
    return verified

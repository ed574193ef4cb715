"""What every Intel TDX validator refuses, whoever checked the quote's signature.

dcap-qvl refuses these in the quotes it verifies (``tdx.dcap``).  A token
service (Intel Trust Authority, Microsoft Azure Attestation) verifies the quote
for the client and signs what it read; its own policy need not apply the same
rules, so a validator reading such a token checks the signed fields here.  The
same token then gets the same answer as the quote behind it.

- MRSIGNERSEAM not zero: a TDX module Intel did not sign.  Intel's TCB info
  cannot vouch for it (no policy knob).
- A reserved TD attribute bit set, or SEPT_VE_DISABLE clear: a TD the host can
  interrupt with #VE on its private memory's page tables, which guest kernels
  cannot handle safely.
- Any TD-Under-Debug bit (0..7) set is a debug TD, left to ``allow_debug``:
  dcap-qvl reports every TUD bit as debug, while a token's debug claim (MAA's
  ``tdx_td_attributes_debug``) may reflect TUD.DEBUG (bit 0) alone.

A field the token does not carry is refused too: what the client cannot
check, it does not accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal

__all__ = ["SEPT_VE_DISABLE", "check_td_identity", "td_attributes_problem"]

SEPT_VE_DISABLE = 1 << 28
"""TDATTRIBUTES bit 28."""

_RESERVED = (0xFFFFF << 8) | (1 << 29) | (0x7FFFFFFF << 32)
"""TDATTRIBUTES bits 8..27, 29 and 32..62 (TDX module ABI): zero in every TD."""


def td_attributes_problem(td_attributes: bytes) -> str | None:
    """Why TD attributes (8 bytes, little-endian) are refused, or ``None``."""
    if len(td_attributes) != 8:
        return f"TD attributes are {len(td_attributes)} bytes, not 8"
    value = int.from_bytes(td_attributes, "little")
    if value & _RESERVED:
        return "a reserved TD attribute bit is set"
    if not value & SEPT_VE_DISABLE:
        return "the TD does not set SEPT_VE_DISABLE"
    return None


def check_td_identity(
    appraisal: Appraisal, *, mrsignerseam: bytes | None, td_attributes: bytes | None
) -> None:
    """Record a failure for a non-Intel TDX module or refused TD attributes, and a TD
    with any TUD bit as debuggable.

    ``None`` stands for a field the evidence does not carry.
    """
    if td_attributes and td_attributes[0]:
        appraisal.set_debug(True)
    if mrsignerseam is None or len(mrsignerseam) != 48 or any(mrsignerseam):
        appraisal.fail(
            "tdx.mrsignerseam",
            "the evidence does not show the TDX module is Intel's (MRSIGNERSEAM must be "
            "48 zero bytes)",
            expected="00" * 48,
            actual=None if mrsignerseam is None else mrsignerseam.hex(),
        )
    problem = (
        "the evidence does not carry the TD attributes"
        if td_attributes is None
        else td_attributes_problem(td_attributes)
    )
    if problem is not None:
        appraisal.fail(
            "tdx.td_attributes",
            problem,
            expected=f"SEPT_VE_DISABLE set, reserved bits clear ({SEPT_VE_DISABLE:#x})",
            actual=None if td_attributes is None else td_attributes.hex(),
        )

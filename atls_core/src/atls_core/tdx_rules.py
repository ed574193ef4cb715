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

The policy option :data:`SEPT_VE_OPTION` (``require_sept_ve_disable``, default
true) may be set false for a platform whose TDs run without SEPT_VE_DISABLE
(ask the platform why): the result is then ``warning``, never ``affirming``.
``tdx.dcap`` cannot relax it, as dcap-qvl refuses such quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.errors import ConfigurationError

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal
    from atls_core.policy import Policy

__all__ = [
    "NO_SEPT_VE_DISABLE",
    "SEPT_VE_DISABLE",
    "SEPT_VE_OPTION",
    "check_td_identity",
    "sept_ve_disable_required",
    "td_attributes_problem",
]

SEPT_VE_DISABLE = 1 << 28
"""TDATTRIBUTES bit 28."""

SEPT_VE_OPTION = "require_sept_ve_disable"
"""The policy option of validators that apply these rules (declare it in their spec)."""

_RESERVED = (0xFFFFF << 8) | (1 << 29) | (0x7FFFFFFF << 32)
"""TDATTRIBUTES bits 8..27, 29 and 32..62 (TDX module ABI): zero in every TD."""


NO_SEPT_VE_DISABLE = "the TD does not set SEPT_VE_DISABLE"
"""What :func:`td_attributes_problem` says of a TD without SEPT_VE_DISABLE (and nothing worse)."""


def td_attributes_problem(td_attributes: bytes) -> str | None:
    """Why TD attributes (8 bytes, little-endian) are refused, or ``None``."""
    if len(td_attributes) != 8:
        return f"TD attributes are {len(td_attributes)} bytes, not 8"
    value = int.from_bytes(td_attributes, "little")
    if value & _RESERVED:
        return "a reserved TD attribute bit is set"
    if not value & SEPT_VE_DISABLE:
        return NO_SEPT_VE_DISABLE
    return None


def sept_ve_disable_required(policy: Policy) -> bool:
    """The policy's :data:`SEPT_VE_OPTION` (default true); anything but a boolean is refused."""
    value = policy.option(SEPT_VE_OPTION, True)
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"policy option {SEPT_VE_OPTION} must be true or false",
            check=f"config.policy.{SEPT_VE_OPTION}",
            actual=value,
        )
    return value


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
    if problem == NO_SEPT_VE_DISABLE and not sept_ve_disable_required(appraisal.policy):
        appraisal.warn(
            "tdx.td_attributes",
            f"{problem}; accepted by policy ({SEPT_VE_OPTION} = false)",
        )
    elif problem is not None:
        appraisal.fail(
            "tdx.td_attributes",
            problem,
            expected=f"SEPT_VE_DISABLE set, reserved bits clear ({SEPT_VE_DISABLE:#x})",
            actual=None if td_attributes is None else td_attributes.hex(),
        )

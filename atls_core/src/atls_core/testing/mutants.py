"""Appraising mutated evidence: what a plugin's tests of its recorded evidence ask.

Flip a byte of a real quote, token or certificate and appraise it again: the
mutant must be refused with a named check, or, where the byte is one nothing
signs and nothing reads, accepted with exactly the original's facts.  Anything
else is a finding: an acceptance, a refusal that names no check, or a bare
exception escaping the validator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from atls_core.errors import ATLSError
from atls_core.result import AttestationResult

__all__ = ["claim_variants", "mutant_outcome", "mutant_read", "mutant_verdict", "workload_facts"]


def workload_facts(result: AttestationResult) -> tuple[Any, ...]:
    """What a client is told about the workload: an unread byte must leave it as it was."""
    return (
        result.claims,
        result.measurements,
        result.debug,
        result.tcb.status,
        result.tcb.advisory_ids,
        result.binding.scheme,
    )


T = TypeVar("T")


def mutant_read(run: Callable[[], T]) -> tuple[str, T | None]:
    """A reader (or an appraisal) of mutated input: ``("read", value)``, ``("refused",
    None)`` for an atls error naming its check, or ``(finding, None)``: an error that names
    no check, or a bare exception (described, never raised)."""
    try:
        value = run()
    except ATLSError as error:
        return ("refused" if error.check else f"{type(error).__name__} without a check"), None
    except Exception as error:  # a bare exception is the finding
        return f"crashed {type(error).__name__}: {error}", None
    return "read", value


def mutant_outcome(run: Callable[[], AttestationResult]) -> tuple[str, AttestationResult | None]:
    """``("accepted", result)``, ``("refused", None)``, or ``(finding, None)``: a refusal
    that names no check, or a bare exception (described, never raised)."""
    word, result = mutant_read(run)
    if result is None:
        return word, None
    if result.accepted:
        return "accepted", result
    enforced = [failure for failure in result.failures if failure.enforced]
    return ("refused" if all(f.check for f in enforced) else "refused without a check"), None


def mutant_verdict(
    run: Callable[[], AttestationResult],
    baseline: AttestationResult,
    *,
    same: Callable[[AttestationResult], Any] = workload_facts,
) -> str:
    """:func:`mutant_outcome`'s word, where an acceptance is ``accepted`` only with the facts of
    ``baseline`` (the unmutated evidence's result) and ``accepted, other result`` else."""
    word, result = mutant_outcome(run)
    if result is not None and same(result) != same(baseline):
        return "accepted, other result"
    return word


def claim_variants(value: Any) -> list[Any]:
    """Mutants of one signed claim, for re-signing a recorded token's claims: deleted
    (``...``), another value of the same type, or a value of another type."""
    if isinstance(value, bool):
        return [..., not value, None, str(value).lower(), int(value)]
    if isinstance(value, int):
        return [..., value + 1, None, str(value), -1, 2**64]
    if isinstance(value, str):
        changed = value[:-1] + ("1" if value[-1:] == "0" else "0")
        return [..., changed, None, "", 5, [value]]
    return [..., None, "x"]

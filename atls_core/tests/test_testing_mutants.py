"""The kit's words for how an appraisal of mutated evidence ended."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from atls_core import errors as e
from atls_core.binding import Binding, Freshness
from atls_core.result import (
    AttestationResult,
    Failure,
    Status,
    Tcb,
    TrustworthinessVector,
    Verifier,
)
from atls_core.testing.mutants import mutant_outcome, mutant_verdict

ACCEPTED = AttestationResult(
    status=Status.AFFIRMING,
    trustworthiness=TrustworthinessVector(),
    verifier=Verifier(validator="x.y", plugin="x", plugin_version="1", core_version="0"),
    policy_id="default",
    policy_digest="00",
    evidence_digest="11",
    binding=Binding(scheme="atls-v1", freshness=Freshness.NONCE, verified=True),
    tee_type="x",
    debug=False,
    tcb=Tcb(status="UpToDate"),
    measurements={"m": "aa"},
    claims={"c": 1},
    issued_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    expires_at=None,
)


def _raise(error: Exception) -> AttestationResult:
    raise error


def _without_check() -> e.ATLSError:
    """Every atls error names a check; a plugin's own subclass could still clear it."""
    error = e.UntrustedChain("bad signature")
    error.check = ""
    return error


@pytest.mark.parametrize(
    ("run", "word"),
    [
        (lambda: _raise(e.UntrustedChain("bad signature", check="x.signature")), "refused"),
        (lambda: _raise(_without_check()), "UntrustedChain without a check"),
        (lambda: _raise(IndexError("out of range")), "crashed IndexError: out of range"),
        (
            lambda: attrs.evolve(
                ACCEPTED,
                status=Status.CONTRAINDICATED,
                failures=(Failure(check="x.y", message="no"),),
            ),
            "refused",
        ),
        (
            lambda: attrs.evolve(
                ACCEPTED,
                status=Status.CONTRAINDICATED,
                failures=(Failure(check="", message="no"),),
            ),
            "refused without a check",
        ),
    ],
)
def test_refusals_and_findings(run: object, word: str) -> None:
    said, result = mutant_outcome(run)  # type: ignore[arg-type]
    assert word in said
    assert result is None


def test_an_acceptance_is_accepted_only_with_the_baseline_facts() -> None:
    assert mutant_outcome(lambda: ACCEPTED) == ("accepted", ACCEPTED)
    assert mutant_verdict(lambda: ACCEPTED, ACCEPTED) == "accepted"
    other = attrs.evolve(ACCEPTED, measurements={"m": "bb"})
    assert mutant_verdict(lambda: other, ACCEPTED) == "accepted, other result"
    later = attrs.evolve(ACCEPTED, evidence_digest="22")  # an unread byte changes only this
    assert mutant_verdict(lambda: later, ACCEPTED) == "accepted"


def test_claim_variants_delete_change_and_retype() -> None:
    from atls_core.testing.mutants import claim_variants

    assert claim_variants(True) == [..., False, None, "true", 1]
    assert claim_variants("ab0") == [..., "ab1", None, "", 5, ["ab0"]]
    assert claim_variants(7) == [..., 8, None, "7", -1, 2**64]


def test_a_reader_that_returns_is_read_and_its_failures_are_named() -> None:
    from atls_core.testing.mutants import mutant_read

    assert mutant_read(lambda: b"parsed") == ("read", b"parsed")
    assert mutant_read(lambda: _raise(e.MalformedEvidence("bad", check="x.y"))) == ("refused", None)
    assert mutant_read(lambda: _raise(KeyError("k")))[0] == "crashed KeyError: 'k'"

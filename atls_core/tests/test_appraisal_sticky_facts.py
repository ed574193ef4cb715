"""Facts an appraisal keeps once set: a TEE found debuggable stays debuggable.

Hand-overs and multi-part evidence each report the debug flag of the part they
verified; a later part that is not debuggable must not clear an earlier one's.
"""

from __future__ import annotations

import datetime as dt

from atls_core.appraisal import Appraisal
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.testing.simulated import DEFAULT_MEASUREMENTS, MEDIA_TYPE, VALIDATOR_SPEC

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _appraisal() -> Appraisal:
    return Appraisal(
        spec=VALIDATOR_SPEC,
        policy=Policy(reference_values=dict(DEFAULT_MEASUREMENTS)),
        evidence=Evidence(
            media_type=MEDIA_TYPE,
            data=b"{}",
            source=EvidenceSource(transport=Transport.FILE, location="parts"),
        ),
        clock=FixedClock(NOW),
    )


def test_debug_once_true_stays_true() -> None:
    appraisal = _appraisal()
    seen = [appraisal.debug]
    for debuggable in (False, True, False):
        appraisal.set_debug(debuggable)
        seen.append(appraisal.debug)
    assert seen == [None, False, True, True]


def test_a_later_part_that_is_not_debuggable_does_not_clear_the_refusal() -> None:
    appraisal = _appraisal()
    appraisal.set_debug(True)
    appraisal.set_debug(False)
    result = appraisal.finish()
    assert result.debug is True
    assert "debug" in [f.check for f in result.failures if f.enforced]

"""Every TD-Under-Debug bit makes a TD debuggable under the shared TDX rules, as in tdx.dcap."""

from __future__ import annotations

import pytest

from atls_core.appraisal import Appraisal
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.tdx_rules import SEPT_VE_DISABLE, check_td_identity
from atls_core.testing.simulated import VALIDATOR_SPEC as SIMULATED_SPEC


def _appraisal(policy: Policy) -> Appraisal:
    return Appraisal(
        spec=SIMULATED_SPEC,
        policy=policy,
        evidence=Evidence(
            media_type=SIMULATED_SPEC.media_types[0],
            data=b"-",
            source=EvidenceSource(transport=Transport.FILE, location="test"),
        ),
        clock=FixedClock.from_unix(0),
    )


@pytest.mark.parametrize("bit", range(8))
def test_any_tud_bit_is_debug(bit: int) -> None:
    attributes = (SEPT_VE_DISABLE | 1 << bit).to_bytes(8, "little")
    appraisal = _appraisal(Policy())
    appraisal.set_debug(False)  # what a token's own debug flag may say
    check_td_identity(appraisal, mrsignerseam=bytes(48), td_attributes=attributes)
    failures = appraisal.finish().failures
    assert [f.check for f in failures if f.check in ("debug", "tdx.td_attributes")] == ["debug"]


def test_without_tud_bits_debug_is_the_validators_word() -> None:
    appraisal = _appraisal(Policy())
    appraisal.set_debug(False)
    check_td_identity(
        appraisal, mrsignerseam=bytes(48), td_attributes=SEPT_VE_DISABLE.to_bytes(8, "little")
    )
    assert not [f for f in appraisal.finish().failures if f.check == "debug"]

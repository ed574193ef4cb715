"""The TDX rules every TDX validator applies to signed fields, whoever verified the quote."""

from __future__ import annotations

import pytest

from atls_core.appraisal import Appraisal
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.tdx_rules import SEPT_VE_DISABLE, check_td_identity, td_attributes_problem
from atls_core.testing.simulated import VALIDATOR_SPEC as SIMULATED_SPEC

INTEL = bytes(48)
GOOD = SEPT_VE_DISABLE.to_bytes(8, "little")


def _failures(mrsignerseam: bytes | None, td_attributes: bytes | None) -> list[str]:
    appraisal = Appraisal(
        spec=SIMULATED_SPEC,
        policy=Policy(),
        evidence=Evidence(
            media_type=SIMULATED_SPEC.media_types[0],
            data=b"-",
            source=EvidenceSource(transport=Transport.FILE, location="test"),
        ),
        clock=FixedClock.from_unix(0),
    )
    check_td_identity(appraisal, mrsignerseam=mrsignerseam, td_attributes=td_attributes)
    return [f.check for f in appraisal.finish().failures if f.check.startswith("tdx.")]


def test_intel_module_and_sept_ve_disable_pass() -> None:
    assert _failures(INTEL, GOOD) == []
    # the TUD debug bit, PKS (30), KL (31) and PERFMON (63) are not this module's to refuse
    allowed = GOOD[0] | 1, *GOOD[1:3], GOOD[3] | 0xC0, *GOOD[4:7], 0x80
    assert td_attributes_problem(bytes(allowed)) is None


@pytest.mark.parametrize(
    ("mrsignerseam", "td_attributes", "failures"),
    [
        (b"\x01" + bytes(47), GOOD, ["tdx.mrsignerseam"]),
        (bytes(32), GOOD, ["tdx.mrsignerseam"]),
        (None, GOOD, ["tdx.mrsignerseam"]),
        (INTEL, bytes(8), ["tdx.td_attributes"]),
        (INTEL, None, ["tdx.td_attributes"]),
        (INTEL, GOOD[:7], ["tdx.td_attributes"]),
        (None, None, ["tdx.mrsignerseam", "tdx.td_attributes"]),
    ],
)
def test_refusals(
    mrsignerseam: bytes | None, td_attributes: bytes | None, failures: list[str]
) -> None:
    assert _failures(mrsignerseam, td_attributes) == failures


@pytest.mark.parametrize("bit", [*range(8, 28), 29, *range(32, 63)])
def test_every_reserved_bit_is_refused(bit: int) -> None:
    attributes = (SEPT_VE_DISABLE | 1 << bit).to_bytes(8, "little")
    assert td_attributes_problem(attributes) == "a reserved TD attribute bit is set"


def test_policy_may_relax_sept_ve_disable_alone() -> None:
    from atls_core.errors import ConfigurationError
    from atls_core.tdx_rules import SEPT_VE_OPTION, sept_ve_disable_required

    assert sept_ve_disable_required(Policy()) is True
    assert sept_ve_disable_required(Policy(options={SEPT_VE_OPTION: False})) is False
    with pytest.raises(ConfigurationError):
        sept_ve_disable_required(Policy(options={SEPT_VE_OPTION: "false"}))

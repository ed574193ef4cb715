"""``describe`` (``atls inspect``): a token's header, claims and measurements, NOT verified."""

from __future__ import annotations

import attrs
import pytest

from atls_core.binding import new_nonce
from atls_core.errors import MalformedEvidence
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import issue_token
from atls_ita.validator import SGX_SPEC, ItaValidator


@pytest.mark.parametrize("shape", ["v2", "v1"])
def test_a_token_is_described_with_the_measurements_the_validator_reads(
    ita: StandInIta, validator: ItaValidator, shape: str
) -> None:
    ita.shape = shape
    issued = issue_token(ita, nonce=new_nonce())
    description = validator.describe(issued.evidence)
    assert description["format"] == f"Intel Trust Authority token ({shape}): signature NOT verified"
    assert description["measurements"]["mrtd"] == ita.measurements["mrtd"]
    assert description["tcb_status"] == "UpToDate"
    assert description["header"]["alg"] in ("PS384", "RS256")


def test_another_tee_and_garbage_are_not_this_validators(
    ita: StandInIta, validator: ItaValidator
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    sgx = ItaValidator({}, spec=SGX_SPEC, verifier=validator.verifier)
    with pytest.raises(MalformedEvidence) as info:
        sgx.describe(issued.evidence)
    assert info.value.check == "ita.attester_type"
    with pytest.raises(MalformedEvidence) as info:
        validator.describe(attrs.evolve(issued.evidence, data=b"a.b"))
    assert info.value.check == "jwt.format"

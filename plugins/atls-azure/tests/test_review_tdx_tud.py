"""azure.tdx counts every TD-Under-Debug bit of TDATTRIBUTES as debug, as tdx.dcap does;
and held data naming its key twice is refused.

MAA's ``tdx_td_attributes_debug`` reports TUD.DEBUG (bit 0) only.  dcap-qvl, and so
tdx.dcap, ita.tdx and atls_dcap's debug-TD path, take any TUD bit (0..7) for a debug
TD: the same quote must not be accepted through a token and refused by itself.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from atls_azure import specs
from atls_azure.testing.maa import StandInMaa, held_data_for, new_tls_key, token_evidence
from atls_azure.validators import TdxTokenValidator
from atls_core import binding as b
from atls_core.clock import FixedClock
from atls_core.errors import BindingMismatch
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult
from atls_core.testing.conformance import Case

_SEPT_VE_DISABLE_ONLY = "0000001000000000"
TDX_POLICY = Policy(reference_values={"mrtd": ReferenceValue(accepted=["33" * 48])})


def tdx_case(maa: StandInMaa, **overrides: Any) -> Case:
    key, spki = new_tls_key()
    held = held_data_for(key)
    claims = maa.tdx_claims(held, **overrides)
    return Case(
        evidence=token_evidence(maa.sign(claims), specs.TDX_OID, held),
        binding=b.BindingContext(spki_der=spki),
        clock=FixedClock.from_unix(claims["iat"] + 5),
        policy=TDX_POLICY,
    )


def _tdx(maa: StandInMaa, case: Case) -> AttestationResult:
    result: AttestationResult = case.appraised_by(TdxTokenValidator(maa.settings()))
    return result


@pytest.mark.parametrize("bit", range(1, 8))
def test_a_tud_bit_other_than_debug_is_debug(maa: StandInMaa, bit: int) -> None:
    attributes = bytearray.fromhex(_SEPT_VE_DISABLE_ONLY)
    attributes[0] |= 1 << bit
    case = tdx_case(maa, tdx_td_attributes=attributes.hex(), tdx_td_attributes_debug=False)
    result = _tdx(maa, case)
    assert not result.accepted
    assert [f.check for f in result.failures] == ["debug"]
    allowed = _tdx(maa, attrs.evolve(case, policy=attrs.evolve(TDX_POLICY, allow_debug=True)))
    assert allowed.accepted
    assert allowed.debug


def test_without_tud_bits_the_td_is_not_debug(maa: StandInMaa) -> None:
    result = _tdx(maa, tdx_case(maa, tdx_td_attributes=_SEPT_VE_DISABLE_ONLY))
    assert result.accepted
    assert not result.debug


def test_held_data_naming_its_key_twice_is_refused(maa: StandInMaa) -> None:
    """The held data (hashed into the report) says which TLS key is bound: a reader keeping
    the first ``jwk`` and one keeping the last would bind different keys."""
    key, spki = new_tls_key()
    other, _ = new_tls_key()
    bound = held_data_for(key).decode()
    decoy = held_data_for(other).decode()
    held = ("{" + decoy[1:-1] + ", " + bound[1:-1] + "}").encode()  # "jwk" twice, ours last
    claims = maa.tdx_claims(held)
    case = Case(
        evidence=token_evidence(maa.sign(claims), specs.TDX_OID, held),
        binding=b.BindingContext(spki_der=spki),
        clock=FixedClock.from_unix(claims["iat"] + 5),
        policy=TDX_POLICY,
    )
    with pytest.raises(BindingMismatch) as refused:
        _tdx(maa, case)
    assert refused.value.check == "azure.held_data"
    assert "repeats 'jwk'" in str(refused.value)

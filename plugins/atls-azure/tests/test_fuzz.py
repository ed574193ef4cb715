"""Robustness: odd bytes and odd (validly signed) claims give specific errors, never crashes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atls_azure.testing.maa import StandInMaa, new_tls_key
from atls_azure.validators import FACTORIES
from atls_core import binding as b
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

CLAIM_NAMES = [
    "x-ms-attestation-type",
    "x-ms-compliance-status",
    "x-ms-runtime",
    "x-ms-sevsnpvm-reportdata",
    "x-ms-sevsnpvm-hostdata",
    "x-ms-sevsnpvm-is-debuggable",
    "x-ms-isolation-tee",
    "secureboot",
    "x-ms-azurevm-debuggersdisabled",
    "x-ms-sgx-ehd",
    "x-ms-sgx-report-data",
    "x-ms-sgx-mrenclave",
    "x-ms-sgx-is-debuggable",
    "tdx_report_data",
    "tdx_td_attributes_debug",
    "tdx_mrtd",
    "attester_tcb_status",
    "iat",
    "exp",
    "nbf",
]

_SERVICE: list[StandInMaa] = []
_VALIDATORS: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def _service() -> Iterator[None]:
    with StandInMaa() as maa:
        _SERVICE.append(maa)
        yield
        _SERVICE.clear()
        _VALIDATORS.clear()


def _validator(validator_id: str) -> Any:
    if validator_id not in _VALIDATORS:
        _VALIDATORS[validator_id] = FACTORIES[validator_id](_SERVICE[0].settings())
    return _VALIDATORS[validator_id]


def _appraise(validator_id: str, data: bytes, at: int) -> None:
    _key, spki = new_tls_key()
    with contextlib.suppress(ATLSError):  # anything else is a crash and fails the test
        _validator(validator_id).appraise(
            Evidence(
                media_type="application/vnd.microsoft.maa+jwt",
                data=data,
                source=EvidenceSource(transport=Transport.FILE),
                endorsements={"runtime_data": b'{"jwk": {}}'},
            ),
            binding=b.BindingContext(spki_der=spki, nonce=b.new_nonce()),
            clock=FixedClock.from_unix(at),
            policy=Policy(allow_any_workload=True),
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    validator_id=st.sampled_from(sorted(FACTORIES)),
    kind=st.sampled_from(["sevsnpvm", "azurevm", "sgx", "tdxvm"]),
    odd=st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=6),
)
def test_signed_odd_claims_never_crash(validator_id: str, kind: str, odd: dict[str, Any]) -> None:
    maa = _SERVICE[0]
    claims = maa.base_claims(kind) | odd
    iat = claims.get("iat")
    # The appraisal clock follows a sane iat; an absurd one (year 0, 10**30) must be refused by
    # the validator at an ordinary time, not make the test's own clock unrepresentable.
    at = 1_700_000_000
    if isinstance(iat, int) and not isinstance(iat, bool) and 0 < iat < 4_102_444_800:
        at = iat
    _appraise(validator_id, maa.sign(claims).encode(), at)


@settings(max_examples=40, deadline=None)
@given(validator_id=st.sampled_from(sorted(FACTORIES)), data=st.binary(max_size=400))
def test_random_bytes_never_crash(validator_id: str, data: bytes) -> None:
    _appraise(validator_id, data, 1_700_000_000)


@settings(max_examples=40, deadline=None)
@given(position=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255))
def test_flipped_token_bytes_are_rejected(position: int, value: int) -> None:
    maa = _SERVICE[0]
    claims = maa.base_claims("sgx")
    token = bytearray(maa.sign(claims).encode())
    signed = token.rindex(b".")  # flip inside header.payload, the signed region
    token[position % signed] ^= value
    with pytest.raises(ATLSError):
        _validator("azure.sgx").appraise(
            Evidence(
                media_type="application/vnd.microsoft.maa+jwt",
                data=bytes(token),
                source=EvidenceSource(transport=Transport.FILE),
            ),
            binding=b.BindingContext.offline_context(),
            clock=FixedClock.from_unix(claims["iat"] + 5),
            policy=Policy(allow_any_workload=True),
        )

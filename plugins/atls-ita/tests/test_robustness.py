"""Hostile input: arbitrary bytes and claim trees fail with atls errors only; concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from atls_core.binding import BindingContext, new_nonce
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError, MalformedEvidence
from atls_core.policy import Policy
from atls_ita.claims import map_claims
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import evidence_of, issue_token
from atls_ita.validator import ItaValidator

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "attester_type",
        "tdx",
        "sgx",
        "tdx_mrtd",
        "tdx_report_data",
        "attester_held_data",
        "verifier_nonce",
        "policy_ids_matched",
        "attester_tcb_date",
        "tdx_td_attributes",
        "dbgstat",
        "amber_evidence_type",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json | st.sampled_from(["TDX", "SGX"]), max_size=8))
def test_claim_mapping_fails_only_with_malformed_evidence(claims: dict[str, Any]) -> None:
    try:
        mapped = map_claims(claims, tee="tdx")
    except MalformedEvidence:
        return
    assert mapped.tee == "tdx"
    assert all(isinstance(v, str) for v in mapped.measurements.values())
    assert mapped.debug in (True, False, None)
    assert mapped.held_data is None or isinstance(mapped.held_data, bytes)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_evidence_fails_with_atls_errors(
    validator: ItaValidator, clock: FixedClock, data: bytes
) -> None:
    with pytest.raises(ATLSError):
        validator.appraise(
            evidence_of(data.decode("latin-1")),
            binding=BindingContext(spki_der=b"k", nonce=new_nonce()),
            clock=clock,
            policy=Policy(),
        )


def test_concurrent_first_appraisals_share_one_key_fetch(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, pinned: Policy
) -> None:
    tokens = [issue_token(ita, nonce=new_nonce()) for _ in range(8)]
    barrier = threading.Barrier(len(tokens))
    results: list[bool] = []
    errors: list[BaseException] = []

    def appraise(issued: Any) -> None:
        barrier.wait()
        try:
            result = validator.appraise(
                issued.evidence, binding=issued.binding, clock=clock, policy=pinned
            )
            results.append(result.accepted)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=appraise, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert results == [True] * len(tokens)
    assert ita.requests["/certs"] == 1


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.dictionaries(_keys, _json | st.sampled_from(["TDX", "SGX"]), max_size=6))
@example(extra={"attester_held_data": "\x80", "attester_type": "TDX"})  # not ASCII: no base64
def test_signed_hostile_claims_are_never_accepted(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, extra: dict[str, Any]
) -> None:
    """Even with a genuine signature, claims that do not bind this connection are refused.

    The policy allows any workload so that the pinning rule is not what refuses them.
    """
    now = int(ita.clock.now().timestamp())
    claims = {"iss": ita.issuer, "iat": now, "exp": now + 60, **extra}
    try:
        result = validator.appraise(
            evidence_of(ita.sign(claims)),
            binding=BindingContext(spki_der=b"some key", nonce=new_nonce()),
            clock=clock,
            policy=Policy(allow_any_workload=True),
        )
    except ATLSError:
        return
    assert not result.accepted


def test_deeply_nested_header_is_malformed_not_a_recursion_error(
    validator: ItaValidator, clock: FixedClock
) -> None:
    # Regression (R3 review): json.loads raises RecursionError (not ValueError) on deep
    # nesting; an unauthenticated header escaped as a non-atls exception.
    import base64

    header = base64.urlsafe_b64encode(b"[" * 20000).rstrip(b"=").decode()
    with pytest.raises(MalformedEvidence) as info:
        validator.appraise(
            evidence_of(f"{header}.e30.c2ln"),
            binding=BindingContext(spki_der=b"k", nonce=new_nonce()),
            clock=clock,
            policy=Policy(),
        )
    assert info.value.check == "jwt.format"

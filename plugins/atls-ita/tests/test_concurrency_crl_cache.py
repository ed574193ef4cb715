"""The CRL cache keeps only CRLs whose signature was checked (a forged one must not stick)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from atls_core.binding import new_nonce
from atls_core.clock import FixedClock
from atls_core.errors import UntrustedChain
from atls_core.policy import Policy
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token
from atls_ita.validator import ItaValidator


def _accepted(validator: ItaValidator, ita: StandInIta, clock: FixedClock) -> bool:
    issued = issue_token(ita, nonce=new_nonce())
    policy = Policy(reference_values=workload_pin(validator.spec.tee_type))
    result = validator.appraise(issued.evidence, binding=issued.binding, clock=clock, policy=policy)
    return result.accepted


def test_a_forged_crl_is_not_kept_after_its_refusal(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    # CRL distribution points are usually plain http: one forged answer (any key, a
    # next update years away) must cost that appraisal only, not every one until then.
    validator = ItaValidator({**settings, "check_crl": True})
    ita.crl_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UntrustedChain) as info:
        _accepted(validator, ita, clock)
    assert info.value.check == "ita.crl.signature"
    ita.crl_key = None
    assert _accepted(validator, ita, clock)
    assert _accepted(validator, ita, clock)
    assert ita.requests["/crl/signing-ca.crl"] + ita.requests["/crl/root.crl"] == 3

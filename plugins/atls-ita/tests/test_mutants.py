"""Mutants of the recorded Intel Trust Authority tokens, and of their claims re-signed.

No recorded real token can verify (their signing keys were never recorded; the Go client's are
test-signed), so every mutant of them must end in a refusal that names its check, never in a
bare exception: they exercise the parsing that runs before any signature.

The recorded claims, re-signed by the stand-in ITA, then show which signed claims are read: each
claim is deleted, retyped and changed.  The claims no mutation can affect are listed in
:data:`UNREAD_CLAIMS` with the reason, so a change that starts reading one is noticed here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.mutants import claim_variants, mutant_outcome, mutant_verdict
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import evidence_of, unverified_claims
from atls_ita.validator import SGX_SPEC, TDX_SPEC, ItaValidator

pytestmark = pytest.mark.vectors

Vectors = Callable[[str], Path]
REAL = "ita/tokens-real-no-jwks/"
TOKENS = [
    f"{REAL}kbs_service_key_transfer_test_go_TDX_fe2cce24.jwt",
    f"{REAL}kbs_service_key_transfer_test_go_SGX_d7ec7def.jwt",
    f"{REAL}kbs_docs_openapi_yml_SGX_3c2418b5.jwt",
    f"{REAL}amber_sgx_token_tdxcli_verify_test_0.jwt",
    "ita/neg-test-signed-goclient/go_test_token_0.jwt",
    "ita/neg-test-signed-goclient/go_test_token_3.jwt",
]
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SHARED_UNREAD = {
    "eat_profile": "a link to the token profile's documentation",
    "intuse": "the intended use ('generic'): no other value is defined",
    "verifier_instance_ids": "which ITA instances served the request",
}
UNREAD_CLAIMS = {
    "tdx": {
        **_SHARED_UNREAD,
        "tdx_collateral": "ITA's record of the collateral it used",
        "tdx_td_attributes_septve_disable": "a copy of a tdx_td_attributes bit",
        "tdx_td_attributes_protection_keys": "a copy of a tdx_td_attributes bit",
        "tdx_td_attributes_key_locker": "a copy of a tdx_td_attributes bit",
        "tdx_td_attributes_perfmon": "a copy of a tdx_td_attributes bit",
    },
    "sgx": {**_SHARED_UNREAD, "sgx_collateral": "ITA's record of the collateral it used"},
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mutants(token: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    segments = token.split(".")
    header = segments[0]
    positions = [*range(len(header)), *rng.sample(range(len(header), len(token)), 150)]
    for position in positions:
        replacement = rng.choice([c for c in BASE64URL + ".=+/ \x00" if c != token[position]])
        yield (
            f"set {position}={replacement!r}",
            token[:position] + replacement + token[position + 1 :],
        )
    for position in [i for i, c in enumerate(token) if c == "."]:
        yield f"cut {position}", token[:position]
        yield f"dot dropped {position}", token[:position] + token[position + 1 :]
        yield f"dot doubled {position}", token[:position] + "." + token[position:]
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    rest = token[len(header) :]
    for alg in ("none", "HS256", "HS384", "RS256", "PS384", "ES384", "PS512", ""):
        yield f"alg {alg!r}", _b64(json.dumps(decoded | {"alg": alg}).encode()) + rest
    text = json.dumps(decoded)
    yield "alg repeated", _b64(('{"alg": "none", ' + text[1:]).encode()) + rest
    yield (
        "jku to elsewhere",
        _b64(json.dumps(decoded | {"jku": "https://evil.test/certs"}).encode()) + rest,
    )
    yield (
        "kid missing",
        _b64(json.dumps({k: v for k, v in decoded.items() if k != "kid"}).encode()) + rest,
    )
    yield "header nested deep", _b64(("[" * 5000 + "]" * 5000).encode()) + rest
    yield (
        "payload nested deep",
        f"{header}.{_b64(('[' * 5000 + ']' * 5000).encode())}.{segments[-1]}",
    )


@pytest.mark.parametrize("name", TOKENS)
def test_every_mutant_of_a_recorded_token_is_refused_with_a_check(
    vectors: Vectors, tmp_path: Path, ita: StandInIta, name: str
) -> None:
    token = vectors(name).read_text().strip()
    when = FixedClock.from_unix(unverified_claims(token)["iat"] + 1)
    spec = TDX_SPEC if "TDX" in name else SGX_SPEC
    validator = ItaValidator(
        {
            "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
        },
        spec=spec,
    )
    found = []
    for label, mutant in _mutants(token, random.Random(f"ita-{name}")):
        verdict, _result = mutant_outcome(
            lambda: validator.appraise(
                evidence_of(mutant),  # noqa: B023
                binding=BindingContext.offline_context(),
                clock=when,
                policy=Policy(allow_any_workload=True),
            ),
        )
        if verdict != "refused":
            found.append(f"{label}: {verdict}")
    assert found == []


# --- recorded claims, re-signed -------------------------------------------------------------------


def _sign(ita: StandInIta, claims: dict[str, Any]) -> str:
    """PS384 over the claims as given (PyJWT's encoder would refuse some of the mutants)."""
    signer = ita.pki.signers["PS384"]
    header = _b64(json.dumps({"alg": "PS384", "kid": signer.kid, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.DIGEST_LENGTH)
    signature = signer.key.sign(f"{header}.{payload}".encode(), pss, hashes.SHA384())
    return f"{header}.{payload}.{_b64(signature)}"


@pytest.mark.parametrize("tee", ["tdx", "sgx"])
def test_which_signed_claims_are_read(
    vectors: Vectors, tmp_path: Path, ita: StandInIta, tee: str
) -> None:
    """No claim mutation crashes; the claims no mutation affects are exactly the listed ones."""
    name = TOKENS[0] if tee == "tdx" else TOKENS[1]
    recorded = unverified_claims(vectors(name).read_text().strip())
    issued = ita.clock.now()  # the stand-in's certificates are valid around it
    now = int(issued.timestamp())
    claims = recorded | {"iat": now, "nbf": now, "exp": now + 300, "iss": ita.issuer}
    validator = ItaValidator(
        {
            "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
        },
        spec=TDX_SPEC if tee == "tdx" else SGX_SPEC,
    )
    policy = (
        Policy(reference_values={"mrtd": claims["tdx_mrtd"]})
        if tee == "tdx"
        else Policy(
            accepted_tcb_statuses={"UpToDate", "OutOfDate"},
            accepted_advisory_ids=tuple(claims["attester_advisory_ids"]),
            reference_values={"mrenclave": claims["sgx_mrenclave"]},
        )
    )

    def appraise(changed: dict[str, Any]) -> AttestationResult:
        return validator.appraise(
            evidence_of(_sign(ita, changed)),
            binding=BindingContext.offline_context(),
            clock=FixedClock(issued + dt.timedelta(seconds=1)),
            policy=policy,
        )

    baseline = appraise(claims)
    assert baseline.accepted, baseline.to_json()
    found, unaffected = [], set()
    for claim, value in claims.items():
        verdicts = []
        for other in claim_variants(value):
            changed = {k: v for k, v in claims.items() if k != claim}
            if other is not ...:
                changed[claim] = other
            verdicts.append(mutant_verdict(lambda: appraise(changed), baseline))  # noqa: B023
        found += [f"{claim}: {v}" for v in verdicts if v.startswith(("crashed", "no check"))]
        found += [f"{claim}: {v}" for v in verdicts if "without a check" in v]
        if set(verdicts) == {"accepted"}:
            unaffected.add(claim)
    assert found == []
    assert unaffected == set(UNREAD_CLAIMS[tee])

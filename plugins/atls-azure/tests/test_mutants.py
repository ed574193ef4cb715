"""Mutants of the recorded MAA tokens: a changed token is refused with a named check, never a crash.

Every character of a compact JWS is signed (header, payload) or is the signature, and the strict
base64url decoder refuses spare bits and padding: no mutant of a recorded token may pass.  The
held data the report data hashes is bound too.

The recorded claims, re-signed by the stand-in MAA, then show which signed claims are read: each
claim is deleted, retyped and changed.  The claims no mutation can affect are listed in
:data:`UNREAD_CLAIMS` with the reason, so a change that starts reading one is noticed here.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from atls_azure import specs
from atls_azure.testing.maa import StandInMaa
from atls_azure.validators import AciTokenValidator, SgxTokenValidator
from atls_core import binding as b
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult
from atls_core.testing.mutants import claim_variants, mutant_verdict

pytestmark = pytest.mark.vectors

SGX_DIR = "azure/azsdk-py-1.0.0-sgx-enclave-2021-07-01"
ACI_TOKEN = "azure/aci-sevsnp-token-no-jwks/sev-snp-jwt.txt"
ISSUERS = [
    "https://pylarryoattestationaad.wus.attest.azure.net",
    "https://pylarryoattestationiso.wus.attest.azure.net",
    "https://sharedwus.wus.attest.azure.net",
]
SGX_POLICY = Policy(
    reference_values={
        "mrenclave": ReferenceValue(
            accepted=["b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"]
        ),
        "mrsigner": ReferenceValue(
            accepted=["2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"]
        ),
    }
)
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
UNREAD_CLAIMS = {
    "sgx": {
        "aas-ehd": "a legacy copy of x-ms-sgx-ehd",
        "maa-ehd": "a legacy copy of x-ms-sgx-ehd",
        "maa-attestationcollateral": "MAA's record of the collateral it used",
        "x-ms-sgx-collateral": "MAA's record of the collateral it used",
    },
    "aci": {
        "x-ms-sevsnpvm-authorkeydigest": "the ID block's author key: the idkeydigest is pinned",
        "x-ms-sevsnpvm-familyId": "the ID block's family id, chosen by its signer",
        "x-ms-sevsnpvm-imageId": "the ID block's image id, chosen by its signer",
        "x-ms-sevsnpvm-reportid": "a per-boot identifier of the report",
        "x-ms-sevsnpvm-smt-allowed": "SMT is a host property MAA's policy appraised",
    },
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- recorded tokens, recorded signatures -----------------------------------------------------------


class Recorded:
    def __init__(self, root: Path, index: int) -> None:
        folder = root / SGX_DIR
        (path,) = sorted(folder.glob(f"token_{index}_*.jwt"))
        self.token = path.read_text().strip()
        keys = "sharedwus" if "sharedwus" in path.name else "fakeresource"
        keys_file = folder / f"jwks_recorded_for_{keys}.wus.attest.azure.net.json"
        request = json.loads((folder / f"request_{index}.json").read_text())
        data = request["runtimeData"]["data"]
        self.runtime_data = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        self.claims = jwt.decode(self.token, options={"verify_signature": False})
        self.validator = SgxTokenValidator({"keys_file": str(keys_file), "issuers": ISSUERS})
        self.baseline = self.appraise(self.token)
        assert self.baseline.accepted, self.baseline.to_json()

    def appraise(self, token: str, runtime_data: bytes | None = None) -> AttestationResult:
        return self.validator.appraise(
            Evidence(
                media_type=specs.MEDIA_TYPE,
                data=token.encode(),
                source=EvidenceSource(transport=Transport.FILE, location="recorded"),
                endorsements={
                    "runtime_data": self.runtime_data if runtime_data is None else runtime_data
                },
            ),
            binding=b.BindingContext.offline_context(),
            clock=FixedClock.from_unix(self.claims["iat"] + 60),
            policy=SGX_POLICY,
        )


def _character_mutants(token: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    header, payload, signature = token.split(".")
    ends = [len(header) - 1, len(header) + len(payload), len(token) - 1]
    positions = [
        *range(len(header)),
        *rng.sample(range(len(header) + 1, len(header) + 1 + len(payload)), 150),
        *rng.sample(range(len(token) - len(signature), len(token)), 80),
    ]
    for position in positions:
        replacement = rng.choice([c for c in BASE64URL + ".=+/ " if c != token[position]])
        yield (
            f"set {position}={replacement!r}",
            token[:position] + replacement + token[position + 1 :],
        )
    for position in ends:  # the spare bits of each segment's last character
        for replacement in BASE64URL:
            if replacement != token[position]:
                yield (
                    f"last {position}={replacement}",
                    token[:position] + replacement + token[position + 1 :],
                )
    for position in [i for i, c in enumerate(token) if c == "."]:
        yield f"cut {position}", token[:position]
        yield f"cut {position + 1}", token[: position + 1]
        yield f"dot dropped {position}", token[:position] + token[position + 1 :]
        yield f"dot doubled {position}", token[:position] + "." + token[position:]
    for extra in ("=", "==", ".", ".e30", "\x00", "\t."):
        yield f"extend {extra!r}", token + extra
        yield f"prefix {extra!r}", extra + token
    for name, segment in (("header", header), ("payload", payload), ("signature", signature)):
        yield f"{name} padded", token.replace(segment, segment + "=" * (-len(segment) % 4 or 4), 1)
    yield "signature empty", f"{header}.{payload}."
    yield "signature of zeros", f"{header}.{payload}.{_b64(bytes(256))}"
    raw = base64.urlsafe_b64decode(signature + "==")
    yield "signature cut", f"{header}.{payload}.{_b64(raw[:-1])}"
    extended = raw + bytes(1)
    yield "signature extended", f"{header}.{payload}.{_b64(extended)}"
    yield "signature flipped", f"{header}.{payload}.{_b64(raw[:-1] + bytes([raw[-1] ^ 1]))}"


def _json_mutants(token: str) -> Iterator[tuple[str, str]]:
    """Header and payload rewritten (the recorded signature kept): alg swaps, repeated names."""
    header_segment, payload_segment, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_segment + "=="))
    header_text = json.dumps(header)
    payload_text = base64.urlsafe_b64decode(payload_segment + "==").decode()

    def with_header(text: str) -> str:
        return f"{_b64(text.encode())}.{payload_segment}.{signature}"

    for alg in ("none", "None", "HS256", "RS384", "RS512", "PS256", "ES256", "EdDSA", "rs256", ""):
        yield f"alg {alg!r}", with_header(json.dumps(header | {"alg": alg}))
    yield "alg repeated, none first", with_header('{"alg": "none", ' + header_text[1:])
    yield "alg repeated, none last", with_header(header_text[:-1] + ', "alg": "none"}')
    yield "alg missing", with_header(json.dumps({k: v for k, v in header.items() if k != "alg"}))
    yield "kid changed", with_header(json.dumps(header | {"kid": header["kid"][::-1]}))
    yield "kid missing", with_header(json.dumps({k: v for k, v in header.items() if k != "kid"}))
    yield "kid repeated", with_header('{"kid": "other", ' + header_text[1:])
    yield "crit", with_header(json.dumps(header | {"crit": ["exp"]}))
    yield "b64 false", with_header(json.dumps(header | {"b64": False, "crit": ["b64"]}))
    spaced = json.dumps(header, indent=1)
    assert spaced.encode() != base64.urlsafe_b64decode(header_segment + "==")
    yield "header same JSON, other spacing", with_header(spaced)
    forged = payload_text[:-1] + ', "x-ms-sgx-mrenclave": "' + "00" * 32 + '"}'
    yield "claim repeated, forged last", f"{header_segment}.{_b64(forged.encode())}.{signature}"
    forged = '{"x-ms-sgx-is-debuggable": true, ' + payload_text[1:]
    yield "claim repeated, forged first", f"{header_segment}.{_b64(forged.encode())}.{signature}"
    yield (
        "payload not an object",
        f"{header_segment}.{_b64(b'[' + payload_text.encode() + b']')}.{signature}",
    )
    yield "payload whitespace", f"{header_segment}.{_b64(b' ' + payload_text.encode())}.{signature}"


@pytest.mark.parametrize("index", [0, 3, 6])
def test_no_mutant_of_a_recorded_token_is_accepted(vectors: Path, index: int) -> None:
    recorded = Recorded(vectors, index)
    rng = random.Random(f"azure-token-{index}")
    found = []
    for label, token in [*_character_mutants(recorded.token, rng), *_json_mutants(recorded.token)]:
        verdict = mutant_verdict(lambda: recorded.appraise(token), recorded.baseline)  # noqa: B023
        if verdict != "refused":
            found.append(f"{label}: {verdict}")
    assert found == []


@pytest.mark.parametrize("space", [" ", "\n", "\r\n"])
def test_only_whitespace_around_a_token_is_unread(vectors: Path, space: str) -> None:
    """A file's trailing newline is not part of the compact token: stripped, nothing else."""
    recorded = Recorded(vectors, 0)
    for token in (recorded.token + space, space + recorded.token):
        assert mutant_verdict(lambda: recorded.appraise(token), recorded.baseline) == "accepted"  # noqa: B023
    header, rest = recorded.token.split(".", 1)
    assert (
        mutant_verdict(lambda: recorded.appraise(f"{header}.{space}{rest}"), recorded.baseline)
        == "refused"
    )


@pytest.mark.parametrize("index", [1, 7])
def test_the_held_data_is_bound(vectors: Path, index: int) -> None:
    """The enclave-held data the token's report data hashes, sent beside tokens that do not
    carry it (x-ms-runtime instead of x-ms-sgx-ehd): any change is refused."""
    recorded = Recorded(vectors, index)
    held = recorded.runtime_data
    rng = random.Random(f"azure-held-{index}")
    mutants = [held[:size] for size in (0, 1, len(held) // 2, len(held) - 1)]
    mutants += [held + b" ", held + b"\0", b" " + held]
    for position in rng.sample(range(len(held)), 40):
        flipped = bytearray(held)
        flipped[position] ^= 1 << rng.randrange(8)
        mutants.append(bytes(flipped))
    found = []
    for mutant in mutants:

        def appraise(mutant: bytes = mutant) -> AttestationResult:
            return recorded.appraise(recorded.token, mutant)

        verdict = mutant_verdict(appraise, recorded.baseline)
        if verdict != "refused":
            found.append(f"{mutant[:20]!r}: {verdict}")
    assert found == []


# --- recorded claims, re-signed -------------------------------------------------------------------


def _sign(maa: StandInMaa, claims: dict[str, Any]) -> str:
    """RS256 over the claims as given (PyJWT's encoder would refuse some of the mutants)."""
    header = _b64(json.dumps({"alg": "RS256", "kid": maa.key.kid, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = maa.key.private_key.sign(
        f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{header}.{payload}.{_b64(signature)}"


def _claims_case(
    vectors: Path, maa: StandInMaa, kind: str
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], AttestationResult]]:
    if kind == "sgx":
        recorded = Recorded(vectors, 0)
        claims = dict(recorded.claims) | {"iss": maa.url}
        validator: SgxTokenValidator | AciTokenValidator = SgxTokenValidator(maa.settings())
        endorsements = {"runtime_data": recorded.runtime_data}
        policy = SGX_POLICY
    else:
        token = vectors.joinpath(ACI_TOKEN).read_text().strip()
        recorded_claims = jwt.decode(token, options={"verify_signature": False})
        # This test-instance token has no compliance status; MAA's production policy adds it.
        claims = recorded_claims | {"iss": maa.url, "x-ms-compliance-status": "azure-compliant-uvm"}
        validator = AciTokenValidator(maa.settings())
        endorsements = {}
        policy = Policy(options={"hostdata": [claims["x-ms-sevsnpvm-hostdata"]]})

    def appraise(changed: dict[str, Any]) -> AttestationResult:
        return validator.appraise(
            Evidence(
                media_type=specs.MEDIA_TYPE,
                data=_sign(maa, changed).encode(),
                source=EvidenceSource(transport=Transport.FILE),
                endorsements=endorsements,
            ),
            binding=b.BindingContext.offline_context(),
            clock=FixedClock.from_unix(claims["iat"] + 60),
            policy=policy,
        )

    return claims, appraise


@pytest.mark.parametrize("kind", ["sgx", "aci"])
def test_which_signed_claims_are_read(vectors: Path, module_maa: StandInMaa, kind: str) -> None:
    """No claim mutation crashes; the claims no mutation affects are exactly the listed ones."""
    claims, appraise = _claims_case(vectors, module_maa, kind)
    baseline = appraise(claims)
    assert baseline.accepted, baseline.to_json()
    found, unaffected = [], set()
    for name, value in claims.items():
        verdicts = []
        for other in claim_variants(value):
            changed = {k: v for k, v in claims.items() if k != name}
            if other is not ...:
                changed[name] = other
            verdicts.append(mutant_verdict(lambda: appraise(changed), baseline))  # noqa: B023
        found += [
            f"{name}: {v}"
            for v in verdicts
            if v.startswith(("crashed", "no check")) or "without" in v
        ]
        if set(verdicts) == {"accepted"}:
            unaffected.add(name)
    assert found == []
    assert unaffected == set(UNREAD_CLAIMS[kind])

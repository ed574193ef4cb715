"""Recorded real MAA tokens (read through $ATLS_VECTORS only)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import jwt
import pytest

from atls_azure import specs
from atls_azure.testing.maa import StandInMaa
from atls_azure.token import verify_token
from atls_azure.trust import build_trust
from atls_azure.validators import AciTokenValidator, SgxTokenValidator, spki_from_jwk
from atls_core import binding as b
from atls_core.clock import FixedClock
from atls_core.errors import (
    BindingMismatch,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult
from atls_core.testing.conformance import other_spki

pytestmark = pytest.mark.vectors

SGX_DIR = "azure/azsdk-py-1.0.0-sgx-enclave-2021-07-01"
ACI_DIR = "azure/aci-sevsnp-token-no-jwks"
TOKENS = [f"token_{i}" for i in range(9)]
MRENCLAVE = "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"
MRSIGNER = "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"
ISSUERS = [
    "https://pylarryoattestationaad.wus.attest.azure.net",
    "https://pylarryoattestationiso.wus.attest.azure.net",
    "https://sharedwus.wus.attest.azure.net",
]
POLICY = Policy(
    reference_values={
        "mrenclave": ReferenceValue(accepted=[MRENCLAVE]),
        "mrsigner": ReferenceValue(accepted=[MRSIGNER]),
    }
)


@attrs.frozen
class Recorded:
    token: str
    keys_file: Path
    runtime_data: bytes
    claims: dict[str, Any]

    @property
    def at(self) -> FixedClock:
        return FixedClock.from_unix(self.claims["iat"] + 60)


def _recorded(root: Path, name: str) -> Recorded:
    folder = root / SGX_DIR
    (token_file,) = sorted(folder.glob(f"{name}_*.jwt"))
    keys = "sharedwus" if "sharedwus" in token_file.name else "fakeresource"
    request = json.loads((folder / f"request_{name.split('_')[1]}.json").read_text())
    data = request["runtimeData"]["data"]
    token = token_file.read_text().strip()
    return Recorded(
        token=token,
        keys_file=folder / f"jwks_recorded_for_{keys}.wus.attest.azure.net.json",
        runtime_data=base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)),
        claims=jwt.decode(token, options={"verify_signature": False}),
    )


def _validator(recorded: Recorded, **extra: Any) -> SgxTokenValidator:
    return SgxTokenValidator({"keys_file": str(recorded.keys_file), "issuers": ISSUERS, **extra})


def _evidence(recorded: Recorded, token: str | None = None) -> Evidence:
    return Evidence(
        media_type=specs.MEDIA_TYPE,
        data=(token or recorded.token).encode(),
        source=EvidenceSource(transport=Transport.FILE, location="recorded"),
        endorsements={"runtime_data": recorded.runtime_data},
    )


def _appraise(
    recorded: Recorded,
    evidence: Evidence | None = None,
    *,
    binding: b.BindingContext | None = None,
    validator: SgxTokenValidator | None = None,
) -> AttestationResult:
    """Appraise a recording (or ``evidence`` made from it) at its own time under POLICY,
    offline unless a ``binding`` is given."""
    return (validator or _validator(recorded)).appraise(
        evidence or _evidence(recorded),
        binding=binding or b.BindingContext.offline_context(),
        clock=recorded.at,
        policy=POLICY,
    )


def _recorded_key(recorded: Recorded) -> Any:
    return json.loads(recorded.runtime_data)["jwk"]


@pytest.mark.parametrize("name", TOKENS)
def test_recorded_token_verifies(vectors: Path, name: str) -> None:
    """Signature, issuer, times and claims, and report data = SHA-256(held data), offline."""
    recorded = _recorded(vectors, name)
    result = _appraise(recorded)
    assert result.accepted, result.to_json()
    assert not result.binding.verified
    assert result.binding.scheme == "maa-held-data"
    assert result.binding.freshness is b.Freshness.UNBOUND
    assert result.measurements["mrenclave"] == MRENCLAVE
    assert result.measurements["mrsigner"] == MRSIGNER
    assert result.measurements["product_id"] == "1"
    assert result.measurements["svn"] == "1"
    assert result.debug is False
    assert result.claims["issuer"] == recorded.claims["iss"]
    assert result.expires_at == dt.datetime.fromtimestamp(recorded.claims["exp"], dt.UTC)


@pytest.mark.parametrize("name", ["token_1", "token_4", "token_7"])
def test_recorded_held_data_must_be_what_the_report_data_hashes(vectors: Path, name: str) -> None:
    """These tokens carry x-ms-runtime, not the held data: the bytes that travel must hash right."""
    recorded = _recorded(vectors, name)
    assert "x-ms-sgx-ehd" not in recorded.claims
    altered = recorded.runtime_data.replace(b"{", b"{ ", 1)
    assert json.loads(altered) == json.loads(recorded.runtime_data)
    with pytest.raises(BindingMismatch) as info:
        _appraise(
            recorded, attrs.evolve(_evidence(recorded), endorsements={"runtime_data": altered})
        )
    assert info.value.check == "azure.sgx.report_data"


@pytest.mark.parametrize("name", TOKENS)
def test_recorded_held_key_is_no_tls_key(vectors: Path, name: str) -> None:
    """The SDK recording's held-data key is not a point on P-256, so no TLS key can match it."""
    recorded = _recorded(vectors, name)
    with pytest.raises(BindingMismatch) as info:
        spki_from_jwk(_recorded_key(recorded), check="test")
    assert info.value.check == "test"
    with pytest.raises(BindingMismatch) as info:
        _appraise(recorded, binding=b.BindingContext(spki_der=other_spki()))
    assert info.value.check == "azure.held_data.jwk"


@pytest.mark.parametrize("name", TOKENS)
def test_recorded_token_tampered_refused(vectors: Path, name: str) -> None:
    recorded = _recorded(vectors, name)
    header, payload, signature = recorded.token.split(".")
    claims = dict(recorded.claims) | {"x-ms-sgx-mrenclave": "00" * 32}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    for forged in (
        f"{header}.{forged_payload}.{signature}",
        f"{header}.{payload}.{signature[:-4]}AAAA",
    ):
        with pytest.raises(UntrustedChain) as info:
            _appraise(recorded, _evidence(recorded, forged))
        assert info.value.check == "jwt.signature"


def test_recorded_token_as_alg_none_refused(vectors: Path) -> None:
    recorded = _recorded(vectors, "token_0")
    _header, payload, _signature = recorded.token.split(".")
    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "kid": "rPtBGRWTlPmzs5u35L0QRD9WdymeKPRxteTeTlwN0Ec="}).encode()
    ).decode()
    with pytest.raises(UntrustedChain) as info:
        verify_token(
            f"{none_header.rstrip('=')}.{payload}.",
            build_trust({"keys_file": str(recorded.keys_file), "issuers": ISSUERS}),
            now=recorded.at.now(),
        )
    assert info.value.check == "jwt.alg"


def test_recorded_token_from_unconfigured_issuer_refused(vectors: Path) -> None:
    recorded = _recorded(vectors, "token_6")
    validator = SgxTokenValidator(
        {"keys_file": str(recorded.keys_file), "issuers": ISSUERS[:2]}  # not sharedwus
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(recorded, validator=validator)
    assert info.value.check == "jwt.iss"


def test_recorded_token_expired_and_early(vectors: Path) -> None:
    recorded = _recorded(vectors, "token_0")
    validator = _validator(recorded)
    for at, check in (
        (recorded.claims["exp"], "jwt.exp"),  # exp is strict, leeway or not
        (recorded.claims["exp"] + 31, "jwt.exp"),
        (recorded.claims["nbf"] - 31, "jwt.nbf"),
    ):
        with pytest.raises(StaleEvidence) as info:
            validator.appraise(
                _evidence(recorded),
                binding=b.BindingContext.offline_context(),
                clock=FixedClock.from_unix(at),
                policy=POLICY,
            )
        assert info.value.check == check


def test_recorded_max_age(vectors: Path) -> None:
    recorded = _recorded(vectors, "token_0")
    policy = attrs.evolve(POLICY, max_age=dt.timedelta(seconds=30))
    with pytest.raises(StaleEvidence) as info:
        _validator(recorded).appraise(
            _evidence(recorded),
            binding=b.BindingContext.offline_context(),
            clock=recorded.at,
            policy=policy,
        )
    assert info.value.check == "freshness.max_age"


# -- the ACI token without a recorded key --------------------------------------------


def _aci_token(root: Path) -> str:
    return (root / ACI_DIR / "sev-snp-jwt.txt").read_text().strip()


def test_aci_recorded_token_unknown_signing_key(vectors: Path) -> None:
    token = _aci_token(vectors)
    claims = jwt.decode(token, options={"verify_signature": False})
    keys = vectors / SGX_DIR / "jwks_recorded_for_sharedwus.wus.attest.azure.net.json"
    validator = AciTokenValidator({"keys_file": str(keys), "issuers": [claims["iss"]]})
    with pytest.raises(UntrustedChain) as info:
        validator.appraise(
            Evidence(
                media_type=specs.MEDIA_TYPE,
                data=token.encode(),
                source=EvidenceSource(transport=Transport.FILE),
            ),
            binding=b.BindingContext.offline_context(),
            clock=FixedClock.from_unix(claims["iat"] + 60),
            policy=Policy(allow_any_workload=True),
        )
    assert info.value.check == "jwt.kid"
    assert "unknown signing key" in str(info.value)


def test_aci_recorded_claims_map(vectors: Path, maa: StandInMaa) -> None:
    """The real token's claims, re-signed by the stand-in, map as recorded."""
    recorded = jwt.decode(_aci_token(vectors), options={"verify_signature": False})
    claims = dict(recorded) | {"iss": maa.url}
    validator = AciTokenValidator(maa.settings())
    result = validator.appraise(
        Evidence(
            media_type=specs.MEDIA_TYPE,
            data=maa.sign(claims).encode(),
            source=EvidenceSource(transport=Transport.FILE),
        ),
        binding=b.BindingContext.offline_context(),
        clock=FixedClock.from_unix(claims["iat"] + 60),
        policy=Policy(options={"hostdata": [recorded["x-ms-sevsnpvm-hostdata"]]}),
    )
    assert result.measurements["hostdata"] == recorded["x-ms-sevsnpvm-hostdata"]
    assert result.measurements["launch_measurement"] == recorded["x-ms-sevsnpvm-launchmeasurement"]
    assert result.measurements["idkeydigest"] == recorded["x-ms-sevsnpvm-idkeydigest"]
    assert result.measurements["microcode_svn"] == str(recorded["x-ms-sevsnpvm-microcode-svn"])
    assert result.debug is False
    assert result.tee_type == "sev-snp"
    # This test-instance token carries no x-ms-compliance-status: not an ACI UVM verdict.
    assert not result.accepted
    assert [f.check for f in result.failures] == ["azure.compliance_status"]


def test_aci_recorded_token_without_runtime_is_malformed_when_bound(
    vectors: Path, maa: StandInMaa
) -> None:
    recorded = jwt.decode(_aci_token(vectors), options={"verify_signature": False})
    claims = dict(recorded) | {"iss": maa.url}
    with pytest.raises((MalformedEvidence, BindingMismatch)):
        AciTokenValidator(maa.settings()).appraise(
            Evidence(
                media_type=specs.MEDIA_TYPE,
                data=maa.sign(claims).encode(),
                source=EvidenceSource(transport=Transport.FILE),
            ),
            binding=b.BindingContext(spki_der=other_spki(), nonce=b.new_nonce()),
            clock=FixedClock.from_unix(claims["iat"] + 60),
            policy=Policy(allow_any_workload=True),
        )

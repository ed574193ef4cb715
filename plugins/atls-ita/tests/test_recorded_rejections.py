"""Recorded tokens that must be rejected.

* Real ITA tokens whose signing keys were never recorded: under any configured
  key set that lacks their key, "unknown signing key" -- or, for tokens from
  another issuer (the older "Amber" service), refused on ``iss`` before any key
  is looked up or fetched.
* Intel's Go client's test-signed tokens + test JWKS: rejected under a root
  that is not their development root; rejected without any root (configuration
  error); and even under their own development root, none verifies.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError, ConfigurationError, UntrustedChain
from atls_core.policy import Policy
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import evidence_of, unverified_claims
from atls_ita.validator import SGX_SPEC, TDX_SPEC, ItaValidator

REAL = [
    ("ita/tokens-real-no-jwks/kbs_service_key_transfer_test_go_TDX_fe2cce24.jwt", TDX_SPEC),
    ("ita/tokens-real-no-jwks/kbs_service_key_transfer_test_go_SGX_d7ec7def.jwt", SGX_SPEC),
    ("ita/tokens-real-no-jwks/kbs_docs_openapi_yml_SGX_d7ec7def.jwt", SGX_SPEC),
    ("ita/tokens-real-no-jwks/kbs_docs_openapi_yml_SGX_3c2418b5.jwt", SGX_SPEC),
    ("ita/tokens-real-no-jwks/amber_sgx_token_tdxcli_verify_test_0.jwt", SGX_SPEC),
]
GO = "ita/neg-test-signed-goclient/"
GO_TOKENS = [f"{GO}go_test_token_{n}.jwt" for n in range(5)]
GO_CHAIN_VALID = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # inside the Go test chain's validity


def _appraise(validator: ItaValidator, token: str, when: dt.datetime) -> None:
    validator.appraise(
        evidence_of(token),
        binding=BindingContext.offline_context(),
        clock=FixedClock(when),
        policy=Policy(),
    )


@pytest.mark.vectors
@pytest.mark.parametrize(("name", "spec"), REAL)
def test_real_tokens_are_unknown_signing_keys(
    vectors: Callable[[str], Path], ita: StandInIta, tmp_path: Path, name: str, spec: object
) -> None:
    token = vectors(name).read_text()
    when = dt.datetime.fromtimestamp(unverified_claims(token)["iat"] + 1, dt.UTC)
    validator = ItaValidator(
        {
            "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
        },
        spec=spec,  # type: ignore[arg-type]
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, token, when)
    if info.value.check == "jwt.iss":
        assert info.value.actual == unverified_claims(token)["iss"]
    else:
        assert info.value.check == "jwt.kid"
        assert "unknown signing key" in str(info.value)


@pytest.mark.vectors
@pytest.mark.parametrize("name", [n for n, _ in REAL])
def test_real_tokens_with_a_live_key_source_refresh_once_then_unknown(
    vectors: Callable[[str], Path], ita: StandInIta, tmp_path: Path, name: str
) -> None:
    token = vectors(name).read_text()
    when = dt.datetime.fromtimestamp(unverified_claims(token)["iat"] + 1, dt.UTC)
    validator = ItaValidator(ita.validator_settings(tmp_path / "root.pem"), spec=SGX_SPEC)
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, token, when)
    if info.value.check == "jwt.iss":  # another issuer: no key is fetched for it
        assert ita.requests["/certs"] == 0
    else:
        assert "unknown signing key" in str(info.value)
        assert ita.requests["/certs"] == 1


def _go_settings(vectors: Callable[[str], Path], root: Path) -> dict[str, str]:
    return {"jwks_file": str(vectors(GO + "go_test_jwks.json")), "root_ca": str(root)}


@pytest.mark.vectors
@pytest.mark.parametrize("name", GO_TOKENS)
def test_go_test_tokens_are_rejected_under_another_root(
    vectors: Callable[[str], Path], ita: StandInIta, tmp_path: Path, name: str
) -> None:
    validator = ItaValidator(_go_settings(vectors, ita.write_root(tmp_path / "root.pem")))
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, vectors(name).read_text(), GO_CHAIN_VALID)
    assert info.value.check in ("ita.x5c.root", "jwt.kid", "jwt.iss")


@pytest.mark.vectors
def test_go_test_tokens_need_a_configured_root(vectors: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ItaValidator({"jwks_file": str(vectors(GO + "go_test_jwks.json"))})
    assert "root_ca" in str(info.value)


@pytest.mark.vectors
@pytest.mark.parametrize("name", GO_TOKENS)
def test_go_test_tokens_fail_even_under_their_own_development_root(
    vectors: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    """Trusting Intel's development root (taken from the recorded JWKS at run time)."""
    jwks = json.loads(vectors(GO + "go_test_jwks.json").read_text())
    root_der = base64.b64decode(jwks["keys"][0]["x5c"][-1])
    root = x509.load_der_x509_certificate(root_der)
    assert "Development" in root.subject.rfc4514_string()
    (tmp_path / "dev-root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    validator = ItaValidator(_go_settings(vectors, tmp_path / "dev-root.pem"))
    with pytest.raises(ATLSError) as info:
        _appraise(validator, vectors(name).read_text(), GO_CHAIN_VALID)
    assert info.value.check in ("jwt.signature", "jwt.kid", "jwt.iss")

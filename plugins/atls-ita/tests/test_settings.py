"""ITA settings on the core's one set of rules; JWKs and claims through the core's decoders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from atls_core.errors import ConfigurationError, MalformedEvidence, UntrustedChain
from atls_core.secret import Secret
from atls_core.settings import setting_names
from atls_ita.claims import map_claims
from atls_ita.settings import (
    VALIDATOR_SETTINGS,
    ItaValidatorSettings,
    api_key_setting,
    api_url_setting,
)
from atls_ita.specs import SGX_SPEC, TDX_SPEC
from atls_ita.testing.pki import StandInPki
from atls_ita.trust import check_jwk_matches

TOKEN = "hunter2-token"


@pytest.fixture(scope="module")
def pki() -> StandInPki:
    return StandInPki.generate(algorithms=("PS384", "RS256"))


@pytest.fixture
def root(pki: StandInPki, tmp_path: Path) -> str:
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root_pem)
    return str(path)


def _refusal(settings: dict[str, Any]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        ItaValidatorSettings.from_settings(settings)
    assert info.value.check == "config.settings"
    return info.value


def test_the_specs_accept_what_the_class_declares() -> None:
    assert setting_names(ItaValidatorSettings) == VALIDATOR_SETTINGS
    assert TDX_SPEC.settings == SGX_SPEC.settings == VALIDATOR_SETTINGS


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"algorithms": "PS384"}, "settings.algorithms"),  # a bare string is not a list
        ({"algorithms": []}, "settings.algorithms"),
        ({"jwks_url": "https://a/certs", "algorithms": ["HS256"]}, "settings.algorithms"),
        ({"jwks_timeout": "5"}, "settings.jwks_timeout"),  # text is not a number
        ({"crl_timeout": 0}, "settings.crl_timeout"),
        ({"leeway": 600.5}, "settings.leeway"),
        ({"check_crl": "true"}, "settings.check_crl"),
        ({"issuer": ""}, "settings.issuer"),
        ({"jwks_url": "http://127.0.0.1:1/certs"}, "allow_http_loopback"),  # needs the knob
        ({"jwks_url": "http://ita.example/certs", "allow_http_loopback": True}, "loopback"),
        ({"portal_url": "https://ita.example#x"}, "settings.portal_url"),
        ({"jwks_url": "https://a/certs", "jwks_file": __file__}, "exactly one"),
        ({"jwks_file": "/nonexistent/jwks.json"}, "settings.jwks_file"),
        ({"jwks_url": "https://a/certs", "root_ca": "/nonexistent/root.pem"}, "root_ca"),
    ],
)
def test_settings_follow_the_core_rules(root: str, edit: dict[str, Any], named: str) -> None:
    assert named in str(_refusal({"root_ca": root, **edit}))


def test_what_the_settings_read(root: str) -> None:
    read = ItaValidatorSettings.from_settings(
        {
            "root_ca": root,
            "portal_url": "http://localhost:9/",
            "allow_http_loopback": True,
            "algorithms": ["PS384"],
            "leeway": 0,
        }
    )
    assert read.keys_url == "http://localhost:9/certs"
    assert read.algorithms == ("PS384",)
    assert read.leeway == dt.timedelta(0)
    assert read.root_ca == Path(root)


def test_a_missing_root_says_why_it_is_required() -> None:
    error = _refusal({"jwks_url": "https://a/certs"})
    assert "settings.root_ca is required" in str(error)
    assert "ships no Intel Trust Authority root" in str(error)


def test_service_urls_are_named_without_their_credentials(root: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        api_url_setting({"api_url": f"http://reader:{TOKEN}@ita.example/v1?sig={TOKEN}"})
    assert TOKEN not in str(info.value)
    assert info.value.actual == "http://ita.example:80/***"
    error = _refusal(
        {"root_ca": root, "jwks_url": Secret(f"https://{TOKEN}@ita.example#f", "$env URL")}
    )
    assert TOKEN not in str(error)
    assert "$env URL" in str(error)


def test_the_issuer_api_url_is_https_unless_a_test_allows_loopback_http() -> None:
    """The API key travels on this URL: http only to a loopback stand-in, and only when asked."""
    assert api_url_setting({}) == "https://api.trustauthority.intel.com"
    stand_in = "http://127.0.0.1:8/x"
    with pytest.raises(ConfigurationError) as info:
        api_url_setting({"api_url": stand_in})
    assert info.value.check == "config.settings"
    assert "allow_http_loopback = true" in str(info.value)
    assert api_url_setting({"api_url": stand_in, "allow_http_loopback": True}) == stand_in
    for refused in (
        {"api_url": "http://ita.example/x", "allow_http_loopback": True},  # not loopback
        {"api_url": stand_in, "allow_http_loopback": "true"},  # text is not a flag
        {"api_url": 5},
    ):
        with pytest.raises(ConfigurationError) as info:
            api_url_setting(refused)
        assert info.value.check == "config.settings"


def test_the_api_key_is_a_secret_only() -> None:
    key = Secret(TOKEN, "$env ITA_API_KEY")
    assert api_key_setting({"api_key": key, "api_url": "https://x"}) is key
    for settings in ({}, {"api_key": TOKEN}):
        with pytest.raises(ConfigurationError) as info:
            api_key_setting(settings)
        assert '"$env" = "ITA_API_KEY"' in str(info.value)
        assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "edit",
    [
        {"d": "AQAB"},  # private key material in a published key set
        {"n": "not base64url!"},
        {"kty": "EC", "crv": "P-256"},
        {"e": 3},
    ],
)
def test_a_bad_jwk_is_refused(pki: StandInPki, edit: dict[str, Any]) -> None:
    with pytest.raises(UntrustedChain) as info:
        check_jwk_matches({**pki.jwk("PS384"), **edit}, pki.signers["PS384"].certificate)
    assert info.value.check == "ita.key.jwk"


def test_the_jwk_must_be_its_certificates_key(pki: StandInPki) -> None:
    leaf = pki.signers["PS384"].certificate
    assert check_jwk_matches(pki.jwk("PS384"), leaf).public_numbers() == (
        pki.signers["PS384"].key.public_key().public_numbers()
    )
    with pytest.raises(UntrustedChain, match="not the key") as info:
        check_jwk_matches(pki.jwk("RS256"), leaf)
    assert info.value.check == "ita.key.jwk"


def _v2(held: str) -> dict[str, object]:
    return {
        "ver": "2.0.0",
        "tdx": {"attester_type": "TDX", "attester_held_data": held, "tdx_mrtd": "ab" * 48},
    }


def test_url_safe_claims_are_decoded_strictly() -> None:
    assert map_claims(_v2("aG-sZA"), tee="tdx").held_data == b"ho\xacd"
    with pytest.raises(MalformedEvidence) as info:
        map_claims(_v2("aG-sZB"), tee="tdx")  # the same bytes, not canonically written
    assert info.value.check == "ita.claims.attester_held_data"

"""MAA token settings on the core's one set of rules, and MAA JWKs read by the core's reader."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from atls_azure.settings import MaaTokenSettings
from atls_azure.specs import SPECS
from atls_azure.testing.maa import SigningKey
from atls_azure.trust import build_trust, public_key_from_jwk
from atls_core.errors import ConfigurationError, UntrustedChain
from atls_core.secret import Secret
from atls_core.selection import select_validator
from atls_core.settings import setting_names
from atls_core.testing.plugins import assert_tests_only

INSTANCE = "https://x.attest.azure.net"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _refusal(settings: dict[str, Any]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        build_trust(settings)
    assert info.value.check == "config.settings"
    return info.value


def test_every_spec_accepts_exactly_the_declared_token_settings() -> None:
    for spec in SPECS:
        assert set(setting_names(MaaTokenSettings)) <= set(spec.settings)
    assert "allow_http_loopback" in setting_names(MaaTokenSettings)


STAND_IN = {"instances": ["http://127.0.0.1:1"], "allow_http_loopback": True}
"""Keys of a loopback stand-in over plain http: what only tests may configure."""


@pytest.mark.parametrize("validator_id", [spec.id for spec in SPECS])
def test_http_on_loopback_is_a_fenced_test_setting(validator_id: str) -> None:
    """One flag must not let a production configuration trust an http key endpoint."""
    spec = next(s for s in SPECS if s.id == validator_id)
    assert spec.test_settings == ("allow_http_loopback",)
    assert_tests_only(validator_id, STAND_IN, ("allow_http_loopback",))
    production = {**STAND_IN, "instances": ["https://x.attest.azure.net"]}
    production["allow_http_loopback"] = False
    assert select_validator(validator_id, settings=production).test_knobs == ()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"instances": [INSTANCE], "timeout": "5"}, "settings.timeout"),  # text is not a number
        ({"instances": [INSTANCE], "leeway": "30"}, "settings.leeway"),
        ({"instances": [INSTANCE], "leeway": True}, "settings.leeway"),
        ({"instances": [INSTANCE], "timeout": 0}, "settings.timeout"),
        ({"instances": [INSTANCE], "timeout": float("nan")}, "settings.timeout"),
        ({"instances": [INSTANCE], "min_refresh_interval": -1}, "settings.min_refresh_interval"),
        ({"instances": [INSTANCE], "allow_http_loopback": "true"}, "allow_http_loopback"),
        ({"instances": INSTANCE}, "settings.instances"),  # a bare string is not a list
        ({"instances": [INSTANCE, 5]}, "settings.instances[1]"),
        ({"instances": ["https://user:pw@x.attest.azure.net"]}, "settings.instances[0]"),
        ({"keys": {"keys": []}, "issuers": ["http://127.0.0.1:1"]}, "settings.issuers[0]"),
        ({"keys": {"keys": []}, "keys_file": __file__, "issuers": [INSTANCE]}, "not both"),
        ({"keys": [], "issuers": [INSTANCE]}, "settings.keys"),
    ],
)
def test_settings_follow_the_core_rules(settings: dict[str, Any], named: str) -> None:
    assert named in str(_refusal(settings))


def test_refusals_do_not_show_credentials_or_secrets() -> None:
    error = _refusal({"instances": ["https://user:hunter2@x.attest.azure.net/path?sig=hunter2"]})
    assert "hunter2" not in str(error)
    error = _refusal({"instances": [Secret("http://hunter2.example", "$env MAA")]})
    assert "hunter2" not in str(error)
    assert "$env MAA" in str(error)


def test_http_on_loopback_needs_the_test_knob_for_issuers_too() -> None:
    trust = build_trust(
        {"keys": {"keys": []}, "issuers": ["http://127.0.0.1:1/"], "allow_http_loopback": True}
    )
    assert list(trust.issuers) == ["http://127.0.0.1:1"]
    error = _refusal(
        {"keys": {"keys": []}, "issuers": ["http://maa.example"], "allow_http_loopback": True}
    )
    assert "loopback" in str(error)


def test_instances_are_origins_and_the_leeway_a_duration(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": []}))
    trust = build_trust(
        {
            "instances": ["HTTPS://X.Attest.Azure.Net/"],
            "keys_file": Secret(str(keys), "$env KEYS"),
            "issuers": [INSTANCE],
            "leeway": 12,
            "wire": "not ours to check",  # a validator's own setting passes through
        }
    )
    assert list(trust.issuers) == [INSTANCE]
    assert trust.leeway == dt.timedelta(seconds=12)


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def signing() -> SigningKey:
    return SigningKey("maa-test")


def _with_numbers(key: SigningKey, **extra: Any) -> dict[str, Any]:
    numbers = key.private_key.public_key().public_numbers()
    return {**key.jwk, "n": _b64url(numbers.n), "e": _b64url(numbers.e), **extra}


def test_a_jwk_with_numbers_and_certificate_must_agree(signing: SigningKey) -> None:
    key = public_key_from_jwk(_with_numbers(signing), now=NOW)
    assert key.public_numbers() == signing.private_key.public_key().public_numbers()
    numbers_only = {k: v for k, v in _with_numbers(signing).items() if k != "x5c"}
    assert public_key_from_jwk(numbers_only, now=NOW).key_size == 2048
    other = SigningKey("other")
    mixed = {**_with_numbers(other), "x5c": signing.jwk["x5c"]}
    with pytest.raises(UntrustedChain, match="disagree") as info:
        public_key_from_jwk(mixed, now=NOW)
    assert info.value.check == "azure.key"


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        ({"d": "AQAB"}, "azure.key"),  # private key material
        ({"n": "not base64url!"}, "azure.key"),
        ({"e": 65537}, "azure.key"),
        ({"alg": "RS384"}, "azure.key_use"),
        ({"use": "enc"}, "azure.key_use"),
        ({"kty": "EC"}, "azure.key_type"),
        ({"x5c": ["!!not base64!!"]}, "azure.key"),
    ],
)
def test_malformed_jwks_are_refused(signing: SigningKey, edit: dict[str, Any], check: str) -> None:
    with pytest.raises(UntrustedChain) as info:
        public_key_from_jwk(_with_numbers(signing, **edit), now=NOW)
    assert info.value.check == check

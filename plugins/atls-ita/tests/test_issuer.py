"""The passport-model issuer against the stand-in ITA (real HTTP on loopback).

The TDX quote comes from atls-tdx's ``configfs_tsm_quote`` over an emulated
configfs-tsm directory whose "quote" is arbitrary bytes embedding the report
data: the stand-in ITA does not verify quotes, it only checks that the report
data the issuer asked for follows ITA's rule.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import BindingContext, Freshness, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.config import ATLSConfig, Secret
from atls_core.errors import ATLSError, CollateralUnavailable, ConfigurationError
from atls_core.policy import Policy
from atls_core.result import Status
from atls_core.testing.tsm import EmulatedConfigfsTsm
from atls_ita.issuer import ItaIssuer
from atls_ita.oids import ITA_TOKEN_OID
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import new_spki
from atls_ita.validator import ItaValidator

API_KEY = "ita-test-api-key-6f1d"


@pytest.fixture
def tsm(tmp_path: Path) -> EmulatedConfigfsTsm:
    root = tmp_path / "tsm"
    root.mkdir()
    return EmulatedConfigfsTsm(
        root, lambda report_data, _privlevel: b"EMULATED-TDX-QUOTE:" + report_data
    )


STAND_IN = {"allow_http_loopback": True}
"""The stand-in ITA answers plain http on loopback: a tests-only issuer setting."""


def _issuer(ita: StandInIta, tsm: EmulatedConfigfsTsm, **extra: Any) -> ItaIssuer:
    settings = {
        **STAND_IN,
        "api_url": ita.url,
        "api_key": Secret(API_KEY, "test"),
        "configfs_root": str(tsm.root),
        **extra,
    }
    return ItaIssuer(settings, fs=tsm)


def test_issue_then_appraise_end_to_end(
    ita: StandInIta, tsm: EmulatedConfigfsTsm, validator: ItaValidator, pinned: Policy
) -> None:
    spki, nonce = new_spki(), new_nonce()
    evidence = _issuer(ita, tsm).issue(report_data_for("atls-v1", spki_der=spki, nonce=nonce))
    assert evidence.source.oid == ITA_TOKEN_OID
    assert ita.requests["/appraisal/v2/nonce"] == 1
    assert ita.requests["/appraisal/v2/attest"] == 1
    assert len(tsm.created) == 1
    assert tsm.removed == tsm.created
    result = validator.appraise(
        evidence,
        binding=BindingContext(spki_der=spki, nonce=nonce),
        clock=FixedClock(ita.clock.now() + dt.timedelta(seconds=1)),
        policy=pinned,
    )
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.freshness is Freshness.NONCE


def test_request_follows_itas_v2_api(ita: StandInIta, tsm: EmulatedConfigfsTsm) -> None:
    report_data = report_data_for("atls-v1", spki_der=new_spki(), nonce=new_nonce())
    _issuer(ita, tsm, policy_ids=["p-1"], token_signing_alg="RS256").issue(report_data)
    body = ita.last_attest_body
    assert body is not None
    assert set(body["tdx"]) == {"quote", "runtime_data", "verifier_nonce"}
    assert set(body["tdx"]["verifier_nonce"]) == {"val", "iat", "signature"}
    assert body["policy_ids"] == ["p-1"]
    assert body["token_signing_alg"] == "RS256"


def test_wrong_report_data_rule_is_refused_by_the_service(ita: StandInIta, tmp_path: Path) -> None:
    """A TEE that quotes other report data than ITA's rule gets no token."""
    root = tmp_path / "tsm"
    root.mkdir()
    wrong = EmulatedConfigfsTsm(root, lambda _rd, _privlevel: b"EMULATED-TDX-QUOTE:" + bytes(64))
    issuer = ItaIssuer(
        {
            **STAND_IN,
            "api_url": ita.url,
            "api_key": Secret(API_KEY, "test"),
            "configfs_root": str(root),
        },
        fs=wrong,
    )
    with pytest.raises(CollateralUnavailable) as info:
        issuer.issue(bytes(64))
    assert info.value.actual == 400


def test_the_api_key_never_leaks(
    ita: StandInIta,
    tsm: EmulatedConfigfsTsm,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read through $env and $file indirection; absent from repr, logs and errors."""
    (tmp_path / "key").write_text(API_KEY + "\n")
    config = ATLSConfig.from_mapping(
        {
            "hosts": {
                "env.example": {
                    "validator": "ita.tdx",
                    "settings": {"api_key": {"$env": "ITA_KEY_FOR_TEST"}},
                },
                "file.example": {
                    "validator": "ita.tdx",
                    "settings": {"api_key": {"$file": str(tmp_path / "key")}},
                },
            }
        },
        environ={"ITA_KEY_FOR_TEST": API_KEY},
        check=False,  # only the $env/$file reader is wanted: these are issuer settings
    )
    caplog.set_level(logging.DEBUG)
    for host in ("env.example", "file.example"):
        secret = config.rule_for(host).settings["api_key"]
        assert isinstance(secret, Secret)
        issuer = ItaIssuer(
            {**STAND_IN, "api_url": ita.url, "api_key": secret, "configfs_root": str(tsm.root)},
            fs=tsm,
        )
        assert API_KEY not in repr(issuer)
        issuer.issue(bytes(64))
    wrong = ItaIssuer(
        {
            **STAND_IN,
            "api_url": ita.url,
            "api_key": Secret(API_KEY + "-wrong", "test"),
            "configfs_root": str(tsm.root),
        },
        fs=tsm,
    )
    with pytest.raises(ATLSError) as info:
        wrong.issue(bytes(64))
    assert info.value.actual == 401
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)
    assert API_KEY not in repr(wrong)
    assert any("appraisal/v2" in r.getMessage() for r in caplog.records), "logging was on"
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert API_KEY not in caplog.text


@pytest.mark.parametrize("given", [API_KEY, None])
def test_api_key_must_come_by_indirection_and_the_refusal_says_how(
    ita: StandInIta, tsm: EmulatedConfigfsTsm, given: str | None
) -> None:
    settings: dict[str, Any] = {**STAND_IN, "api_url": ita.url}
    if given is not None:
        settings["api_key"] = given
    with pytest.raises(ConfigurationError) as info:
        ItaIssuer(settings, fs=tsm)
    message = str(info.value)
    assert API_KEY not in message
    assert info.value.check == "config.settings"
    assert 'api_key = { "$env" = "ITA_API_KEY" }' in message
    assert 'api_key = { "$file" = ' in message
    assert "atls_core.Secret(value, " in message


@pytest.mark.parametrize(
    "bad",
    [
        {"api_url": "http://ita.example"},
        {"api_url": "http://ita.example", **STAND_IN},  # the knob is for loopback only
        {"token_signing_alg": "HS256"},
        {"policy_ids": "p-1"},
        {"timeout": 0},
        {"bogus": True},
    ],
)
def test_bad_issuer_settings(ita: StandInIta, bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ItaIssuer({**STAND_IN, "api_url": ita.url, "api_key": Secret(API_KEY, "test"), **bad})


def test_http_on_loopback_needs_the_tests_only_setting(ita: StandInIta) -> None:
    """The API key travels on api_url: plain http only when a test says so, as for validators."""
    with pytest.raises(ConfigurationError) as info:
        ItaIssuer({"api_url": ita.url, "api_key": Secret(API_KEY, "test")})
    assert info.value.check == "config.settings"
    assert "settings.api_url" in str(info.value)
    assert "allow_http_loopback = true" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        ItaIssuer(
            {"api_url": ita.url, "api_key": Secret(API_KEY, "test"), "allow_http_loopback": "yes"}
        )
    assert "settings.allow_http_loopback" in str(info.value)


def test_service_down_is_collateral_unavailable(tsm: EmulatedConfigfsTsm) -> None:
    with StandInIta(api_key=API_KEY) as gone:
        url = gone.url
    issuer = ItaIssuer(
        {
            **STAND_IN,
            "api_url": url,
            "api_key": Secret(API_KEY, "t"),
            "configfs_root": str(tsm.root),
        },
        fs=tsm,
    )
    with pytest.raises(CollateralUnavailable) as info:
        issuer.issue(bytes(64))
    assert info.value.check == "ita.api.fetch"


def test_report_data_must_be_64_bytes(ita: StandInIta, tsm: EmulatedConfigfsTsm) -> None:
    with pytest.raises(ConfigurationError):
        _issuer(ita, tsm).issue(b"short")

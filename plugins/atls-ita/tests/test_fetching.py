"""ITA's network reads use the core's bounded fetch: one deadline, no redirects, no leaks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from atls_core.errors import CollateralUnavailable, ConfigurationError, ServiceUnavailable
from atls_core.secret import Secret
from atls_core.testing.httpd import ScriptedServer
from atls_ita.client import ItaClient
from atls_ita.trust import CrlCache
from atls_ita.validator import ItaValidator

API_KEY = "ita-fetch-test-key-0c2a"
TOKEN = "jwks-url-t0ken-77b1"


def test_api_call_ends_at_its_deadline(scripted_server: ScriptedServer) -> None:
    """A dripping API used to hold the attester for many times its timeout."""
    scripted_server.drip = True
    client = ItaClient(api_url=scripted_server.url, api_key=Secret(API_KEY, "test"), timeout=1)
    with pytest.raises(ServiceUnavailable) as info:
        client.nonce()
    assert info.value.check == "ita.api.fetch"
    assert info.value.phase == "timeout"
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert API_KEY not in text


def test_api_redirect_is_refused_so_the_key_never_follows(
    scripted_server: ScriptedServer, redirect_target: ScriptedServer
) -> None:
    scripted_server.redirect_to = redirect_target.url + "/appraisal/v2/nonce"
    client = ItaClient(api_url=scripted_server.url, api_key=Secret(API_KEY, "test"), timeout=5)
    with pytest.raises(CollateralUnavailable) as info:
        client.nonce()
    assert isinstance(info.value, ServiceUnavailable)
    assert info.value.phase == "redirect"
    assert redirect_target.requests == 0


def test_crl_fetch_is_bounded_and_never_redirected(scripted_server: ScriptedServer) -> None:
    now = dt.datetime.now(dt.UTC)
    scripted_server.drip = True
    with pytest.raises(ServiceUnavailable) as info:
        CrlCache(timeout=1)._crl(scripted_server.url + "/crl/root.crl", now)
    assert (info.value.check, info.value.phase) == ("ita.crl.fetch", "timeout")
    scripted_server.drip = False
    scripted_server.redirect_to = scripted_server.url + "/elsewhere.crl"
    with pytest.raises(ServiceUnavailable) as info:
        CrlCache(timeout=5)._crl(scripted_server.url + "/crl/root.crl", now)
    assert info.value.phase == "redirect"


def test_jwks_url_secret_is_not_in_configuration_errors(tmp_path: Path) -> None:
    url = Secret(f"http://reader:{TOKEN}@ita.example/certs?sig={TOKEN}", "test")
    with pytest.raises(ConfigurationError) as info:
        ItaValidator({"jwks_url": url, "root_ca": str(tmp_path / "root.pem")})
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert TOKEN not in text

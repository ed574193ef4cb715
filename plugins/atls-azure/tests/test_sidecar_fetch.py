"""The SKR sidecar request uses the core's bounded fetch: one deadline, no redirects."""

from __future__ import annotations

import json

import pytest

from atls_azure.issuer import AciIssuer
from atls_core.errors import ConfigurationError, ServiceUnavailable
from atls_core.secret import Secret
from atls_core.testing.httpd import ScriptedServer

TOKEN = "sidecar-t0ken-41d9"


def test_sidecar_request_ends_at_its_deadline(scripted_server: ScriptedServer) -> None:
    scripted_server.drip = True
    issuer = AciIssuer({"sidecar_url": scripted_server.url, "maa_endpoint": "x", "timeout": 1})
    with pytest.raises(ServiceUnavailable) as info:
        issuer.token_for(b"spki", bytes(32))
    assert (info.value.check, info.value.phase) == ("azure.sidecar", "timeout")


def test_sidecar_redirect_is_refused(
    scripted_server: ScriptedServer, redirect_target: ScriptedServer
) -> None:
    """urlopen used to follow it, with the attestation request, to wherever it pointed."""
    scripted_server.redirect_to = redirect_target.url + "/attest/maa"
    issuer = AciIssuer({"sidecar_url": scripted_server.url, "maa_endpoint": "x"})
    with pytest.raises(ServiceUnavailable) as info:
        issuer.token_for(b"spki", bytes(32))
    assert info.value.phase == "redirect"
    assert redirect_target.requests == 0


def test_sidecar_url_credentials_are_not_shown(scripted_server: ScriptedServer) -> None:
    scripted_server.status = 500
    url = Secret(f"http://op:{TOKEN}@127.0.0.1:{scripted_server.port}", "test")
    issuer = AciIssuer({"sidecar_url": url, "maa_endpoint": "x"})
    with pytest.raises(ServiceUnavailable) as info:
        issuer.token_for(b"spki", bytes(32))
    assert info.value.phase == "status"
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert TOKEN not in text


@pytest.mark.parametrize("timeout", [0, -1, "soon", True, float("nan")])
def test_timeout_must_be_positive(timeout: object) -> None:
    with pytest.raises(ConfigurationError):
        AciIssuer({"maa_endpoint": "x", "timeout": timeout})

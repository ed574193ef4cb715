"""``ValidatorSpec.sni_form``: the nonce travels in SNI in the form the validator's servers read."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import NamedTuple

import attrs
import pytest

from atls_core import binding as b
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.interfaces import ValidatorSpec
from atls_core.policy import Policy
from atls_core.selection import SelectedValidator
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, tls_connect
from atls_core.tls import ATLSContext, result_of

NONCE = bytes(range(32))


def _base64_line_only(server_name: str | None) -> bytes | None:
    """A server that reads nothing but the base64-line form (as atls-python's servers)."""
    try:
        return base64.b64decode((server_name or "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def _with_form(selected: SelectedValidator, form: str) -> SelectedValidator:
    validator = selected.validator
    validator.spec = attrs.evolve(validator.spec, sni_form=form)  # type: ignore[misc]
    return selected


def test_base64_line_is_the_whole_name_with_its_newline() -> None:
    name = b.encode_sni(NONCE, "api.example.com", form="base64-line")
    assert name == base64.encodebytes(NONCE).decode()
    assert name.endswith("=\n")
    assert "api.example.com" not in name
    assert b.encode_sni(NONCE, "api.example.com") == b.encode_sni(
        NONCE, "api.example.com", form="atls-label"
    )


def test_unknown_form_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        b.encode_sni(NONCE, "h", form="base64")
    assert info.value.check == "binding.sni_form"
    spec = SimulatedTEE().selected().spec
    assert spec.sni_form == "atls-label"
    with pytest.raises(ValueError, match="unknown sni_form"):
        ValidatorSpec(**{**attrs.asdict(spec, recurse=False), "sni_form": "base64"})


def _client(tee: SimulatedTEE, form: str) -> ATLSContext:
    selected = tee.selected(policy=Policy(require_nonce=True))
    return ATLSContext.for_validator(_with_form(selected, form))


class Base64OnlyServer(NamedTuple):
    tee: SimulatedTEE
    certificates: AttestedCertificates
    server: HTTPSServer


@pytest.fixture
def base64_only() -> Iterator[Base64OnlyServer]:
    """A server of the simulated TEE that reads a nonce from SNI in the base64-line form only."""
    tee = SimulatedTEE()
    certificates = tee.certificates(nonce_from_sni=_base64_line_only)
    with HTTPSServer(certificates.server_context()) as server:
        yield Base64OnlyServer(tee, certificates, server)


def test_client_sends_the_base64_line_form_its_spec_names(base64_only: Base64OnlyServer) -> None:
    context = _client(base64_only.tee, "base64-line")
    with tls_connect(context, base64_only.server.port, "svc.example") as tls:
        result = result_of(tls)
        assert result is not None
        nonce = bytes.fromhex(result.binding.nonce or "")
        assert tls.server_hostname == base64.encodebytes(nonce).decode()
    assert result.accepted
    assert result.binding.freshness is b.Freshness.NONCE
    assert base64_only.certificates.minted == 1


def test_the_default_form_is_not_read_by_a_base64_only_server(
    base64_only: Base64OnlyServer,
) -> None:
    context = _client(base64_only.tee, "atls-label")
    with pytest.raises(ATLSVerificationError) as info:
        tls_connect(context, base64_only.server.port, "svc.example")
    # The server could not read a nonce: its static certificate answered.
    assert info.value.check == "freshness.nonce"
    assert base64_only.certificates.minted == 0

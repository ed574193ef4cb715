"""pyatls's wire forms: the nonce in SNI and the ACI runtime data, against pyatls-style servers."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator

import jwt
import pytest
from atls_pyatls import ATLSContext, HTTPAConnection
from atls_pyatls.azure import AciValidator
from atls_pyatls.testing import PyatlsStyleServer, pyatls_nonce, pyatls_runtime_data

from atls_azure.issuer import AciIssuer
from atls_azure.testing.maa import StandInMaa
from atls_azure.validators import cce_policy_hash
from atls_core.errors import ATLSVerificationError
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer
from atls_core.tls import ATLSContext as CoreATLSContext
from atls_core.tls import result_of

CCE_POLICY = "package policy"
POLICY = Policy(options={"hostdata": [cce_policy_hash(CCE_POLICY)]})


def _handshake(context: CoreATLSContext, port: int) -> str | None:
    """Connect, let the context appraise, return the server name that was sent."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="svc.example") as tls,
    ):
        result = result_of(tls)
        assert result is not None
        assert result.accepted
        name: str | None = tls.server_hostname
        assert pyatls_nonce(name) == bytes.fromhex(result.binding.nonce or "")
        return name


@pytest.fixture
def atls_server(maa: StandInMaa) -> Iterator[HTTPSServer]:
    """A server built with atls: reads only atls's SNI label."""
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    with HTTPSServer(AttestedCertificates(issuer).server_context()) as https:
        yield https


def test_the_nonce_travels_as_pyatls_sent_it(
    aci: Callable[..., AciValidator], server: PyatlsStyleServer
) -> None:
    name = _handshake(ATLSContext([aci([CCE_POLICY])]), server.port)
    assert server.server_names == [name]
    assert name is not None
    # base64.encodebytes: standard alphabet, padding, one trailing newline, no host name.
    assert name == base64.encodebytes(base64.b64decode(name)).decode()
    assert len(name) == 45
    assert "svc.example" not in name


def test_the_runtime_data_is_pyatls_s(maa: StandInMaa) -> None:
    """The runtime data MAA hashes is byte for byte what pyatls re-derived."""
    spki, nonce = b"spki-bytes", bytes(range(32))
    runtime = pyatls_runtime_data(spki, nonce)
    assert runtime == (
        b'{"publicKey":"'
        + base64.b64encode(spki)
        + b'","nonce":"'
        + base64.b64encode(nonce)
        + b'"}'
    )
    claims = jwt.decode(maa.aci_token(runtime), options={"verify_signature": False})
    assert claims["x-ms-runtime"] == json.loads(runtime)


def test_core_client_needs_the_wire_setting(maa: StandInMaa, server: PyatlsStyleServer) -> None:
    """A plain atls configuration reaches a pyatls server with ``wire = "pyatls"`` only."""
    default = select_validator(
        "azure.aci", settings=maa.settings(), policy=POLICY, allow_insecure=True
    )
    with pytest.raises(ATLSVerificationError) as info:
        _handshake(CoreATLSContext.for_validator(default), server.port)
    # The server cannot read atls's label and answers with its start-up token (empty nonce).
    assert info.value.check == "azure.runtime.nonce"
    assert server.https.received == 0
    pyatls = select_validator(
        "azure.aci", settings=maa.settings(wire="pyatls"), policy=POLICY, allow_insecure=True
    )
    _handshake(CoreATLSContext.for_validator(pyatls), server.port)


def test_compat_validator_reaches_atls_servers_with_wire_atls(
    aci: Callable[..., AciValidator], atls_server: HTTPSServer
) -> None:
    with pytest.raises(ATLSVerificationError) as info:
        HTTPAConnection("127.0.0.1", ATLSContext([aci([CCE_POLICY])]), atls_server.port).connect()
    assert info.value.check == "azure.runtime.nonce"
    assert atls_server.received == 0
    connection = HTTPAConnection(
        "127.0.0.1", ATLSContext([aci([CCE_POLICY], wire="atls")]), atls_server.port
    )
    connection.request("GET", "/index")
    assert connection.getresponse().data == b'{"path": "/index"}'
    connection.close()

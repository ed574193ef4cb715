"""``HTTPAAdapter(validators)``: pyatls's requests adapter on atls-core's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from atls_pyatls.azure import AciValidator
from atls_pyatls.requests_adapter import HTTPAAdapter
from atls_pyatls.testing import PyatlsStyleServer

from atls_azure.testing.maa import StandInMaa
from atls_core.requests_adapter import ATLSAdapter

CCE_POLICY = "package policy"


def test_adapter_result_and_pooling(
    aci: Callable[..., AciValidator], server: PyatlsStyleServer
) -> None:
    validator = aci([CCE_POLICY])
    adapter = HTTPAAdapter([validator], max_retries=0)
    assert isinstance(adapter, ATLSAdapter)
    assert adapter.validators == [validator]
    with requests.Session() as session:
        session.mount("httpa://", adapter)
        for _ in range(2):
            response = session.get(f"httpa://127.0.0.1:{server.port}/index", timeout=10)
            assert response.status_code == 200
            assert response.json() == {"path": "/index"}
        result = response.attestation_result  # type: ignore[attr-defined]
    assert result.accepted
    assert result.policy_digest == validator.policy.digest
    # One pooled connection, one appraisal: freshness is per connection.
    assert len(server.server_names) == 1


def test_adapter_refusal(maa: StandInMaa, server: PyatlsStyleServer) -> None:
    with StandInMaa() as other, requests.Session() as session:
        untrusting = AciValidator(
            [CCE_POLICY],
            [f"{other.url}/certs"],
            settings={"allow_http_loopback": True},
            allow_insecure=True,
        )
        session.mount("httpa://", HTTPAAdapter([untrusting], max_retries=0))
        with pytest.raises(requests.exceptions.SSLError, match=r"jwt\.iss"):
            session.get(f"httpa://127.0.0.1:{server.port}/index", timeout=10)
    assert server.https.received == 0

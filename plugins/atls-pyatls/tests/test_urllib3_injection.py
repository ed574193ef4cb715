"""``inject_into_urllib3`` / ``extract_from_urllib3``: every urllib3 HTTPS connection attested."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from atls_pyatls.azure import AciValidator
from atls_pyatls.testing import PyatlsStyleServer, aci_validator_for
from atls_pyatls.urllib3_patch import extract_from_urllib3, inject_into_urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from atls_azure.testing.maa import StandInMaa

CCE_POLICY = "package policy"


@pytest.fixture
def pristine() -> Iterator[type]:
    original = HTTPSConnectionPool.ConnectionCls
    yield original
    extract_from_urllib3()
    assert HTTPSConnectionPool.ConnectionCls is original


def test_injected_requests_are_appraised(
    pristine: type, aci: Callable[..., AciValidator], server: PyatlsStyleServer
) -> None:
    inject_into_urllib3([aci([CCE_POLICY])])
    with urllib3.PoolManager() as pool:
        response = pool.request("GET", f"https://127.0.0.1:{server.port}/index", retries=False)
        assert response.status == 200
        assert response.data == b'{"path": "/index"}'
    assert len(server.server_names) == 1
    extract_from_urllib3()
    assert HTTPSConnectionPool.ConnectionCls is pristine


def test_injected_refusal_sends_nothing(
    pristine: type, maa: StandInMaa, server: PyatlsStyleServer
) -> None:
    with StandInMaa() as other:
        untrusting = aci_validator_for(other, [CCE_POLICY])
        inject_into_urllib3([untrusting])
        with urllib3.PoolManager() as pool, pytest.raises(urllib3.exceptions.SSLError) as info:
            pool.request("GET", f"https://127.0.0.1:{server.port}/index", retries=False)
    assert "jwt.iss" in str(info.value)
    assert server.https.received == 0


def test_a_connection_pooled_before_injection_is_not_reused(
    pristine: type, maa: StandInMaa, server: PyatlsStyleServer
) -> None:
    """A keep-alive connection from before injection was never appraised: it is closed."""
    url = f"https://127.0.0.1:{server.port}"
    with urllib3.PoolManager(cert_reqs="CERT_NONE") as pool:
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert pool.request("GET", f"{url}/before", retries=False).status == 200
        with StandInMaa() as other:
            inject_into_urllib3([aci_validator_for(other, [CCE_POLICY])])  # refuses this server
            with pytest.raises(urllib3.exceptions.SSLError) as info:
                pool.request("GET", f"{url}/secret", retries=False)
    assert "jwt.iss" in str(info.value)
    assert server.https.requests == ["/before"]


def test_extract_restores_urllib3_after_repeated_injection(
    pristine: type, aci: Callable[..., AciValidator]
) -> None:
    extract_from_urllib3()  # nothing injected: nothing to undo
    assert HTTPSConnectionPool.ConnectionCls is pristine
    own = dict(HTTPSConnectionPool.__dict__)
    inject_into_urllib3([aci([CCE_POLICY])])
    inject_into_urllib3([aci([CCE_POLICY])])
    assert HTTPSConnectionPool.ConnectionCls is not pristine
    extract_from_urllib3()
    assert HTTPSConnectionPool.ConnectionCls is pristine
    assert dict(HTTPSConnectionPool.__dict__) == own  # nothing left behind


def test_a_later_patch_of_urllib3_still_runs_while_injected(
    pristine: type, aci: Callable[..., AciValidator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tracing libraries wrap HTTPConnectionPool._get_conn: injection must not bypass them."""
    calls: list[object] = []
    traced = HTTPConnectionPool._get_conn

    def tracing(self: HTTPConnectionPool, timeout: float | None = None) -> Any:
        calls.append(self)
        return traced(self, timeout)

    inject_into_urllib3([aci([CCE_POLICY])])
    monkeypatch.setattr(HTTPConnectionPool, "_get_conn", tracing)
    pool = HTTPSConnectionPool("127.0.0.1", 1)
    pool._get_conn().close()
    assert calls == [pool]

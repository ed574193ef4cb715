"""pyatls's README examples, verbatim, against a pyatls-style server on loopback.

Only the environment is the test's: the service's name resolves to the
loopback server (port 443 to its port), and a no-argument ``AciValidator()``
trusts the stand-in MAA instead of Azure's shared instances (over http on
loopback, a tests-only setting the selection admits as a configuration with
``allow_insecure_test_validators`` would).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import atls_pyatls.azure
import pytest
import requests
from atls_pyatls.testing import PyatlsStyleServer, pyatls_nonce

import atls_azure.aci
from atls_azure.aci import SecurityWarning
from atls_azure.testing.maa import StandInMaa
from atls_core.errors import ATLSVerificationError
from atls_core.result import AttestationResult, Status
from atls_core.selection import SelectedValidator, select_validator

SERVICE = "my.confidential.service.net"

DIRECT = """\
from atls import ATLSContext, HTTPAConnection
from atls.validators.azure.aas import AciValidator

validator = AciValidator()
ctx = ATLSContext([validator])
conn = HTTPAConnection("my.confidential.service.net", ctx)

conn.request("GET", "/index")

response = conn.getresponse()

print(f"Status: {response.status}")
print(f"Response: {response.data.decode()}")

conn.close()
"""

REQUESTS = """\
import requests

from atls.utils.requests import HTTPAAdapter
from atls.validators.azure.aas import AciValidator

validator = AciValidator()
session = requests.Session()
session.mount("httpa://", HTTPAAdapter([validator]))

response = session.request("GET", "httpa://my.confidential.service.net/index")

print(f"Status: {response.status_code}")
print(f"Response: {response.text}")
"""

OUTPUT = 'Status: 200\nResponse: {"path": "/index"}\n'


@pytest.fixture
def deployed(
    maa: StandInMaa, server: PyatlsStyleServer, monkeypatch: pytest.MonkeyPatch
) -> PyatlsStyleServer:
    """``SERVICE:443`` is the loopback server; the default MAA trust is the stand-in."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == SERVICE and int(port) == 443:
            return resolve("127.0.0.1", server.port, *args, **kwargs)
        return resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(atls_pyatls.azure, "PUBLIC_JKUS", [f"{maa.url}/certs"])
    monkeypatch.setattr(
        atls_pyatls.azure, "DEFAULT_SETTINGS", {"wire": "pyatls", "allow_http_loopback": True}
    )

    def select_for_tests(*args: Any, **kwargs: Any) -> SelectedValidator:
        return select_validator(*args, **{**kwargs, "allow_insecure": True})

    monkeypatch.setattr(atls_azure.aci, "select_validator", select_for_tests)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    return server


def _run(example: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with pytest.warns(SecurityWarning, match="accepts any confidential-container policy"):
        exec(compile(example, "pyatls-readme", "exec"), namespace)
    return namespace


def _check(result: Any, server: PyatlsStyleServer) -> None:
    """Accepted as pyatls accepted it (any container policy), saying so; nonce in pyatls's SNI."""
    assert isinstance(result, AttestationResult)
    assert result.status is Status.WARNING
    assert any(w.startswith("workload.unpinned") for w in result.warnings)
    assert list(result.claims["test_knobs"]) == ["allow_http_loopback"]
    assert result.binding.freshness.value == "nonce"
    (name,) = server.server_names
    assert name is not None
    assert name.endswith("\n")
    assert pyatls_nonce(name) == bytes.fromhex(result.binding.nonce or "")


def test_direct_example(deployed: PyatlsStyleServer, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = _run(DIRECT)
    assert capsys.readouterr().out == OUTPUT
    _check(namespace["conn"].attestation_result, deployed)
    assert deployed.https.requests == ["/index"]


def test_requests_example(deployed: PyatlsStyleServer, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = _run(REQUESTS)
    assert capsys.readouterr().out == OUTPUT
    _check(namespace["response"].attestation_result, deployed)
    assert deployed.https.requests == ["/index"]


def test_direct_example_refuses_an_untrusted_service(
    deployed: PyatlsStyleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same code against tokens from an MAA it does not trust: no byte reaches the server."""
    with StandInMaa() as other:
        monkeypatch.setattr(atls_pyatls.azure, "PUBLIC_JKUS", [f"{other.url}/certs"])
        with pytest.raises(ATLSVerificationError) as info:
            _run(DIRECT)
    assert info.value.check == "jwt.iss"
    assert deployed.https.received == 0


def test_requests_example_refuses_an_untrusted_service(
    deployed: PyatlsStyleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StandInMaa() as other:
        monkeypatch.setattr(atls_pyatls.azure, "PUBLIC_JKUS", [f"{other.url}/certs"])
        with pytest.raises(requests.exceptions.SSLError, match=r"jwt\.iss"):
            _run(REQUESTS)
    assert deployed.https.received == 0


@pytest.mark.parametrize("example", [DIRECT, REQUESTS], ids=["direct", "requests"])
def test_readme_shows_the_example(example: str) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"```python\n{example}```" in readme


def _atls_version() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start = readme.index("```python\nfrom atls_azure.aci import AciValidator")
    return readme[start + len("```python\n") : readme.index("```", start + 3)]


def test_atls_version_of_the_direct_example(
    maa: StandInMaa,
    deployed: PyatlsStyleServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's atls version runs, trusting the stand-in MAA instead of Azure's."""
    code = _atls_version()
    for azure, stand_in in (
        ('"https://sharedeus2.eus2.attest.azure.net/certs"', f'"{maa.url}/certs"'),
        (
            '{"wire": "pyatls"}',
            '{"wire": "pyatls", "allow_http_loopback": True}, allow_insecure=True',
        ),
    ):
        assert code.count(azure) == 1
        code = code.replace(azure, stand_in)
    (tmp_path / "policy.rego").write_text("package policy")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "atls-readme", "exec"), {"__name__": "__main__"})
    hostdata = hashlib.sha256(b"package policy").hexdigest()
    assert capsys.readouterr().out == f"{OUTPUT}{hostdata}\n"
    assert pyatls_nonce(deployed.server_names[0]) is not None

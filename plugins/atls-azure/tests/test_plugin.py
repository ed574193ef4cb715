"""Registration, selection and the `atls verify-evidence` CLI."""

from __future__ import annotations

import importlib.metadata
import io
import json
import sys
from pathlib import Path

import jwt
import pytest

from atls_azure import plugin, specs
from atls_core.errors import ConfigurationError
from atls_core.selection import select_validator
from atls_core.testing.plugins import heavy_modules_loaded_by

SGX_DIR = "azure/azsdk-py-1.0.0-sgx-enclave-2021-07-01"
MRENCLAVE = "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"


def test_plugin_imports_cheaply() -> None:
    heavy = ("jwt", "atls_azure.validators")
    assert heavy_modules_loaded_by("import atls_azure.plugin", heavy) == []


@pytest.mark.parametrize("validator_id", ["azure.aci", "azure.cvm", "azure.sgx", "azure.tdx"])
def test_selectable(validator_id: str) -> None:
    selected = select_validator(
        validator_id, settings={"instances": ["https://sharedeus2.eus2.attest.azure.net"]}
    )
    assert selected.spec.id == validator_id


def test_unknown_settings_refused() -> None:
    with pytest.raises(ConfigurationError):
        select_validator("azure.sgx", settings={"jku": "https://evil"})


def test_no_trust_configured_refused() -> None:
    with pytest.raises(ConfigurationError):
        select_validator("azure.aci", settings={})


def _cli(argv: list[str]) -> tuple[int, str, str]:
    from atls_core import cli

    out, err = io.StringIO(), io.StringIO()
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.main(argv)
    finally:
        sys.stdout, sys.stderr = old_out, old_err
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def recorded(vectors: Path) -> tuple[Path, Path, str, int]:
    folder = vectors / SGX_DIR
    (token,) = sorted(folder.glob("token_6_*.jwt"))
    claims = jwt.decode(token.read_text().strip(), options={"verify_signature": False})
    keys = folder / "jwks_recorded_for_sharedwus.wus.attest.azure.net.json"
    return token, keys, claims["iss"], claims["iat"] + 60


def _verify(
    validator: str, token: Path, keys: Path, issuer: str, at: int, *options: str
) -> tuple[int, str, str]:
    """``atls verify-evidence`` of a recorded token with a recorded key set, at ``at``."""
    arguments = ["--keys", str(keys), "--issuer", issuer, "--at", str(at), *options]
    return _cli(["verify-evidence", "--validator", validator, *arguments, str(token)])


@pytest.mark.vectors
def test_cli_accepts_recorded_token(recorded: tuple[Path, Path, str, int], tmp_path: Path) -> None:
    token, keys, issuer, at = recorded
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[reference_values]\nmrenclave = "{MRENCLAVE}"\n')
    code, out, err = _verify(
        "azure.sgx", token, keys, issuer, at, "--policy", str(policy), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["measurements"]["mrenclave"] == MRENCLAVE
    assert result["binding"]["freshness"] == "unbound"


@pytest.mark.vectors
def test_cli_rejects_wrong_issuer(recorded: tuple[Path, Path, str, int]) -> None:
    token, keys, _issuer, at = recorded
    code, _out, err = _verify("azure.sgx", token, keys, "https://other.attest.azure.net", at)
    assert code != 0
    assert "jwt.iss" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.vectors
def test_cli_rejects_unpinned_workload(recorded: tuple[Path, Path, str, int]) -> None:
    token, keys, issuer, at = recorded
    code, _out, err = _verify("azure.sgx", token, keys, issuer, at)
    assert code != 0
    assert "workload.unpinned" in err
    assert MRENCLAVE in err, "the refusal names the value to pin"


@pytest.mark.vectors
def test_cli_aci_recorded_token_unknown_key(vectors: Path) -> None:
    token = vectors / "azure/aci-sevsnp-token-no-jwks/sev-snp-jwt.txt"
    claims = jwt.decode(token.read_text().strip(), options={"verify_signature": False})
    keys = vectors / SGX_DIR / "jwks_recorded_for_sharedwus.wus.attest.azure.net.json"
    code, _out, err = _verify("azure.aci", token, keys, claims["iss"], claims["iat"] + 60)
    assert code != 0
    assert "unknown signing key" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("validator_id", ["azure.aci", "azure.cvm", "azure.sgx", "azure.tdx"])
def test_cli_lists_azure_options(validator_id: str) -> None:
    code, out, _err = _cli(["verify-evidence", "--validator", validator_id, "--help"])
    assert code == 0
    for flag in ("--keys", "--issuer", "--instance", "--leeway"):
        assert flag in out


def test_specs_carry_their_cli_options_and_no_version() -> None:
    """0.2: verify-evidence options are spec data; versions come from distribution metadata."""
    for spec in (*specs.SPECS, specs.ACI_ISSUER_SPEC):
        assert not hasattr(spec, "plugin_version")
    for spec in specs.SPECS:
        assert spec.cli_options == specs.TOKEN_CLI_OPTIONS
        assert len(spec.binding_schemes) == 1
    assert not hasattr(plugin, "atls_verify_evidence_options")
    selected = select_validator(
        "azure.sgx", settings={"instances": ["https://sharedeus2.eus2.attest.azure.net"]}
    )
    assert selected.plugin.version == importlib.metadata.version("atls-azure")


def test_registering_the_plugin_imports_no_path_or_url_library() -> None:
    """`atls plugins` registers every plugin: declaring settings reads no path or URL."""
    code = "from atls_core.registry import PluginManager; PluginManager(environ={}).load('azure')"
    heavy = ("pathlib", "urllib", "ipaddress")
    assert heavy_modules_loaded_by(code, heavy) == []

"""``[atls] disable_plugins`` stops hand-overs: a server cannot make the client run a disabled plugin.

A ``tdx.dstack`` rule accepts dstack attestations from SEV-SNP guests by handing
the report to atls-snp's ``snp.report``.  With ``disable_plugins = ["snp"]`` in
configuration that hand-over is refused (``dstack.platform_plugin_missing``)
and no request is sent, even when the process's manager has loaded atls-snp
already; ``atls verify --config F --validator tdx.dstack`` honours F's list too.
A synthetic Milan guest (atls-snp's synthetic AMD PKI) serves on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError
from atls_core.testing.loopback import HTTPSServer, attested_get, tls_server_context
from atls_core.tls import ATLSContext
from atls_core.verify_command import run
from atls_snp.roots import Product
from atls_snp.testing import SyntheticSnp
from atls_tdx.testing.dstack import mr_config_document, snp_attestation_certificate

COMPOSE_HASH = "c0" * 32
MR_CONFIG = mr_config_document(
    app_id="a1" * 20, compose_hash=COMPOSE_HASH, instance_id="1d" * 20, key_provider_id="3f" * 32
)


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSnp:
    return SyntheticSnp(tmp_path_factory.mktemp("dstack-snp"), product=Product.MILAN)


def _server(guest: SyntheticSnp) -> HTTPSServer:
    key = ec.generate_private_key(ec.SECP256R1())
    vcek, ask, _ark = guest.chain()
    der = snp_attestation_certificate(
        key,
        lambda data, host_data: guest.report(data, host_data=host_data),
        mr_config=MR_CONFIG,
        cert_chain=(ask, vcek),
    )
    return HTTPSServer(tls_server_context(key, der))


def _config(guest: SyntheticSnp, disabled: list[str]) -> ATLSConfig:
    rule: dict[str, Any] = {
        "validator": "tdx.dstack",
        "settings": {"snp_test_ark": str(guest.ark_file), "snp_kds": "never"},
        "policy": {"allowed_compose_hashes": [COMPOSE_HASH]},
    }
    return ATLSConfig.from_mapping(
        {
            "atls": {"allow_insecure_test_validators": True, "disable_plugins": disabled},
            "hosts": {"127.0.0.1": rule},
        }
    )


def test_a_hand_over_to_a_plugin_configuration_disables_is_refused(guest: SyntheticSnp) -> None:
    with _server(guest) as server:
        # Without disabling: accepted through snp.report, which the default manager now holds.
        result, _ = attested_get(ATLSContext(_config(guest, [])), server.port)
        assert result.accepted, result.to_json()
        assert result.tee_type == "sev-snp"
        assert str(result.claims["handed_over_to"][0]).startswith("snp.report ")
        # Disabled in configuration: refused before a request is sent.
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(ATLSContext(_config(guest, ["snp"])), server.port)
        assert server.requests == ["/hello"]
    assert info.value.check == "dstack.platform_plugin_missing"
    assert "atls.disable_plugins" in str(info.value)


def _toml(guest: SyntheticSnp, disabled: list[str], path: Path) -> str:
    """The configuration ``_config`` builds, as a file."""
    path.write_text(
        "[atls]\nallow_insecure_test_validators = true\n"
        f"disable_plugins = {json.dumps(disabled)}\n"
        '[hosts."127.0.0.1"]\nvalidator = "tdx.dstack"\n'
        '[hosts."127.0.0.1".settings]\n'
        f'snp_test_ark = {json.dumps(str(guest.ark_file))}\nsnp_kds = "never"\n'
        '[hosts."127.0.0.1".policy]\n'
        f'allowed_compose_hashes = ["{COMPOSE_HASH}"]\n'
    )
    return str(path)


@pytest.mark.parametrize(("disabled", "code"), [([], 0), (["snp"], 1)])
def test_atls_verify_with_a_validator_honours_the_files_disabled_plugins(
    guest: SyntheticSnp,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    disabled: list[str],
    code: int,
) -> None:
    """``atls verify --config F --validator ID``: F's ``disable_plugins`` reaches ID's hand-overs."""
    with _server(guest) as server:
        args = argparse.Namespace(
            url=server.url(),
            config=_toml(guest, disabled, tmp_path / "atls.toml"),
            validator="tdx.dstack",
            json=False,
            allow_insecure=False,
            timeout=10.0,
        )
        assert run(args) == code
    if disabled:
        assert "dstack.platform_plugin_missing" in capsys.readouterr().err

"""With every plugin installed, listing them imports registration code only.

``atls plugins`` imports each plugin's entry-point module to show what it
registers; those modules hold hooks and specs (facts).  Verification and
issuance code (dcap-qvl, pyjwt, cbor2, cryptography, HTTP clients) loads when a
factory builds a validator or an issuer, never for a listing.
"""

from __future__ import annotations

import pytest

from atls_core.testing.plugins import modules_loaded_by

PLUGINS = ("atls_tdx", "atls_gramine", "atls_azure", "atls_ita", "atls_snp", "atls_dcap")

IMPLEMENTATION = (
    "validator",
    "validators",
    "dcap_validator",
    "issuer",
    "issuers",
    "verifier",
    "collateral",
    "pcs",
    "tcb",
    "client",
    "token",
    "trust",
    "chain",
    "kds",
    "ratls",
    "inspection",
)
"""Last name parts of plugin modules that verify or issue (``dstack*`` too)."""

LIBRARIES = (
    "dcap_qvl",
    "jwt",
    "cbor2",
    "msgpack",
    "cryptography",
    "importlib.metadata",
    "packaging",
    "argparse",
    "atls_core.fetch",
    "atls_core.appraisal",
    "atls_core.config",  # hosts and policies: a listing shows neither
    "atls_core.policy",
)

LISTING = "from atls_core.cli import main\nassert main({arguments!r}) == 0\n"


def _is_implementation(module: str) -> bool:
    top, _, rest = module.partition(".")
    last = module.rpartition(".")[2]
    if top in PLUGINS and rest:
        return last in IMPLEMENTATION or last.startswith("dstack")
    return any(module == lib or module.startswith(lib + ".") for lib in LIBRARIES)


def _implementation(modules: list[str]) -> list[str]:
    return [module for module in modules if _is_implementation(module)]


@pytest.mark.parametrize("arguments", [["plugins"], ["plugins", "--json"]])
def test_atls_plugins_imports_no_verification_or_issuance_code(arguments: list[str]) -> None:
    modules = modules_loaded_by(LISTING.format(arguments=arguments))
    assert {"atls_tdx.plugin", "atls_gramine.plugin", "atls_azure.plugin"} <= set(modules)
    assert _implementation(modules) == []


def test_the_probe_sees_implementation_code() -> None:
    """The check above can fail: building a validator does load its code."""
    code = (
        "from atls_core.registry import default_manager\n"
        "spec, factory, _ = default_manager().validator_factory('tdx.dcap')\n"
        "factory({})\n"
    )
    assert "atls_tdx.dcap_validator" in _implementation(modules_loaded_by(code))


@pytest.mark.parametrize(
    "plugin", ["atls_tdx", "atls_gramine", "atls_azure", "atls_ita", "atls_snp"]
)
def test_each_entry_point_module_is_registration_only(plugin: str) -> None:
    assert _implementation(modules_loaded_by(f"import {plugin}.plugin")) == []

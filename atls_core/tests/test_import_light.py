"""``import atls_core`` (and the CLI module) must stay light: no plugin, no HTTP, no dcap-qvl."""

from __future__ import annotations

import pytest

from atls_core.testing.plugins import modules_loaded_by

HEAVY = (
    "dcap_qvl",
    "requests",
    "urllib3",
    "httpx",
    "openai",
    "cbor2",
    "jwt",
    "atls_tdx",
    "atls_gramine",
    "atls_azure",
    "atls_ita",
    "atls_dcap",
    "atls_snp",
    "atls_core.testing",
)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize(
    "code",
    [
        "import atls_core",
        "from atls_core import *",
        "import atls_core.cli, atls_core.report",
        "from atls_core.registry import PluginManager; PluginManager().available()",
    ],
)
def test_import_is_light(code: str) -> None:
    modules = modules_loaded_by(code)
    assert "atls_core" in modules
    assert _heavy(modules) == []


def test_the_probe_can_see_heavy_imports() -> None:
    """The check above is real: importing the simulated TEE does show up."""
    assert _heavy(modules_loaded_by("import atls_core.testing.simulated")) != []

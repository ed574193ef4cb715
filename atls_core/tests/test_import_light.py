"""``import atls_core`` (and the CLI module) must stay light: no plugin, no HTTP, no dcap-qvl."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


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
    modules = _loaded_after(code)
    assert "atls_core" in modules
    assert _heavy(modules) == []


def test_the_probe_can_see_heavy_imports() -> None:
    """The check above is real: importing the simulated TEE does show up."""
    assert _heavy(_loaded_after("import atls_core.testing.simulated")) != []

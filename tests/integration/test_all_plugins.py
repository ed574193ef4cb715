"""Every distribution installed together: discovery, uniqueness, isolation."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import pytest

from atls_core.registry import PluginManager
from atls_core.testing.plugins import heavy_modules_loaded_by, run_atls

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = {
    path.parent.name: tomllib.loads(path.read_text())
    for path in sorted((ROOT / "plugins").glob("*/pyproject.toml"))
}
EXPECTED = {
    name: distribution
    for distribution, project in PYPROJECTS.items()
    for name in project["project"].get("entry-points", {}).get("atls", {})
}
"""Entry-point name -> distribution, for every distribution under plugins/ that declares one."""
WITHOUT_ENTRY_POINT = {
    "atls-dcap": "the support distribution (DCAP verification for the Intel plugins)",
    "atls-pyatls": "pyatls's API (the `atls` package) over atls-azure; it registers no validator",
}
PACKAGES = {
    distribution: {
        Path(folder).name
        for folder in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    }
    for distribution, project in PYPROJECTS.items()
}
"""Distribution -> the top-level packages its wheel ships."""
MAY_IMPORT = {distribution: {"atls_dcap"} for distribution in PYPROJECTS}
"""What a plugin may import of another's: the support distribution, everywhere; and the
declared exception, atls-pyatls building pyatls's API on atls-azure."""
MAY_IMPORT["atls-pyatls"] |= {"atls_azure"}


def test_expected_covers_every_plugin_distribution() -> None:
    """A distribution under plugins/ registers plugins, or says here why it does not."""
    assert set(EXPECTED.values()) | set(WITHOUT_ENTRY_POINT) == set(PYPROJECTS)
    assert {"tdx", "gramine", "azure", "ita", "snp"} <= set(EXPECTED)


def _imported_modules(tree: ast.AST) -> set[str]:
    """Absolute imports, and string arguments of ``import_module``/``__import__`` calls."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            name = function.id if isinstance(function, ast.Name) else name
            if name in ("import_module", "__import__") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


def foreign_imports(distribution: str) -> list[str]:
    """``file: module`` for each import of another plugin distribution's package that
    ``MAY_IMPORT`` does not allow."""
    others = {
        package
        for other, packages in PACKAGES.items()
        if other != distribution
        for package in packages
    } - MAY_IMPORT[distribution]
    offenders = []
    for path in sorted((ROOT / "plugins" / distribution / "src").rglob("*.py")):
        for module in sorted(_imported_modules(ast.parse(path.read_text(), str(path)))):
            if module.partition(".")[0] in others:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    return offenders


@pytest.mark.parametrize("distribution", sorted(PYPROJECTS))
def test_plugins_never_import_each_other(distribution: str) -> None:
    """Every module of every plugin, read (not run): a validator module the entry point
    does not import is covered too."""
    assert foreign_imports(distribution) == []


def test_every_plugin_is_discovered_from_metadata() -> None:
    infos = {info.name: info for info in PluginManager().available()}
    for name, distribution in EXPECTED.items():
        assert name in infos, f"plugin {name} not discovered"
        assert infos[name].distribution == distribution
        assert infos[name].version


def test_all_plugins_load_together_without_clashes() -> None:
    statuses = PluginManager().load_all()
    by_name = {s.info.name: s for s in statuses}
    for name in EXPECTED:
        status = by_name[name]
        assert status.loaded, f"{name}: {status.error}"
        assert status.validators, f"{name} registers no validator"
        for spec in status.validators:
            assert spec.id.startswith(name + ".")
    oids = [oid for s in statuses for spec in s.validators for oid in spec.oids]
    assert len(oids) == len(set(oids)), "two validators claim the same OID"


def test_every_validator_names_what_pins_its_workload() -> None:
    """The core's one pinning rule needs something to pin: no validator may leave it empty."""
    specs = [spec for s in PluginManager().load_all() for spec in s.validators]
    assert {spec.id.partition(".")[0] for spec in specs} >= set(EXPECTED)
    for spec in specs:
        assert spec.workload_identity, f"{spec.id} names no workload_identity: nothing can pin it"
        assert set(spec.workload_identity) <= set(spec.measurements), spec.id
        assert set(spec.pinning_options) <= set(spec.policy_options), spec.id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loading_one_plugin_imports_no_other_plugin(name: str) -> None:
    """The entry module at run time (the static test above reads every module)."""
    distribution = EXPECTED[name]
    others = set().union(*(PACKAGES[d] for d in PACKAGES if d != distribution))
    others -= MAY_IMPORT[distribution]
    code = f"from atls_core.registry import PluginManager\nPluginManager().load({name!r})\n"
    assert heavy_modules_loaded_by(code, sorted(others)) == []


def test_importing_the_core_imports_no_plugin_or_heavy_dependency() -> None:
    heavy = ["dcap_qvl", "requests", "httpx", "jwt", "cbor2"]
    heavy += sorted(set().union(*PACKAGES.values()))
    assert heavy_modules_loaded_by("import atls_core", heavy) == []


def test_atls_plugins_command_lists_every_distribution() -> None:
    done = run_atls("plugins", "--json")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    listed = json.dumps(json.loads(out))
    for distribution in EXPECTED.values():
        assert distribution in listed

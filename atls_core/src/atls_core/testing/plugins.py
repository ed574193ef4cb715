"""Plugin managers for tests: chosen plugins only, nothing read from installed metadata.

A plugin author tests registration without building a wheel:
``manager_with(my_plugin_module)`` gives a :class:`~atls_core.registry.PluginManager`
that knows the simulated TEE and the given modules, each as an entry point
named after the module's last dotted part (or as given in ``named``).
"""

from __future__ import annotations

import importlib.metadata as md
import itertools
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atls_core.hookspecs import hookimpl
from atls_core.interfaces import ValidatorFactory, ValidatorSpec
from atls_core.registry import ENTRY_POINT_GROUP, PluginManager, ValidatorRegistrar

if TYPE_CHECKING:
    from atls_core.config import ATLSConfig

__all__ = [
    "SIMULATED_ENTRY_POINT",
    "FakeSite",
    "assert_tests_only",
    "entry_point",
    "heavy_modules_loaded_by",
    "insecure_config",
    "manager_with",
    "modules_loaded_by",
    "plugin_module",
    "run_atls",
]


def _simulated_entry_point() -> md.EntryPoint:
    for ep in md.entry_points(group=ENTRY_POINT_GROUP, name="insecure"):
        if ep.value == "atls_core.testing.simulated":
            return ep  # the installed one: it knows its distribution (atls-core) and version
    return md.EntryPoint(
        name="insecure", value="atls_core.testing.simulated", group=ENTRY_POINT_GROUP
    )


SIMULATED_ENTRY_POINT = _simulated_entry_point()
"""atls-core's own ``insecure`` plugin (the simulated TEE), as its metadata declares it."""


def entry_point(name: str, target: str | types.ModuleType) -> md.EntryPoint:
    """An ``atls`` entry point for ``target``: a module path, or a module object.

    A module object that is not importable by name (built in a test) is put in
    ``sys.modules`` under its ``__name__`` so the entry point can load it.
    """
    if isinstance(target, types.ModuleType):
        sys.modules[target.__name__] = target
        target = target.__name__
    return md.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)


def plugin_module(
    name: str, *validators: tuple[ValidatorSpec, ValidatorFactory]
) -> types.ModuleType:
    """A plugin module made in a test: its hook registers each (spec, factory) pair."""
    module = types.ModuleType(name)

    @hookimpl
    def atls_register_validators(registry: ValidatorRegistrar) -> None:
        for spec, factory in validators:
            registry.register(spec, factory)

    module.atls_register_validators = atls_register_validators  # type: ignore[attr-defined]
    return module


def manager_with(
    *modules: types.ModuleType,
    named: Mapping[str, str | types.ModuleType] | None = None,
    simulated: bool = True,
    environ: Mapping[str, str] | None = None,
) -> PluginManager:
    """A manager over the simulated TEE (unless ``simulated=False``) and the given plugins."""
    eps = [SIMULATED_ENTRY_POINT] if simulated else []
    eps += [entry_point(m.__name__.rpartition(".")[2], m) for m in modules]
    eps += [entry_point(n, t) for n, t in (named or {}).items()]
    return PluginManager(environ=environ or {}, entry_points=eps)


def modules_loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``.

    How a test proves that importing a plugin (or the core) stays cheap: the
    registry imports every installed plugin module to list what it offers.
    """
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    command = [sys.executable, "-c", probe]
    done = subprocess.run(  # noqa: S603 - the test's own code, in this interpreter
        command, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"{code!r} failed: {done.stderr}")
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def heavy_modules_loaded_by(code: str, heavy: Iterable[str]) -> list[str]:
    """Which modules of the packages or modules ``heavy`` running ``code`` has loaded."""
    names = tuple(heavy)
    return [
        m for m in modules_loaded_by(code) if any(m == h or m.startswith(h + ".") for h in names)
    ]


def run_atls(
    *arguments: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The ``atls`` command in a fresh interpreter, as a user runs it: plugins come from
    the installed entry points.  Never raises for the exit code: tests check it."""
    command = [sys.executable, "-m", "atls_core.cli", *(os.fspath(a) for a in arguments)]
    return subprocess.run(  # noqa: S603 - this interpreter running atls' own CLI
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )


def assert_tests_only(
    validator_id: str,
    settings: Mapping[str, object],
    knobs: tuple[str, ...],
    *,
    manager: PluginManager | None = None,
) -> None:
    """``settings`` use tests-only ``knobs``: refused without the tests-only gate, both when
    selected directly and through a configuration, and marked when the gate is open."""
    import pytest

    from atls_core.config import ATLSConfig
    from atls_core.errors import ConfigurationError
    from atls_core.selection import select_validator, validator_for_host

    hosts = {"svc.example": {"validator": validator_id, "settings": dict(settings)}}
    for refused in (
        lambda: select_validator(validator_id, settings=settings, manager=manager),
        lambda: ATLSConfig.from_mapping({"hosts": hosts}),
    ):
        with pytest.raises(ConfigurationError) as info:
            refused()
        assert info.value.check == "config.test_settings", info.value
        assert all(knob in str(info.value) for knob in knobs), info.value
    allowed = insecure_config("svc.example", validator_id, settings)
    assert validator_for_host(allowed, "svc.example", manager=manager).test_knobs == knobs


def insecure_config(
    host: str,
    validator_id: str,
    settings: Mapping[str, Any],
    policy: Mapping[str, Any] | None = None,
    *,
    source: str = "<dict>",
) -> ATLSConfig:
    """A configuration of one host rule that allows insecure test validators (and so
    tests-only settings): what tests of synthetic evidence, and the demo, run under."""
    from atls_core.config import ATLSConfig

    rule: dict[str, Any] = {"validator": validator_id, "settings": dict(settings)}
    if policy is not None:
        rule["policy"] = dict(policy)
    hosts = {host: rule}
    return ATLSConfig.from_mapping(
        {"atls": {"allow_insecure_test_validators": True}, "hosts": hosts}, source=source
    )


class FakeSite:
    """A folder of fake installed distributions (``*.dist-info`` and plugin modules).

    Put it on ``sys.path`` (``monkeypatch.syspath_prepend(site.path)``) and the
    registry's own metadata reader finds them; :meth:`forget` drops the imported
    modules afterwards, so the next test imports its own.
    """

    _numbers = itertools.count()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.modules: list[str] = []

    def install(
        self,
        distribution: str,
        plugins: Mapping[str, str],
        *,
        version: str = "1.0",
        requires: Sequence[str] = (),
    ) -> dict[str, str]:
        """Entry points ``plugins`` (name -> module source); returns name -> module name."""
        info = self.path / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {distribution}", f"Version: {version}"]
        metadata += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(metadata) + "\n")
        modules = {name: f"_atls_fake_{name}_{next(self._numbers)}" for name in plugins}
        for name, source in plugins.items():
            (self.path / f"{modules[name]}.py").write_text(source)
        lines = ["[atls]", *(f"{name} = {module}" for name, module in modules.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        self.modules += modules.values()
        return modules

    def forget(self) -> None:
        """Drop the modules imported from here."""
        for module in self.modules:
            sys.modules.pop(module, None)

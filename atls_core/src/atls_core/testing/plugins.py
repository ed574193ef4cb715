"""Plugin managers for tests: chosen plugins only, nothing read from installed metadata.

A plugin author tests registration without building a wheel:
``manager_with(my_plugin_module)`` gives a :class:`~atls_core.registry.PluginManager`
that knows the simulated TEE and the given modules, each as an entry point
named after the module's last dotted part (or as given in ``named``).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
import types
from collections.abc import Iterable, Mapping

from atls_core.registry import ENTRY_POINT_GROUP, PluginManager

__all__ = [
    "SIMULATED_ENTRY_POINT",
    "entry_point",
    "heavy_modules_loaded_by",
    "manager_with",
    "modules_loaded_by",
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

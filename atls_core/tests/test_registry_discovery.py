"""The registry over installed metadata (no explicit entry points): the same refusals as ever."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from atls_core import registry as reg
from atls_core._version import __version__ as core_version
from atls_core.errors import DuplicateRegistration, IncompatiblePlugin, PluginNotFound
from atls_core.testing.plugins import FakeSite

PLUGIN = """
from atls_core import Transport, ValidatorSpec, hookimpl
from atls_core.testing.simulated import SimulatedValidator

@hookimpl
def atls_register_validators(registry):
    spec = ValidatorSpec(id={id!r}, media_types=('x/y',), binding_schemes=('atls-v1',),
        transport=Transport.CERTIFICATE, tee_type='fake', settings=('hardware_key',),
        measurements=('image',), workload_identity=('image',))
    registry.register(spec, lambda s: SimulatedValidator(s, spec=spec))
"""

Install = Callable[..., str]


@pytest.fixture
def install(site: FakeSite) -> Install:
    """Install a one-validator plugin as a dist-info folder on ``sys.path``; returns its module."""

    def make(distribution: str, name: str, requires: str = "atls-core>=0.2,<1") -> str:
        plugin = {name: PLUGIN.format(id=f"{name}.v")}
        return site.install(distribution, plugin, requires=[requires])[name]

    return make


def test_an_installed_plugin_is_found_and_loaded(install: Install) -> None:
    module = install("atls-found", "found")
    manager = reg.PluginManager(environ={})
    (info,) = [i for i in manager.available() if i.name == "found"]
    assert (info.distribution, info.version, info.value) == ("atls-found", "1.0", module)
    assert module not in sys.modules
    assert manager.validator_spec("found.v").id == "found.v"
    assert module in sys.modules


def test_a_plugin_outside_its_core_range_is_refused_before_import(install: Install) -> None:
    module = install("atls-future", "future", requires="atls-core>=99")
    manager = reg.PluginManager(environ={})
    with pytest.raises(IncompatiblePlugin) as info:
        manager.validator_spec("future.v")
    assert info.value.check == "plugins.core_version"
    assert info.value.expected == ">=99"
    assert info.value.actual == core_version
    assert "atls-future 1.0" in str(info.value)
    assert module not in sys.modules
    statuses = {s.info.name: s for s in manager.load_all()}
    assert not statuses["future"].loaded
    assert "requires atls-core>=99" in (statuses["future"].error or "")


def test_two_distributions_with_one_plugin_name_are_an_error(install: Install) -> None:
    install("atls-one", "twin")
    install("atls-two", "twin")
    with pytest.raises(DuplicateRegistration) as info:
        reg.PluginManager(environ={}).validator_spec("twin.v")
    assert info.value.check == "plugins.duplicate_name"


def test_a_disabled_plugin_is_never_imported(install: Install) -> None:
    module = install("atls-off", "off")
    manager = reg.PluginManager(environ={reg.DISABLE_ENV: "off"})
    with pytest.raises(PluginNotFound) as info:
        manager.validator_spec("off.v")
    assert info.value.check == "plugins.disabled"
    assert [s.disabled for s in manager.load_all() if s.info.name == "off"] == [True]
    assert module not in sys.modules


def test_a_manager_reads_the_installed_set_once(install: Install) -> None:
    manager = reg.PluginManager(environ={})
    before = {i.name for i in manager.available()}
    install("atls-late", "late")
    assert {i.name for i in manager.available()} == before
    assert "late" in {i.name for i in reg.PluginManager(environ={}).available()}

"""``[atls] disable_plugins`` reaches every validator a configured rule runs.

A rule's validator finds the validators it hands evidence over to through the
manager it was selected with (dstack's SEV-SNP evidence goes to
``snp.report``).  The configuration's disabled plugins must be refused there
too, even when the application's manager loaded them already; the
manager's observers keep seeing results.  The dstack hand-over itself is
tested end to end in tests/integration/test_disable_plugins_handover.py.
"""

from __future__ import annotations

import types

import pytest

from atls_core.config import ATLSConfig
from atls_core.errors import PluginNotFound
from atls_core.hookspecs import hookimpl
from atls_core.registry import PluginManager
from atls_core.selection import manager_for, validator_for_rule
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, attested_get
from atls_core.testing.plugins import manager_with
from atls_core.tls import ATLSContext


def _observer(seen: list[str | None]) -> types.ModuleType:
    module = types.ModuleType("atls_test_disable_observer")

    @hookimpl
    def atls_appraisal_completed(result: object, host: str | None) -> None:
        seen.append(host)

    module.atls_appraisal_completed = atls_appraisal_completed  # type: ignore[attr-defined]
    return module


def _config(tee: SimulatedTEE, disabled: list[str]) -> ATLSConfig:
    mapping = tee.config_mapping("127.0.0.1")
    mapping["atls"]["disable_plugins"] = disabled
    return ATLSConfig.from_mapping(mapping, check=False)


@pytest.fixture
def manager() -> PluginManager:
    """The application's manager, which has loaded the plugin configuration will disable."""
    manager = manager_with(named={"extra": _observer([])})  # an observer registers something
    manager.load("extra")
    return manager


def test_a_rules_validator_cannot_reach_a_plugin_configuration_disables(
    tee: SimulatedTEE, manager: PluginManager
) -> None:
    config = _config(tee, ["extra"])
    selected = validator_for_rule(config, config.hosts[0], manager=manager)
    with pytest.raises(PluginNotFound) as info:
        selected.manager.validator_factory("extra.validator")  # what a hand-over calls
    assert info.value.check == "plugins.disabled"
    assert "atls.disable_plugins" in str(info.value)
    assert manager.load("extra").name == "extra"  # the application's manager is unchanged


def test_a_manager_that_disables_as_much_is_used_as_it_is(
    tee: SimulatedTEE, manager: PluginManager
) -> None:
    assert manager_for(_config(tee, []), manager) is manager
    stricter = manager_with(environ={"ATLS_DISABLE_PLUGINS": "extra"})
    assert manager_for(_config(tee, ["extra"]), stricter) is stricter


def test_observers_of_the_applications_manager_still_see_results(tee: SimulatedTEE) -> None:
    seen: list[str | None] = []
    manager = manager_with(named={"audit": _observer(seen)})
    manager.load("audit")
    context = ATLSContext(_config(tee, ["extra"]), manager=manager)
    with HTTPSServer(tee.certificates().server_context()) as server:
        result, _ = attested_get(context, server.port)
    assert result.accepted
    assert seen == ["127.0.0.1"]


def test_observers_of_a_plugin_configuration_disables_are_not_told(tee: SimulatedTEE) -> None:
    seen: list[str | None] = []
    manager = manager_with(named={"audit": _observer(seen)})
    manager.load("audit")  # the application loaded it before reading the configuration
    context = ATLSContext(_config(tee, ["audit"]), manager=manager)
    with HTTPSServer(tee.certificates().server_context()) as server:
        result, _ = attested_get(context, server.port)
    assert result.accepted
    assert seen == []

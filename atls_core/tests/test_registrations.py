"""A plugin's hooks from tables: ``registrations`` and ``imported_factory``."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from atls_core.hookspecs import imported_factory, registrations
from atls_core.testing.plugins import manager_with
from atls_core.testing.simulated import (
    ISSUER_SPEC,
    VALIDATOR_SPEC,
    SimulatedHardware,
    SimulatedIssuer,
    SimulatedValidator,
)


def test_each_spec_is_registered_with_a_factory_that_builds_its_target() -> None:
    plugin = types.ModuleType("atls_test_tabled_plugin")
    plugin.atls_register_validators, plugin.atls_register_issuers = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, "atls_core.testing.simulated:SimulatedValidator")],
        issuers=[(ISSUER_SPEC, "atls_core.testing.simulated:SimulatedIssuer")],
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    hardware = SimulatedHardware.generate()
    spec, factory, info = manager.validator_factory("insecure.simulated")
    assert (spec, info.name) == (VALIDATOR_SPEC, "insecure")
    assert isinstance(factory(hardware.validator_settings()), SimulatedValidator)
    issuer_spec, make_issuer, _ = manager.issuer_factory("insecure.simulated")
    assert issuer_spec == ISSUER_SPEC
    assert isinstance(make_issuer(hardware.issuer_settings()), SimulatedIssuer)


class _Built:
    def __init__(self, settings: Any, how: str = "plain") -> None:
        self.settings, self.how = settings, how

    @classmethod
    def variant(cls, settings: Any) -> _Built:
        return cls(settings, "variant")


def test_a_target_is_imported_when_it_first_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "atls_test_factory_target"
    plain = imported_factory(f"{name}:Built")
    variant = imported_factory(f"{name}:Built.variant")
    with pytest.raises(ModuleNotFoundError):
        plain({})
    module = types.ModuleType(name)
    module.Built = _Built  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    assert (plain({"a": 1}).how, variant({}).how) == ("plain", "variant")
    assert plain({"a": 1}).settings == {"a": 1}
    assert variant.__name__ == f"{name}:Built.variant"


@pytest.mark.parametrize("target", ["atls_core.testing.simulated", ":SimulatedValidator", ""])
def test_a_target_names_a_module_and_an_attribute(target: str) -> None:
    with pytest.raises(ValueError, match="module:name"):
        imported_factory(target)


class _NeedsRoot:
    def __init__(self, settings: Any) -> None:
        self.root = settings["root_ca"]  # the slip a plugin author makes


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("atls_test_no_such_module:Validator", "ModuleNotFoundError"),
        ("atls_core.testing.simulated:SimulatedValidatr", "AttributeError"),
        (f"{__name__}:_NeedsRoot", "KeyError: 'root_ca'"),
    ],
)
def test_a_factory_that_fails_names_its_plugin(target: str, cause: str) -> None:
    """Not a bare exception that reads like a defect of atls (exit 70 in the CLI)."""
    from atls_core.errors import PluginLoadError
    from atls_core.selection import select_validator

    plugin = types.ModuleType("atls_test_failing_plugin")
    plugin.atls_register_validators, _ = registrations(validators=[(VALIDATOR_SPEC, target)])  # type: ignore[attr-defined]
    manager = manager_with(simulated=False, named={"insecure": plugin})
    with pytest.raises(PluginLoadError) as caught:
        select_validator("insecure.simulated", manager=manager, allow_insecure=True)
    assert caught.value.check == "plugins.factory"
    assert "validator insecure.simulated of plugin 'insecure'" in caught.value.reason
    assert cause in caught.value.reason


class _EchoesItsToken:
    def __init__(self, settings: Any) -> None:
        from atls_core.secret import reveal

        int(reveal(settings["nested"]["token"]))  # ValueError quoting the secret's value


def test_a_failing_factory_never_quotes_a_secret_setting() -> None:
    from atls_core.errors import PluginLoadError
    from atls_core.secret import Secret

    plugin = types.ModuleType("atls_test_echoing_plugin")
    plugin.atls_register_validators, _ = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, f"{__name__}:_EchoesItsToken")]
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    _spec, factory, _info = manager.validator_factory("insecure.simulated")
    with pytest.raises(PluginLoadError) as caught:
        factory({"nested": {"token": Secret("sk-live-not-for-messages", "$env TOKEN")}})
    assert "sk-live-not-for-messages" not in str(caught.value)
    assert "sk-live-not-for-messages" not in str(caught.value.to_dict())
    assert "ValueError" in caught.value.reason

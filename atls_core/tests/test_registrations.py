"""A plugin's hooks from tables: ``registrations`` and ``imported_factory``."""

from __future__ import annotations

import sys
import types
from typing import Any

import attrs
import pytest

from atls_core.evidence import Transport
from atls_core.hookspecs import imported_factory, registrations
from atls_core.testing.plugins import manager_with
from atls_core.testing.simulated import (
    CHALLENGE_ISSUER_SPEC,
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


def test_a_target_whose_module_does_not_exist_breaks_the_plugin_when_it_loads() -> None:
    """Found at registration (``atls plugins`` shows it broken), not at the first connection;
    finding the module imports nothing of it."""
    from atls_core.errors import PluginLoadError

    plugin = types.ModuleType("atls_test_misspelt_plugin")
    plugin.atls_register_validators, _ = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, "atls_test_no_such_module:Validator")]
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    with pytest.raises(PluginLoadError) as caught:
        manager.load("insecure")
    assert caught.value.check == "plugins.register"
    assert "there is no module 'atls_test_no_such_module'" in caught.value.reason
    (status,) = manager.load_all()
    assert not status.loaded


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


def _building(built_spec: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable factory target whose instances carry ``built_spec`` as their spec."""
    module = types.ModuleType("atls_test_spec_target")
    module.Built = type("Built", (), {"spec": built_spec, "__init__": lambda self, s: None})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return f"{module.__name__}:Built"


@pytest.mark.parametrize(
    "built_spec",
    [
        VALIDATOR_SPEC,  # a copied `spec = ...` line: the registered one is insecure.other
        attrs.evolve(VALIDATOR_SPEC, id="insecure.other", tee_type="tdx"),
        None,  # no spec at all
    ],
    ids=["another-id", "same-id-other-facts", "none"],
)
def test_a_validator_built_with_another_spec_is_refused(
    built_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks, pinning rule and the result's verifier must all read the registered spec."""
    from atls_core.errors import PluginLoadError
    from atls_core.selection import select_validator

    registered = attrs.evolve(VALIDATOR_SPEC, id="insecure.other")
    plugin = types.ModuleType("atls_test_spec_plugin")
    plugin.atls_register_validators, _ = registrations(  # type: ignore[attr-defined]
        validators=[(registered, _building(built_spec, monkeypatch))]
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    with pytest.raises(PluginLoadError) as caught:
        select_validator("insecure.other", manager=manager, allow_insecure=True)
    assert caught.value.check == "plugins.spec"
    assert caught.value.expected == "insecure.other"


def test_a_validator_may_pick_its_sni_form(monkeypatch: pytest.MonkeyPatch) -> None:
    from atls_core.selection import select_validator

    own = attrs.evolve(VALIDATOR_SPEC, sni_form="base64-line")
    plugin = types.ModuleType("atls_test_spec_plugin")
    plugin.atls_register_validators, _ = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, _building(own, monkeypatch))]
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    selected = select_validator("insecure.simulated", manager=manager, allow_insecure=True)
    assert selected.validator.spec.sni_form == "base64-line"


def test_an_issuer_built_with_another_spec_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from atls_core.errors import PluginLoadError
    from atls_core.server import select_issuer

    plugin = types.ModuleType("atls_test_spec_plugin")
    plugin.atls_register_validators, plugin.atls_register_issuers = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, "atls_core.testing.simulated:SimulatedValidator")],
        issuers=[(ISSUER_SPEC, _building(CHALLENGE_ISSUER_SPEC, monkeypatch))],
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    with pytest.raises(PluginLoadError) as caught:
        select_issuer("insecure.simulated", manager=manager, allow_insecure=True)
    assert (caught.value.check, caught.value.actual) == (
        "plugins.spec",
        CHALLENGE_ISSUER_SPEC.id,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"binding_scheme": "challenge-v1"}, "binding scheme 'challenge-v1'"),
        ({"validator_id": "insecure.nothere"}, "names validator 'insecure.nothere'"),
        ({"transport": Transport.CHALLENGE}, "transport 'challenge'"),
        ({"oid": "1.2.3.4"}, "OID '1.2.3.4'"),
        ({"insecure": False}, "not marked insecure"),
    ],
)
def test_an_issuer_that_does_not_fit_its_own_validator_is_refused(
    change: dict[str, Any], named: str
) -> None:
    """Found at registration, not on the client as report data that "does not bind"."""
    from atls_core.errors import PluginLoadError

    plugin = types.ModuleType("atls_test_spec_plugin")
    plugin.atls_register_validators, plugin.atls_register_issuers = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, "atls_core.testing.simulated:SimulatedValidator")],
        issuers=[
            (attrs.evolve(ISSUER_SPEC, **change), "atls_core.testing.simulated:SimulatedIssuer")
        ],
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    with pytest.raises(PluginLoadError) as caught:
        manager.load("insecure")
    assert caught.value.check == "plugins.spec"
    assert named in caught.value.reason

"""The plugin registry, with fake distributions (a temp dir of ``*.dist-info`` on sys.path).

Only what is selected is imported; a broken plugin is harmless until selected and
then fails loudly; namespaces, duplicates, core-version ranges and
``ATLS_DISABLE_PLUGINS`` are enforced; observers cannot change a result.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import sys
import textwrap
import types
from collections.abc import Callable, Sequence

import attrs
import pytest

from atls_core import registry as reg
from atls_core._version import __version__ as core_version
from atls_core.binding import BindingContext, report_data_for
from atls_core.clock import SystemClock
from atls_core.errors import (
    ConfigurationError,
    DuplicateRegistration,
    IncompatiblePlugin,
    PluginLoadError,
    PluginNotFound,
)
from atls_core.hookspecs import hookimpl
from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.plugins import SIMULATED_ENTRY_POINT, FakeSite, entry_point, manager_with
from atls_core.testing.simulated import SimulatedHardware, SimulatedIssuer

Install = Callable[..., list[md.EntryPoint]]


def _plugin_source(
    name: str,
    validators: Sequence[tuple[str, Sequence[str]]] = (),
    issuers: Sequence[str] = (),
    *,
    extra: str = "",
    scheme: str = "atls-v1",
    cli_flag: str | None = None,
) -> str:
    """A plugin module registering validators ``(id, oids)`` and issuers by id."""
    lines = [
        "from atls_core import CliOption, IssuerSpec, Transport, ValidatorSpec, hookimpl",
        "from atls_core.testing.simulated import SimulatedValidator, SimulatedIssuer",
        "IMPORTED = True",
        "",
        "@hookimpl",
        "def atls_register_validators(registry):",
    ]
    for spec_id, oids in validators:
        lines += [
            f"    spec = ValidatorSpec(id={spec_id!r}, media_types=('x/y',),",
            f"        binding_schemes=({scheme!r},), transport=Transport.CERTIFICATE,",
            f"        tee_type='fake', oids={tuple(oids)!r}, settings=('hardware_key',),",
            f"        cli_options={_cli(cli_flag)})",
            "    registry.register(spec, lambda s, spec=spec: SimulatedValidator(s, spec=spec))",
        ]
    lines.append("    return None")
    lines += ["", "@hookimpl", "def atls_register_issuers(registry):"]
    for spec_id in issuers:
        lines += [
            f"    spec = IssuerSpec(id={spec_id!r}, validator_id='insecure.simulated',",
            f"        media_type='x/y', binding_scheme={scheme!r}, transport=Transport.CERTIFICATE)",
            "    registry.register(spec, lambda s, spec=spec: SimulatedIssuer(s, spec=spec))",
        ]
    lines.append("    return None")
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


def _cli(flag: str | None) -> str:
    if flag is None:
        return "()"
    return f"(CliOption(flag={flag!r}, setting='hardware_key', help='h'),)"


@pytest.fixture
def install(site: FakeSite) -> Install:
    """Create fake installed distributions; returns their ``atls`` entry points."""

    def make(
        distribution: str,
        plugins: dict[str, str],
        *,
        version: str = "1.2.3",
        requires: Sequence[str] = ("atls-core>=0.1,<1",),
    ) -> list[md.EntryPoint]:
        """``plugins`` maps entry-point names to module source code."""
        site.install(distribution, plugins, version=version, requires=requires)
        (dist,) = [
            d for d in md.distributions(path=[str(site.path)]) if d.metadata["Name"] == distribution
        ]
        return [ep for ep in dist.entry_points if ep.group == reg.ENTRY_POINT_GROUP]

    return make


def _manager(
    entry_points: Sequence[md.EntryPoint],
    *,
    environ: dict[str, str] | None = None,
    modules: dict[str, types.ModuleType] | None = None,
) -> reg.PluginManager:
    extra = [entry_point(name, module) for name, module in (modules or {}).items()]
    return reg.PluginManager(environ=environ or {}, entry_points=[*entry_points, *extra])


def _module_of(ep: md.EntryPoint) -> str:
    return ep.value


# -- discovery and selective loading ------------------------------------------------------------


def test_available_reads_metadata_only(install: Install) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", ["1.3.9999.1"])])})
    manager = _manager(eps)
    (info,) = manager.available()
    assert info == reg.PluginInfo(
        name="alpha", distribution="atls-alpha", version="1.2.3", value=eps[0].value
    )
    assert _module_of(eps[0]) not in sys.modules


class _CountedDistribution:
    """A distribution whose metadata reads are counted."""

    def __init__(self, dist: reg.DistributionLike, reads: list[str]) -> None:
        self._dist = dist
        self._reads = reads

    @property
    def metadata(self) -> reg._Metadata:
        self._reads.append(self._dist.metadata["Name"])
        return self._dist.metadata

    @property
    def version(self) -> str:
        return self._dist.version

    @property
    def requires(self) -> list[str] | None:
        return self._dist.requires


class _CountedEntryPoint:
    def __init__(self, ep: md.EntryPoint, reads: list[str]) -> None:
        assert ep.dist is not None
        self.name, self.value = ep.name, ep.value
        self.dist = _CountedDistribution(ep.dist, reads)
        self._ep = ep

    def load(self) -> object:
        return self._ep.load()


def test_the_plugin_list_is_read_once_per_manager(install: Install) -> None:
    """`atls plugins` looks every plugin up by name: each lookup reuses one reading."""
    reads: list[str] = []
    eps = install(
        "atls-alpha",
        {
            "alpha": _plugin_source("alpha", [("alpha.v", ["1.3.9999.1"])]),
            "beta": _plugin_source("beta", [("beta.v", ["1.3.9999.2"])]),
        },
    )
    counted = [_CountedEntryPoint(e, reads) for e in eps]
    manager = reg.PluginManager(environ={}, entry_points=counted)
    assert [s.loaded for s in manager.load_all()] == [True, True]
    assert reads == ["atls-alpha", "atls-alpha"]  # one per entry point


def test_the_simulated_tee_is_an_ordinary_entry_point_of_atls_core() -> None:
    assert reg.PluginManager(environ={}, entry_points=[]).available() == []
    manager = reg.PluginManager(environ={})
    (info,) = [i for i in manager.available() if i.name == "insecure"]
    assert (info.name, info.distribution, info.version) == ("insecure", "atls-core", core_version)
    assert info.value == "atls_core.testing.simulated"
    assert manager.validator_spec("insecure.simulated").insecure
    assert reg.default_manager() is reg.default_manager()


def test_selecting_imports_only_the_selected_entry_point(install: Install) -> None:
    alpha = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", ["1.3.9999.1"])])})
    beta = install("atls-beta", {"beta": _plugin_source("beta", [("beta.v", ["1.3.9999.2"])])})
    manager = _manager(alpha + beta)
    spec = manager.validator_spec("alpha.v")
    assert spec.oids == ("1.3.9999.1",)
    assert _module_of(alpha[0]) in sys.modules
    assert _module_of(beta[0]) not in sys.modules
    assert manager.load("alpha") is manager.load("alpha")


def test_module_attribute_entry_points(install: Install) -> None:
    source = _plugin_source("gamma", [("gamma.v", [])]) + textwrap.dedent(
        """
        class Plugin:
            atls_register_validators = staticmethod(atls_register_validators)
            unrelated = 1
        """
    )
    (ep,) = install("atls-gamma", {"gamma": source})
    attr_ep = md.EntryPoint(name="gamma", value=f"{ep.value}:Plugin", group="atls")
    manager = _manager([attr_ep])
    assert manager.validator_spec("gamma.v").id == "gamma.v"


# -- broken plugins -----------------------------------------------------------------------------


BROKEN = "import atls_definitely_missing_dependency_xyz\n"


def test_broken_plugin_is_harmless_unless_selected(install: Install) -> None:
    good = install("atls-good", {"good": _plugin_source("good", [("good.v", ["1.3.9999.1"])])})
    bad = install("atls-bad", {"bad": BROKEN}, version="0.9.1")
    manager = _manager(good + bad)
    assert manager.validator_spec("good.v").id == "good.v"
    with pytest.raises(PluginLoadError) as info:
        manager.validator_spec("bad.v")
    error = info.value
    assert error.check == "plugins.import"
    for fragment in ("'bad'", "atls-bad", "0.9.1", "ModuleNotFoundError", "atls_definitely"):
        assert fragment in str(error), fragment
    assert isinstance(error.__cause__, ModuleNotFoundError)
    with pytest.raises(PluginLoadError) as again:
        manager.validator_spec("bad.v")
    assert again.value is error, "the failure is remembered, not retried"
    assert manager.validator_spec("good.v").id == "good.v"
    statuses = {s.info.name: s for s in manager.load_all()}
    assert statuses["good"].loaded
    assert [v.id for v in statuses["good"].validators] == ["good.v"]
    assert not statuses["bad"].loaded
    assert statuses["bad"].error == str(error)


def test_registration_failure_leaves_no_hooks_behind(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    source = """
        from atls_core import hookimpl
        SEEN = []

        @hookimpl
        def atls_register_validators(registry):
            raise ValueError("bad registration")

        @hookimpl
        def atls_appraisal_completed(result, host):
            SEEN.append(host)
    """
    (ep,) = install("atls-faulty", {"faulty": textwrap.dedent(source)})
    manager = _manager([ep])
    with pytest.raises(PluginLoadError) as info:
        manager.load("faulty")
    assert info.value.check == "plugins.register"
    assert "atls-faulty 1.2.3" in str(info.value)
    assert "ValueError: bad registration" in str(info.value)
    manager.notify(object(), "host")
    assert sys.modules[ep.value].SEEN == []


def test_invalid_hook_signature(install: Install) -> None:
    source = """
        from atls_core import hookimpl

        @hookimpl
        def atls_register_validators(registrar, extra):
            pass
    """
    (ep,) = install("atls-sig", {"sig": textwrap.dedent(source)})
    with pytest.raises(PluginLoadError) as info:
        _manager([ep]).load("sig")
    assert info.value.check == "plugins.hooks"
    assert "atls-sig 1.2.3" in str(info.value)


_REGISTERS = textwrap.dedent("""
    from atls_core import hookimpl

    def atls_register_validators(registry):  # the hook, but not decorated: pluggy ignores it
        raise AssertionError("never called")
""")


@pytest.mark.parametrize(
    ("source", "check", "named"),
    [
        (  # the trial's plugin: a misspelt hook is decorated, the real one is not
            _REGISTERS + "\n@hookimpl\ndef atls_register_validatorz(registry):\n    pass\n",
            "plugins.hooks",
            "atls_register_validatorz @hookimpl, which is no atls hook (did you mean "
            "'atls_register_validators'?)",
        ),
        (  # decorated under a name that is not atls_*: refused as well
            _REGISTERS + "\n@hookimpl\ndef register_validators(registry):\n    pass\n",
            "plugins.hooks",
            "register_validators @hookimpl, which is no atls hook",
        ),
        (_REGISTERS, "plugins.hooks", "defines atls_register_validators without @hookimpl"),
        ("X = 1\n", "plugins.nothing_registered", "registered nothing"),
    ],
    ids=["misspelt", "misnamed", "undecorated", "empty"],
)
def test_a_plugin_that_registers_nothing_is_broken(
    install: Install, source: str, check: str, named: str
) -> None:
    (ep,) = install("atls-idle", {"idle": textwrap.dedent(source)})
    manager = _manager([ep])
    with pytest.raises(PluginLoadError) as info:
        manager.load("idle")
    assert info.value.check == check
    assert named in str(info.value)
    assert "atls-idle 1.2.3" in str(info.value)
    (status,) = manager.load_all()
    assert not status.loaded
    assert status.error == str(info.value)


def test_a_hook_named_by_specname_registers(install: Install) -> None:
    """pluggy's ``specname`` lets a hook function have another name: it is still called."""
    source = _plugin_source("alias", [("alias.v", ["1.3.9999.7"])]).replace(
        "@hookimpl\ndef atls_register_validators(",
        "@hookimpl(specname='atls_register_validators')\ndef register(",
    )
    assert "def register(" in source
    (ep,) = install("atls-alias", {"alias": source})
    assert _manager([ep]).validator_spec("alias.v").oids == ("1.3.9999.7",)


def test_an_observer_only_plugin_is_not_flagged(install: Install) -> None:
    source = """
        from atls_core import hookimpl

        @hookimpl
        def atls_appraisal_completed(result, host):
            pass
    """
    (ep,) = install("atls-audit", {"audit": textwrap.dedent(source)})
    (status,) = _manager([ep]).load_all()
    assert status.loaded
    assert (status.validators, status.issuers) == ((), ())


# -- namespaces and schemes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validators", "issuers"),
    [([("other.v", [])], []), ([("alpha.", [])], []), ([("alphabet.v", [])], []), ([], ["x.i"])],
)
def test_ids_must_carry_the_plugin_prefix(
    install: Install, validators: list[tuple[str, list[str]]], issuers: list[str]
) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", validators, issuers)})
    with pytest.raises(PluginLoadError) as info:
        _manager(eps).load("alpha")
    assert info.value.check == "plugins.namespace"
    assert info.value.expected == "alpha.*"
    assert "atls-alpha 1.2.3" in str(info.value)


def test_unknown_binding_scheme_is_refused(install: Install) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", [])], scheme="x")})
    with pytest.raises(PluginLoadError) as info:
        _manager(eps).load("alpha")
    assert info.value.check == "plugins.binding_scheme"
    assert info.value.actual == ["x"]


@pytest.mark.parametrize(
    "fields",
    [
        "workload_identity=('mrtd',)",
        "pinning_options=('app_compose',)",
        "cli_options=(CliOption(flag='--key', setting='undeclared', help='h'),)",
    ],
)
def test_a_spec_naming_what_it_does_not_declare_is_refused(install: Install, fields: str) -> None:
    source = (
        "from atls_core import CliOption, Transport, ValidatorSpec, hookimpl\n"
        "@hookimpl\n"
        "def atls_register_validators(registry):\n"
        "    registry.register(ValidatorSpec(id='alpha.v', media_types=('x/y',),\n"
        "        binding_schemes=('atls-v1',), transport=Transport.FILE, tee_type='t',\n"
        f"        measurements=('image',), {fields}), object)\n"
    )
    eps = install("atls-alpha", {"alpha": source})
    with pytest.raises(PluginLoadError) as info:
        _manager(eps).load("alpha")
    assert info.value.check in ("plugins.spec", "plugins.cli_options")


# -- duplicates ---------------------------------------------------------------------------------------


def test_duplicate_validator_id_within_a_plugin(install: Install) -> None:
    eps = install(
        "atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", []), ("alpha.v", [])])}
    )
    with pytest.raises(DuplicateRegistration) as info:
        _manager(eps).load("alpha")
    assert info.value.check == "plugins.duplicate_id"
    assert info.value.actual == "alpha.v"


def test_duplicate_issuer_id(install: Install) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", [], ["alpha.i", "alpha.i"])})
    with pytest.raises(DuplicateRegistration) as info:
        _manager(eps).load("alpha")
    assert info.value.check == "plugins.duplicate_id"


def test_duplicate_oid_across_plugins_is_all_or_nothing(install: Install) -> None:
    alpha = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", ["1.3.9999.7"])])})
    observer = """
        SEEN = []

        @hookimpl
        def atls_appraisal_completed(result, host):
            SEEN.append(host)
    """
    beta_source = _plugin_source(
        "beta",
        [("beta.fine", ["1.3.9999.8"]), ("beta.clash", ["1.3.9999.7"])],
        ["beta.i"],
        extra=observer,
    )
    beta = install("atls-beta", {"beta": beta_source})
    manager = _manager(alpha + beta)
    manager.load("alpha")
    with pytest.raises(DuplicateRegistration) as info:
        manager.load("beta")
    assert info.value.check == "plugins.duplicate_oid"
    assert info.value.actual == "1.3.9999.7"
    assert "alpha.v" in str(info.value)
    assert "beta.clash" in str(info.value)
    with pytest.raises(DuplicateRegistration):
        manager.validator_spec("beta.fine")
    with pytest.raises(DuplicateRegistration):
        manager.issuer_factory("beta.i")
    assert manager.validator_spec("alpha.v").oids == ("1.3.9999.7",)
    manager.notify(object(), "host")
    assert sys.modules[beta[0].value].SEEN == [], "a refused plugin keeps no observer"


def test_duplicate_oid_within_a_plugin(install: Install) -> None:
    source = _plugin_source("alpha", [("alpha.a", ["1.3.9999.7"]), ("alpha.b", ["1.3.9999.7"])])
    eps = install("atls-alpha", {"alpha": source})
    with pytest.raises(DuplicateRegistration) as info:
        _manager(eps).load("alpha")
    assert info.value.check == "plugins.duplicate_oid"


def test_duplicate_entry_point_name_across_distributions(install: Install) -> None:
    first = install("atls-one", {"same": _plugin_source("same", [("same.v", [])])})
    second = install("atls-two", {"same": _plugin_source("same", [("same.v", [])])}, version="2.0")
    manager = _manager(first + second)
    with pytest.raises(DuplicateRegistration) as info:
        manager.validator_spec("same.v")
    assert info.value.check == "plugins.duplicate_name"
    assert info.value.actual == ["atls-one 1.2.3", "atls-two 2.0"]
    assert _module_of(first[0]) not in sys.modules
    assert _module_of(second[0]) not in sys.modules


def test_the_same_entry_point_seen_twice_is_not_a_duplicate(install: Install) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", [])])})
    assert _manager(eps + eps).validator_spec("alpha.v").id == "alpha.v"


def test_a_plugin_cannot_claim_the_builtin_name(install: Install) -> None:
    eps = install("atls-evil", {"insecure": _plugin_source("insecure", [("insecure.x", [])])})
    manager = _manager([*eps, SIMULATED_ENTRY_POINT])
    with pytest.raises(DuplicateRegistration):
        manager.validator_spec("insecure.simulated")


# -- core version range -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "refused"),
    [
        ("atls-core>=99", True),
        ("atls-core<0.1", True),
        ("atls_core>=99", True),
        ("ATLS.Core!=" + core_version, True),
        ("atls-core>=0.1,<1", False),
        ("atls-core>=99; extra == 'test'", False),
        ("requests>=99", False),
    ],
)
def test_core_version_range(install: Install, requirement: str, refused: bool) -> None:
    eps = install(
        "atls-ranged",
        {"ranged": _plugin_source("ranged", [("ranged.v", [])])},
        requires=[requirement],
        version="3.1",
    )
    manager = _manager(eps)
    if not refused:
        assert manager.validator_spec("ranged.v").id == "ranged.v"
        return
    with pytest.raises(IncompatiblePlugin) as info:
        manager.validator_spec("ranged.v")
    assert isinstance(info.value, PluginLoadError)
    assert info.value.actual == core_version
    assert "atls-ranged 3.1" in str(info.value)
    assert core_version in str(info.value)
    assert _module_of(eps[0]) not in sys.modules, "refused before import"


# -- ATLS_DISABLE_PLUGINS --------------------------------------------------------------------------------


def test_disable_plugins_by_name(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    alpha = install("atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", [])])})
    beta = install("atls-beta", {"beta": _plugin_source("beta", [("beta.v", [])])})
    gamma = install("atls-gamma", {"gamma": _plugin_source("gamma", [("gamma.v", [])])})
    manager = _manager(alpha + beta + gamma, environ={"ATLS_DISABLE_PLUGINS": " alpha, beta "})
    assert manager.disabled == {"alpha", "beta"}
    with pytest.raises(PluginNotFound) as info:
        manager.validator_spec("alpha.v")
    assert info.value.check == "plugins.disabled"
    assert "ATLS_DISABLE_PLUGINS" in str(info.value)
    assert _module_of(alpha[0]) not in sys.modules
    assert manager.validator_spec("gamma.v").id == "gamma.v"
    statuses = {s.info.name: s for s in manager.load_all()}
    assert statuses["alpha"].disabled
    assert statuses["beta"].disabled
    assert statuses["gamma"].loaded
    assert _module_of(beta[0]) not in sys.modules

    explicit = reg.PluginManager(disabled=["gamma"], environ={}, entry_points=gamma)
    with pytest.raises(PluginNotFound):
        explicit.validator_spec("gamma.v")

    monkeypatch.setenv("ATLS_DISABLE_PLUGINS", "gamma")
    from_os = reg.PluginManager(entry_points=gamma)
    assert from_os.disabled == {"gamma"}


# -- lookups ---------------------------------------------------------------------------------------------


def test_lookup_errors(install: Install) -> None:
    eps = install(
        "atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", []), ("alpha.w", [])])}
    )
    manager = _manager(eps)
    with pytest.raises(PluginNotFound) as missing_plugin:
        manager.validator_spec("zeta.v")
    assert missing_plugin.value.check == "plugins.lookup"
    assert missing_plugin.value.actual == "zeta"
    assert "['alpha']" in str(missing_plugin.value.expected)
    # nothing is close: how to install, never a command naming the typo (anyone may own it on PyPI)
    assert "pip install --find-links dist <distribution>" in missing_plugin.value.reason
    assert "atls-zeta" not in str(missing_plugin.value)
    with pytest.raises(PluginNotFound) as typo:
        manager.validator_spec("alpah.v")
    assert typo.value.check == "plugins.lookup"
    assert "no installed plugin provides 'alpah' (did you mean 'alpha'?)" in typo.value.reason
    assert "pip install" not in str(typo.value)
    with pytest.raises(PluginNotFound) as missing_id:
        manager.validator_spec("alpha.x")
    assert missing_id.value.expected == ["alpha.v", "alpha.w"]
    with pytest.raises(ConfigurationError) as no_dot:
        manager.validator_spec("alpha")
    assert no_dot.value.check == "config.validator"


def test_issuer_lookup(install: Install) -> None:
    eps = install("atls-alpha", {"alpha": _plugin_source("alpha", [], ["alpha.i"])})
    spec, factory, info = _manager(eps).issuer_factory("alpha.i")
    assert spec.id == "alpha.i"
    assert isinstance(factory(SimulatedHardware.generate().issuer_settings()), SimulatedIssuer)
    assert info.distribution == "atls-alpha"


# -- hooks: verify-evidence options and observers ------------------------------------------------------------


def test_cli_options_come_only_from_the_selected_validators_spec(install: Install) -> None:
    alpha = install(
        "atls-alpha", {"alpha": _plugin_source("alpha", [("alpha.v", [])], cli_flag="--alpha-file")}
    )
    beta = install(
        "atls-beta", {"beta": _plugin_source("beta", [("beta.v", [])], cli_flag="--beta-file")}
    )
    manager = _manager(alpha + beta)
    manager.load("beta")
    assert [o.flag for o in manager.cli_options("alpha.v")] == ["--alpha-file"]
    assert [o.flag for o in manager.cli_options("beta.v")] == ["--beta-file"]


def _observer_module(seen: list[tuple[object, str | None]]) -> types.ModuleType:
    module = types.ModuleType("atls_test_observers")

    @hookimpl
    def atls_appraisal_completed(result: object, host: str | None) -> None:
        seen.append((result, host))
        result.status = "affirming"  # type: ignore[attr-defined]  # frozen: raises

    module.atls_appraisal_completed = atls_appraisal_completed  # type: ignore[attr-defined]
    return module


def _crashing_module() -> types.ModuleType:
    module = types.ModuleType("atls_test_crashing")

    @hookimpl
    def atls_appraisal_completed(result: object, host: str | None) -> None:
        raise RuntimeError("observer crashed")

    module.atls_appraisal_completed = atls_appraisal_completed  # type: ignore[attr-defined]
    return module


def test_observers_cannot_change_a_result(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[object, str | None]] = []
    manager = manager_with(named={"audit": _observer_module(seen), "crash": _crashing_module()})
    manager.load("audit")
    manager.load("crash")
    tee = SimulatedTEE(tcb_status="OutOfDate")
    selected = tee.selected(manager=manager, pin=False)
    spki = b"\x30\x03\x02\x01\x00"
    evidence = tee.issuer.issue(report_data_for("atls-v1", spki_der=spki, nonce=b""))
    expected = selected.validator.appraise(
        evidence,
        binding=BindingContext(spki_der=spki),
        clock=SystemClock(),
        policy=selected.policy,
    )
    caplog.set_level(logging.ERROR, logger="atls.plugins")
    result = selected.appraise(evidence, binding=BindingContext(spki_der=spki), host="h.example")
    assert not result.accepted
    assert attrs.evolve(result, issued_at=expected.issued_at).to_dict() == expected.to_dict()
    assert seen == [(result, "h.example")]
    assert "observer audit raised; ignored" in caplog.text
    assert "observer crash raised; ignored" in caplog.text
    assert "FrozenInstanceError" in caplog.text
    assert "observer crashed" in caplog.text


def test_hooks_a_module_makes_on_demand_register(install: Install) -> None:
    """A module ``__getattr__``/``__dir__`` may provide its hooks; pluggy would call them."""
    source = _plugin_source("lazy", [("lazy.v", ["1.3.9999.8"])]).replace(
        "@hookimpl\ndef atls_register_validators(",
        "@hookimpl\ndef _register(",
    )
    source += textwrap.dedent(
        """
        def __getattr__(name):
            if name == "atls_register_validators":
                return _register
            raise AttributeError(name)

        def __dir__():
            return [*globals(), "atls_register_validators"]
        """
    )
    (ep,) = install("atls-lazy", {"lazy": source})
    assert _manager([ep]).validator_spec("lazy.v").oids == ("1.3.9999.8",)

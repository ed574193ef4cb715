"""Plugin discovery and the validator/issuer registry.

Entry points in group ``atls`` name plugins; a validator id's prefix is its
plugin's entry-point name (``tdx.dcap`` lives in the ``tdx`` plugin).  So
selecting a validator imports exactly one entry point, a broken plugin that is
not selected never breaks anything, and a selected one fails loudly with its
distribution, version and original exception.  Duplicate ids, OIDs and
entry-point names are errors, never "first wins".
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import pluggy

from atls_core import hookspecs, installed
from atls_core._version import __version__ as core_version
from atls_core.errors import (
    ATLSError,
    ConfigurationError,
    DuplicateRegistration,
    IncompatiblePlugin,
    PluginLoadError,
    PluginNotFound,
    did_you_mean,
)
from atls_core.interfaces import (
    BINDING_SCHEME_NAMES,
    CliOption,
    IssuerFactory,
    IssuerSpec,
    ValidatorFactory,
    ValidatorSpec,
)
from atls_core.redact import redact_text
from atls_core.secret import Secret
from atls_core.version_range import unmet_requirement

if TYPE_CHECKING:
    import logging

__all__ = [
    "ENTRY_POINT_GROUP",
    "IssuerRegistrar",
    "PluginInfo",
    "PluginManager",
    "PluginStatus",
    "ValidatorRegistrar",
    "default_manager",
]

ENTRY_POINT_GROUP = "atls"
DISABLE_ENV = "ATLS_DISABLE_PLUGINS"


def _log() -> logging.Logger:
    """The registry's logger; ``logging`` loads only when there is something to log."""
    from atls_core.logs import library_logger

    return library_logger("atls.plugins")


class _Metadata(Protocol):
    def __getitem__(self, key: str) -> str: ...


class DistributionLike(Protocol):
    """What the registry reads of a distribution (``importlib.metadata``'s shape)."""

    @property
    def metadata(self) -> _Metadata: ...

    @property
    def version(self) -> str: ...

    @property
    def requires(self) -> list[str] | None: ...


class EntryPointLike(Protocol):
    """An ``atls`` entry point: :class:`atls_core.installed.EntryPoint` or importlib.metadata's."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    @property
    def dist(self) -> DistributionLike | None: ...

    def load(self) -> Any: ...


@attrs.frozen(kw_only=True)
class PluginInfo:
    """An installed plugin as its metadata describes it (nothing imported)."""

    name: str
    distribution: str
    version: str
    value: str
    """Entry-point target, ``module`` or ``module:attr``."""


@attrs.frozen(kw_only=True)
class PluginStatus:
    info: PluginInfo
    loaded: bool
    disabled: bool = False
    error: str | None = None
    validators: tuple[ValidatorSpec, ...] = ()
    issuers: tuple[IssuerSpec, ...] = ()


class _Registered:
    """A registry entry (private: a plain class, since building an attrs class costs every
    listing's start more than its generated methods are worth here)."""

    __slots__ = ("factory", "plugin", "spec")

    def __init__(self, *, spec: Any, factory: Callable[..., Any], plugin: PluginInfo) -> None:
        self.spec = spec
        self.factory = factory
        self.plugin = plugin


_MAX_DETAIL = 300
_HOOKS = ("atls_register_validators", "atls_register_issuers", "atls_appraisal_completed")


def _secrets_in(values: Iterable[Any], depth: int = 3) -> list[Secret]:
    """The :class:`Secret` values among ``values`` and the mappings and lists inside them."""
    found: list[Secret] = []
    for value in values:
        if isinstance(value, Secret):
            found.append(value)
        elif depth and isinstance(value, Mapping):
            found += _secrets_in(value.values(), depth - 1)
        elif depth and isinstance(value, (list, tuple)):
            found += _secrets_in(value, depth - 1)
    return found


def _as_registered(
    built: Any, spec: ValidatorSpec | IssuerSpec, what: str, plugin: PluginInfo
) -> Any:
    """``built``, after checking it carries the spec it was registered with.

    Configuration checks, the pinning rule and the result's verifier identity
    must all read one spec: a validator built with another one (a copied
    ``spec = ...`` line, or another plugin's id) is refused, not trusted.  A
    validator may only pick its SNI form from its settings.
    """
    own = getattr(built, "spec", None)
    if own is spec or own == spec:
        return built
    if (
        isinstance(spec, ValidatorSpec)
        and isinstance(own, ValidatorSpec)
        and attrs.evolve(own, sni_form=spec.sni_form) == spec
    ):
        return built
    raise PluginLoadError(
        f"{what} of plugin {plugin.name!r} ({plugin.distribution} {plugin.version}) was built "
        f"with another spec than the one it registered; its spec attribute must be "
        f"the registered {type(spec).__name__}",
        check="plugins.spec",
        expected=spec.id,
        actual=getattr(own, "id", type(own).__name__),
    )


def _named_failures(
    factory: Callable[..., Any], spec: ValidatorSpec | IssuerSpec, what: str, plugin: PluginInfo
) -> Any:
    """``factory``, whose failures other than atls' own name the plugin that broke.

    A factory imports its module when it first builds (see ``imported_factory``):
    a missing module, a misspelt target or a constructor that trips over its
    settings is the plugin's fault, and says so instead of surfacing as a bare
    ``KeyError`` that reads like a defect of atls.  What it builds must carry
    the registered spec (:func:`_as_registered`).
    """

    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            built = factory(*args, **kwargs)
        except ATLSError:
            raise
        except Exception as exc:
            # The exception's text is the plugin's: it may quote a setting's value.
            detail = redact_text(str(exc), _secrets_in((*args, *kwargs.values())))
            if len(detail) > _MAX_DETAIL:
                detail = detail[:_MAX_DETAIL] + "..."
            raise PluginLoadError(
                f"{what} of plugin {plugin.name!r} ({plugin.distribution} {plugin.version}) "
                f"could not be built: {type(exc).__name__}: {detail}; check its settings, or "
                f"report it to the plugin's authors",
                check="plugins.factory",
            ) from exc
        return _as_registered(built, spec, what, plugin)

    build.__qualname__ = build.__name__ = getattr(factory, "__name__", what)
    return build


class _Registrar:
    """Scoped to one plugin: ids must carry the plugin's prefix."""

    kind = "validator"

    def __init__(self, plugin: PluginInfo, sink: list[tuple[Any, Callable[..., Any]]]) -> None:
        self._plugin = plugin
        self._sink = sink

    def _check_id(self, spec_id: str) -> None:
        prefix = self._plugin.name + "."
        if not spec_id.startswith(prefix) or spec_id == prefix:
            raise PluginLoadError(
                f"plugin {self._plugin.name!r} ({self._plugin.distribution} "
                f"{self._plugin.version}) registered {self.kind} id outside its namespace",
                check="plugins.namespace",
                expected=prefix + "*",
                actual=spec_id,
            )


class ValidatorRegistrar(_Registrar):
    kind = "validator"

    def register(self, spec: ValidatorSpec, factory: ValidatorFactory) -> None:
        self._check_id(spec.id)
        unknown = [s for s in spec.binding_schemes if s not in BINDING_SCHEME_NAMES]
        if unknown:
            raise PluginLoadError(
                f"validator {spec.id} names an unknown binding scheme",
                check="plugins.binding_scheme",
                expected=sorted(BINDING_SCHEME_NAMES),
                actual=unknown,
            )
        _check_cli_options(spec)
        for names, declared, what in (
            (spec.workload_identity, spec.measurements, "workload_identity names measurements"),
            (spec.pinning_options, spec.policy_options, "pinning_options names policy options"),
            (spec.test_settings, spec.settings, "test_settings names settings"),
            (
                tuple(name for name, _ in spec.measurement_sizes),
                spec.measurements,
                "measurement_sizes names measurements",
            ),
        ):
            undeclared = sorted(set(names) - set(declared))
            if undeclared:
                raise PluginLoadError(
                    f"validator {spec.id}: {what} it does not declare",
                    check="plugins.spec",
                    expected=sorted(declared),
                    actual=undeclared,
                )
        self._sink.append((spec, factory))


_FLAG_START = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_FLAG_BODY = _FLAG_START | {"-"}


def _is_long_flag(flag: object) -> bool:
    """``--[a-z0-9][a-z0-9-]*``, read with string methods (no pattern to compile at start)."""
    return (
        isinstance(flag, str)
        and flag.startswith("--")
        and flag[2:3] in _FLAG_START
        and all(c in _FLAG_BODY for c in flag[3:])
    )


def _check_cli_options(spec: ValidatorSpec) -> None:
    """``verify-evidence`` options are long lowercase flags mapping to declared settings."""
    for option in spec.cli_options:
        if not isinstance(option, CliOption) or not _is_long_flag(option.flag):
            raise PluginLoadError(
                f"{spec.id} declares an invalid verify-evidence option",
                check="plugins.cli_options",
                expected="CliOption with a --long-flag",
                actual=repr(option),
            )
        if option.setting not in spec.settings:
            raise PluginLoadError(
                f"{spec.id} option {option.flag} maps to an undeclared setting",
                check="plugins.cli_options",
                expected=sorted(spec.settings),
                actual=option.setting,
            )


class IssuerRegistrar(_Registrar):
    kind = "issuer"

    def register(self, spec: IssuerSpec, factory: IssuerFactory) -> None:
        self._check_id(spec.id)
        if spec.binding_scheme not in BINDING_SCHEME_NAMES:
            raise PluginLoadError(
                f"issuer {spec.id} names an unknown binding scheme",
                check="plugins.binding_scheme",
                expected=sorted(BINDING_SCHEME_NAMES),
                actual=spec.binding_scheme,
            )
        self._sink.append((spec, factory))


def _check_issuer_fits(
    issuer: IssuerSpec, validators: Mapping[str, ValidatorSpec], plugin: PluginInfo
) -> None:
    """An issuer of this plugin's own validator must make evidence that validator reads.

    Else the mistake shows only on the client, as report data that "does not bind
    this connection's key": a plugin bug that reads like an attack.  (An issuer for
    another plugin's validator is not checked: that plugin may not be installed.)
    """
    if issuer.validator_id.partition(".")[0] != plugin.name:
        return
    validator = validators.get(issuer.validator_id)
    problems = []
    if validator is None:
        problems.append(
            f"names validator {issuer.validator_id!r}, which the plugin does not register"
        )
    else:
        if issuer.binding_scheme not in validator.binding_schemes:
            problems.append(
                f"binding scheme {issuer.binding_scheme!r} is not one of the validator's "
                f"{list(validator.binding_schemes)}"
            )
        if issuer.transport is not validator.transport:
            problems.append(
                f"transport {issuer.transport.value!r} is not the validator's "
                f"{validator.transport.value!r}"
            )
        if validator.oids and issuer.oid not in validator.oids:
            problems.append(
                f"OID {issuer.oid!r} is not one of the validator's {list(validator.oids)}"
            )
        if validator.insecure and not issuer.insecure:
            problems.append(
                "the validator is an insecure test validator, the issuer is not marked insecure"
            )
    if problems:
        raise PluginLoadError(
            f"issuer {issuer.id} of plugin {plugin.name!r} ({plugin.distribution} "
            f"{plugin.version}) does not fit its validator: "
            + "; ".join(problems)
            + " (atls_core.specs.issuer_spec derives a fitting spec)",
            check="plugins.spec",
            actual=issuer.id,
        )


_HOOKABLE = (types.FunctionType, types.MethodType, classmethod, staticmethod)
_MARK = hookspecs.hookimpl.project_name + "_impl"
"""What pluggy takes as a hook implementation (it skips every other attribute)."""


def _marked(value: object) -> bool:
    """Whether ``value`` is hookable and carries the ``@hookimpl`` mark (pluggy's test)."""
    if not (isinstance(value, _HOOKABLE) or inspect.isroutine(value)):
        return False
    inner = getattr(value, "__func__", None)
    return any(getattr(v, _MARK, None) is not None for v in (value, inner) if v is not None)


def _hook_candidates(module: types.ModuleType) -> types.ModuleType:
    """What pluggy is given of a plugin module: its ``atls_*`` names and whatever else is
    marked ``@hookimpl`` (so a misnamed hook is still refused), not its imports and helpers.

    pluggy inspects every attribute it is given; over a whole module that cost each
    ``atls plugins`` about as much again as registering.  The functions are the module's own.
    """
    wrapper = types.ModuleType(module.__name__, module.__doc__)
    own = vars(module)
    wrapper.__dict__.update({k: v for k, v in own.items() if k.startswith("atls_") or _marked(v)})
    if "__getattr__" in own:  # a module that makes names on demand: pluggy would see them
        wrapper.__dict__.update(
            {k: getattr(module, k) for k in dir(module) if k.startswith("atls_") and k not in own}
        )
    return wrapper


def _disabled_from_env(environ: Mapping[str, str]) -> frozenset[str]:
    raw = environ.get(DISABLE_ENV, "")
    return frozenset(p.strip() for p in raw.replace(",", " ").split() if p.strip())


class PluginManager:
    """Loads plugins on demand and keeps the registry consistent.

    ``entry_points`` exists for tests; by default the installed distributions'
    metadata is read (:mod:`atls_core.installed`), once per manager: a plugin
    installed while the process runs is seen by a new manager.  atls-core's own
    simulated TEE is an entry point like any other plugin (``insecure``), with
    no special case here.  A plugin's atls-core range is read from the metadata
    of the distribution that declares its entry point.
    """

    def __init__(
        self,
        *,
        disabled: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        entry_points: Sequence[EntryPointLike] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.disabled = frozenset(disabled) | _disabled_from_env(env)
        self._pm = pluggy.PluginManager("atls")
        self._pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._explicit_eps = entry_points
        self._discovered: list[EntryPointLike] | None = None
        self._available: list[PluginInfo] | None = None
        self._loaded: dict[str, PluginInfo] = {}
        self._errors: dict[str, PluginLoadError] = {}
        self._validators: dict[str, _Registered] = {}
        self._issuers: dict[str, _Registered] = {}
        self._oids: dict[str, str] = {}

    # -- discovery (metadata only) ------------------------------------------

    def _entry_points(self) -> list[EntryPointLike]:
        if self._explicit_eps is not None:
            return list(self._explicit_eps)
        with self._lock:
            if self._discovered is None:
                self._discovered = installed.entry_points(ENTRY_POINT_GROUP)
            return list(self._discovered)

    def available(self) -> list[PluginInfo]:
        """Every installed plugin, from metadata; imports nothing.

        A distribution installed twice (stale metadata beside an editable
        install) yields one entry per distinct (distribution, target).  Read once per
        manager, as the entry points are: every lookup asks.
        """
        with self._lock:
            if self._available is None:
                self._available = self._infos()
            return list(self._available)

    def _infos(self) -> list[PluginInfo]:
        infos: list[PluginInfo] = []
        seen: set[tuple[str, str, str]] = set()
        for ep in self._entry_points():
            dist = ep.dist
            info = PluginInfo(
                name=ep.name,
                distribution=dist.metadata["Name"] if dist is not None else "<unknown>",
                version=dist.version if dist is not None else "<unknown>",
                value=ep.value,
            )
            key = (info.name, info.distribution, info.value)
            if key not in seen:
                seen.add(key)
                infos.append(info)
        return infos

    def _find(self, name: str) -> PluginInfo:
        available = self.available()
        matches = [info for info in available if info.name == name]
        if not matches:
            names = sorted({info.name for info in available})
            # A typo gets the installed name, never an install command for the typo: nothing
            # is on PyPI yet, so `pip install atls-<typo>` would fetch whatever squats that name.
            hint = did_you_mean(name, names) or (
                "; install the distribution that provides it (until atls is published on PyPI, "
                "from this repository's wheels: pip install --find-links dist <distribution>)"
            )
            raise PluginNotFound(
                f"no installed plugin provides {name!r}{hint}",
                check="plugins.lookup",
                expected=f"one of the installed plugins {names}",
                actual=name,
            )
        if len({(m.distribution, m.value) for m in matches}) > 1:
            raise DuplicateRegistration(
                f"several distributions register the plugin name {name!r}",
                check="plugins.duplicate_name",
                actual=[f"{m.distribution} {m.version}" for m in matches],
            )
        return matches[0]

    # -- loading --------------------------------------------------------------

    def refusing(self, disabled: Iterable[str]) -> PluginManager:
        """This registry, refusing ``disabled`` plugins as well (configuration's
        ``atls.disable_plugins``).

        A view, not a second registry: it shares what is loaded and the observers, so
        nothing is imported twice, and it refuses a disabled plugin even when this
        manager has loaded it already.
        """
        extra = frozenset(disabled) - self.disabled
        if not extra:
            return self
        view = copy.copy(self)  # the same tables, lock and pluggy manager
        view.disabled = self.disabled | extra
        return view

    def load(self, name: str) -> PluginInfo:
        """Import and register one plugin (idempotent); raise loudly if it fails."""
        with self._lock:
            if name in self.disabled:  # first: a view (refusing) may share it loaded
                raise PluginNotFound(
                    f"plugin {name!r} is disabled (configuration's atls.disable_plugins "
                    f"or {DISABLE_ENV})",
                    check="plugins.disabled",
                    actual=name,
                )
            if name in self._loaded:
                return self._loaded[name]
            if name in self._errors:
                raise self._errors[name]
            info = self._find(name)
            try:
                self._load(info)
            except ATLSError as error:
                if isinstance(error, PluginLoadError):
                    self._errors[name] = error
                raise
            self._loaded[name] = info
            return info

    def _load(self, info: PluginInfo) -> None:
        module = self._import(info)
        try:
            self._pm.register(module, name=info.name)
        except ValueError:
            pass  # already registered by an earlier failed attempt
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {info.name!r} from {info.distribution} {info.version} "
                f"has invalid hooks: {type(exc).__name__}: {exc}",
                check="plugins.hooks",
            ) from exc
        self._check_hooks(info, module)
        others = [p for p in self._pm.get_plugins() if p is not module]
        validators: list[tuple[Any, Callable[..., Any]]] = []
        issuers: list[tuple[Any, Callable[..., Any]]] = []
        try:
            self._pm.subset_hook_caller("atls_register_validators", others)(
                registry=ValidatorRegistrar(info, validators)
            )
            self._pm.subset_hook_caller("atls_register_issuers", others)(
                registry=IssuerRegistrar(info, issuers)
            )
        except ATLSError:
            self._pm.unregister(module)
            raise
        except Exception as exc:
            self._pm.unregister(module)
            raise PluginLoadError(
                f"plugin {info.name!r} from {info.distribution} {info.version} failed to "
                f"register: {type(exc).__name__}: {exc}",
                check="plugins.register",
            ) from exc
        try:
            if not validators and not issuers and not self._observes(module):
                raise PluginLoadError(
                    f"plugin {info.name!r} ({info.distribution} {info.version}) registered "
                    f"nothing: no validator, no issuer and no observer (its hooks must be "
                    f"named {', '.join(_HOOKS)} and decorated with atls_core.hookimpl)",
                    check="plugins.nothing_registered",
                    actual=info.value,
                )
            self._commit(info, validators, issuers)
        except ATLSError:
            self._pm.unregister(module)  # a refused plugin keeps no hooks (observers included)
            raise

    def _check_hooks(self, info: PluginInfo, module: types.ModuleType) -> None:
        """Refuse a misnamed ``@hookimpl`` (pluggy's ``check_pending``) and an undecorated hook.

        pluggy ignores both silently, so the plugin would load "ok" and provide nothing,
        or less than its author wrote.
        """
        undecorated = [
            name
            for name in _HOOKS
            if callable(getattr(module, name, None))
            and self._pm.parse_hookimpl_opts(module, name) is None
        ]
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            callers = self._pm.get_hookcallers(module) or []
            unknown = [c.name for c in callers if not c.has_spec()]
            self._pm.unregister(module)
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.distribution} {info.version}) marks "
                f"{', '.join(unknown)} @hookimpl, which is no atls hook"
                + (did_you_mean(unknown[0], _HOOKS) if unknown else ""),
                check="plugins.hooks",
                expected=list(_HOOKS),
                actual=unknown,
            ) from None
        if undecorated:
            self._pm.unregister(module)
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.distribution} {info.version}) defines "
                f"{', '.join(undecorated)} without @hookimpl, so it is never called "
                f"(from atls_core import hookimpl)",
                check="plugins.hooks",
                actual=undecorated,
            )

    def _observes(self, module: types.ModuleType) -> bool:
        """Whether ``module`` implements the observer hook: an observer-only plugin is fine."""
        callers = self._pm.get_hookcallers(module) or []
        return any(c.name == "atls_appraisal_completed" for c in callers)

    def _import(self, info: PluginInfo) -> types.ModuleType:
        ep = next(
            ep for ep in self._entry_points() if ep.name == info.name and ep.value == info.value
        )
        self._check_core_range(info, ep.dist)
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {info.name!r} from {info.distribution} {info.version} failed to "
                f"import {info.value}: {type(exc).__name__}: {exc}",
                check="plugins.import",
            ) from exc
        if not isinstance(loaded, types.ModuleType):
            wrapper = types.ModuleType(f"atls_plugin_{info.name}")
            wrapper.__dict__.update(
                {k: getattr(loaded, k) for k in dir(loaded) if k.startswith("atls_")}
            )
            return wrapper
        return _hook_candidates(loaded)

    def _check_core_range(self, info: PluginInfo, dist: DistributionLike | None) -> None:
        """Refuse, before importing it, a plugin whose metadata excludes this atls-core."""
        if dist is None:
            return
        unmet = unmet_requirement(dist.requires or (), "atls-core", core_version)
        if unmet is not None:
            raise IncompatiblePlugin(
                f"{info.distribution} {info.version} requires atls-core"
                f"{unmet}, but atls-core {core_version} is running",
                check="plugins.core_version",
                expected=unmet,
                actual=core_version,
            )

    def _commit(
        self,
        info: PluginInfo,
        validators: list[tuple[Any, Callable[..., Any]]],
        issuers: list[tuple[Any, Callable[..., Any]]],
    ) -> None:
        """Check everything first, then register all or nothing."""
        new_oids: dict[str, str] = {}
        seen: set[str] = set()
        for spec, _ in validators:
            if spec.id in self._validators or spec.id in seen:
                raise DuplicateRegistration(
                    f"validator id {spec.id!r} registered twice",
                    check="plugins.duplicate_id",
                    actual=spec.id,
                )
            seen.add(spec.id)
            for oid in spec.oids:
                owner = self._oids.get(oid) or new_oids.get(oid)
                if owner is not None:
                    raise DuplicateRegistration(
                        f"certificate OID {oid} claimed by {owner} and {spec.id}",
                        check="plugins.duplicate_oid",
                        actual=oid,
                    )
                new_oids[oid] = spec.id
        issuer_ids = set()
        for spec, _ in issuers:
            if spec.id in self._issuers or spec.id in issuer_ids:
                raise DuplicateRegistration(
                    f"issuer id {spec.id!r} registered twice",
                    check="plugins.duplicate_id",
                    actual=spec.id,
                )
            issuer_ids.add(spec.id)
        own_validators = {spec.id: spec for spec, _ in validators}
        for spec, _ in issuers:
            _check_issuer_fits(spec, own_validators, info)
        for spec, factory in validators:
            guarded = _named_failures(factory, spec, f"validator {spec.id}", info)
            self._validators[spec.id] = _Registered(spec=spec, factory=guarded, plugin=info)
        for spec, factory in issuers:
            guarded = _named_failures(factory, spec, f"issuer {spec.id}", info)
            self._issuers[spec.id] = _Registered(spec=spec, factory=guarded, plugin=info)
        self._oids.update(new_oids)

    # -- lookups -------------------------------------------------------------

    def _registered(self, table: dict[str, _Registered], spec_id: str, kind: str) -> _Registered:
        plugin, dot, _ = spec_id.partition(".")
        if not dot:
            raise ConfigurationError(
                f"{kind} id must look like <plugin>.<name>",
                check="config.validator",
                actual=spec_id,
            )
        self.load(plugin)
        try:
            return table[spec_id]
        except KeyError:
            known = sorted(k for k in table if k.startswith(plugin + "."))
            raise PluginNotFound(
                f"plugin {plugin!r} provides no {kind} {spec_id!r}",
                check="plugins.lookup",
                expected=known,
                actual=spec_id,
            ) from None

    def validator_spec(self, validator_id: str) -> ValidatorSpec:
        spec: ValidatorSpec = self._registered(self._validators, validator_id, "validator").spec
        return spec

    def validator_factory(
        self, validator_id: str
    ) -> tuple[ValidatorSpec, ValidatorFactory, PluginInfo]:
        entry = self._registered(self._validators, validator_id, "validator")
        return entry.spec, entry.factory, entry.plugin

    def issuer_factory(self, issuer_id: str) -> tuple[IssuerSpec, IssuerFactory, PluginInfo]:
        entry = self._registered(self._issuers, issuer_id, "issuer")
        return entry.spec, entry.factory, entry.plugin

    def cli_options(self, validator_id: str) -> list[CliOption]:
        """``atls verify-evidence`` inputs the validator's spec declares."""
        return list(self.validator_spec(validator_id).cli_options)

    def notify(self, result: Any, host: str | None) -> None:
        """Tell observers; their failures are logged and never change the outcome.

        A plugin this manager refuses (:meth:`refusing`) is not told, even if another
        view of the registry loaded it.
        """
        for impl in self._pm.hook.atls_appraisal_completed.get_hookimpls():
            if impl.plugin_name in self.disabled:
                continue
            try:
                impl.function(result=result, host=host)
            except Exception:
                _log().exception("observer %s raised; ignored", impl.plugin_name)

    def load_all(self) -> list[PluginStatus]:
        """Try every plugin (for ``atls plugins``); failures are reported, not raised."""
        statuses = []
        for info in self.available():
            if info.name in self.disabled:
                statuses.append(PluginStatus(info=info, loaded=False, disabled=True))
                continue
            try:
                self.load(info.name)
            except ATLSError as error:
                statuses.append(PluginStatus(info=info, loaded=False, error=str(error)))
                continue
            statuses.append(
                PluginStatus(
                    info=info,
                    loaded=True,
                    validators=tuple(
                        e.spec for e in self._validators.values() if e.plugin.name == info.name
                    ),
                    issuers=tuple(
                        e.spec for e in self._issuers.values() if e.plugin.name == info.name
                    ),
                )
            )
        return statuses


_default: PluginManager | None = None
_default_lock = threading.Lock()


def default_manager() -> PluginManager:
    """The process-wide manager over installed entry points."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginManager()
        return _default

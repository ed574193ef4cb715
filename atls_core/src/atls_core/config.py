"""Configuration: which validator and policy apply to which host.

A TOML file (or the same structure as a dict)::

    [atls]
    allow_insecure_test_validators = false   # the simulated TEE is refused unless true
    disable_plugins = []

    [hosts."api.example.com"]                # exact name, or a pattern like "*.example.com"
    validator = "tdx.dcap"
    pki = false                              # true: also require a PKI-valid certificate
    [hosts."api.example.com".policy]
    accepted_tcb_statuses = ["UpToDate"]
    [hosts."api.example.com".settings]
    api_key = { "$env" = "ITA_API_KEY" }     # secrets by indirection only

Host names and patterns are compared in one canonical form
(:mod:`atls_core.hostnames`): lowercase, no trailing dot, IP literals as the
addresses they are, internationalized names as ``xn--`` labels.  Two rules
for one host in that form are refused, as is a name whose ASCII form depends
on the IDNA version of the library that resolves it.

Nothing in configuration can load code: a validator is named by id and found
among installed plugins.  Secrets are wrapped in :class:`Secret` so they never
appear in a repr, a log line or an error.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from atls_core.errors import ConfigurationError, did_you_mean
from atls_core.hostnames import canonical_host, canonical_pattern, is_glob
from atls_core.policy import Policy
from atls_core.secret import Secret, reveal

if TYPE_CHECKING:
    from pathlib import Path

    from atls_core.registry import PluginManager

__all__ = ["ATLSConfig", "HostRule", "Secret", "reveal"]


def _resolve(value: Any, where: str, base: Path | None, environ: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping):
        keys = set(value)
        if keys & {"$env", "$file"}:
            if len(keys) != 1:
                raise ConfigurationError(
                    f"{where}: a secret reference has exactly one key, $env or $file",
                    check="config.secret",
                )
            if "$env" in value:
                name = value["$env"]
                if not isinstance(name, str) or name not in environ:
                    raise ConfigurationError(
                        f"{where}: environment variable {name!r} is not set", check="config.secret"
                    )
                return Secret(environ[name], f"$env {name}")
            from pathlib import Path

            path = Path(str(value["$file"])).expanduser()
            if base is not None and not path.is_absolute():
                path = base / path
            try:
                text = path.read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"{where}: cannot read secret file {path}: {exc.strerror}",
                    check="config.secret",
                ) from None
            return Secret(text, f"$file {path}")
        return MappingProxyType(
            {k: _resolve(v, f"{where}.{k}", base, environ) for k, v in value.items()}
        )
    if isinstance(value, list):
        return tuple(_resolve(v, f"{where}[{i}]", base, environ) for i, v in enumerate(value))
    return value


def _canonical(instance: HostRule, attribute: attrs.Attribute[str], pattern: str) -> None:
    """A rule's pattern is stored canonical, so matching compares one form with one form."""
    canonical = canonical_pattern(pattern)
    if canonical != pattern:
        raise ConfigurationError(
            f"host pattern {pattern!r} is not in canonical form; write {canonical!r} "
            "(ATLSConfig.from_mapping and load canonicalise what they read)",
            check="config.hosts",
            actual=pattern,
        )


@attrs.frozen(kw_only=True)
class HostRule:
    pattern: str = attrs.field(validator=_canonical)
    """An exact host or a glob, in :mod:`atls_core.hostnames`' canonical form."""
    validator: str
    policy: Policy
    settings: Mapping[str, Any]
    pki: bool = False
    where: str = ""
    """``file:hosts."pattern"`` for error messages."""

    def matches(self, host: str) -> bool:
        """Whether this rule covers ``host``, in any spelling (it is canonicalised first).

        Raises :class:`ConfigurationError` for a host name with no single ASCII
        form (see :func:`~atls_core.hostnames.canonical_host`).
        """
        name = canonical_host(host)
        if is_glob(self.pattern):
            return fnmatch.fnmatchcase(name, self.pattern)
        return name == self.pattern


_TOP_KEYS = {"atls", "hosts"}
_ATLS_KEYS = {"allow_insecure_test_validators", "disable_plugins"}
_HOST_KEYS = {"validator", "policy", "settings", "pki"}


def _table(value: Any, name: str, keys: set[str]) -> Mapping[str, Any]:
    """``value``, a table of no key but ``keys``; ``name`` says where it is."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a table", check="config.keys")
    unknown = sorted(set(value) - keys, key=str)
    if unknown:
        raise ConfigurationError(
            f"{name}: unknown key(s) {unknown}" + did_you_mean(unknown[0], keys),
            check="config.keys",
        )
    return value


@attrs.frozen(kw_only=True)
class ATLSConfig:
    hosts: tuple[HostRule, ...] = ()
    allow_insecure_test_validators: bool = False
    disable_plugins: frozenset[str] = frozenset()
    source: str = "<dict>"

    def __attrs_post_init__(self) -> None:
        """Refuse two rules for one pattern: which of them applied would be an accident."""
        seen: dict[str, HostRule] = {}
        for rule in self.hosts:
            first = seen.setdefault(rule.pattern, rule)
            if first is not rule:
                raise ConfigurationError(
                    f"{first.where or repr(first.pattern)} and {rule.where or repr(rule.pattern)} "
                    f"are both rules for {rule.pattern!r} (host names are compared lowercase, "
                    "without a trailing dot, internationalized names in their xn-- form); "
                    "keep one",
                    check="config.hosts",
                    actual=rule.pattern,
                )

    def rule_for(self, host: str) -> HostRule:
        """The rule for ``host``, in any spelling of it (see :mod:`atls_core.hostnames`).

        Exact names win over patterns; the longest pattern wins among patterns.
        Raises :class:`ConfigurationError` when no rule matches, or when ``host``
        has no single ASCII form.
        """
        name = canonical_host(host)
        exact = [r for r in self.hosts if not is_glob(r.pattern) and r.pattern == name]
        if exact:
            return exact[0]
        patterns = sorted(
            (r for r in self.hosts if r.matches(name)), key=lambda r: len(r.pattern), reverse=True
        )
        if patterns:
            return patterns[0]
        raise ConfigurationError(
            f"no validator is configured for host {host!r} in {self.source}",
            check="config.hosts",
            expected=[r.pattern for r in self.hosts],
            actual=host,
        )

    def check(self, manager: PluginManager | None = None) -> ATLSConfig:
        """Resolve every rule against the installed plugins; raise on the first mistake.

        Each validator id must name an installed, enabled validator (insecure
        ones only with ``allow_insecure_test_validators``), and every setting,
        policy option and reference value must be one its spec declares.  Errors
        name the file, the host rule and the key, so a typo is found when the
        configuration is loaded rather than as a refusal at the first connection.
        Returns ``self``.
        """
        from atls_core.registry import default_manager

        manager = manager or default_manager()
        for rule in self.hosts:
            self.check_rule(rule, manager)
        return self

    def check_rule(self, rule: HostRule, manager: PluginManager | None = None) -> None:
        """:meth:`check` for one host rule (``atls config check`` reports every rule's)."""
        from atls_core.errors import ATLSError
        from atls_core.registry import default_manager
        from atls_core.selection import check_against_spec

        if rule.validator.partition(".")[0] in self.disable_plugins:
            raise ConfigurationError(
                f"{rule.where}: plugin of {rule.validator} is disabled by atls.disable_plugins",
                check="config.disabled",
            )
        try:
            spec = (manager or default_manager()).validator_spec(rule.validator)
        except ConfigurationError:
            raise
        except ATLSError as error:
            raise error.in_configuration(
                f"{rule.where}.validator", check="config.validator"
            ) from error
        check_against_spec(
            spec,
            settings=rule.settings,
            policy=rule.policy,
            allow_insecure=self.allow_insecure_test_validators,
            where=rule.where,
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        manager: PluginManager | None = None,
        check: bool = True,
    ) -> ATLSConfig:
        """Read a TOML file and (unless ``check=False``) :meth:`check` it."""
        import tomllib  # only for a file: a client configured in code never pays for it
        from pathlib import Path

        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{file}: not UTF-8 text (TOML files are UTF-8)", check="config.file"
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read {file}: {exc.strerror}", check="config.file"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{file}: invalid TOML: {exc}", check="config.file") from None
        return cls.from_mapping(
            data,
            source=str(file),
            base=file.parent,
            environ=environ,
            manager=manager,
            check=check,
        )

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<dict>",
        base: Path | None = None,
        environ: Mapping[str, str] | None = None,
        manager: PluginManager | None = None,
        check: bool = True,
    ) -> ATLSConfig:
        """Build from TOML-shaped data and (unless ``check=False``) :meth:`check` it."""
        env = os.environ if environ is None else environ
        unknown = sorted(set(data) - _TOP_KEYS, key=str)
        if unknown:
            raise ConfigurationError(
                f"{source}: unknown top-level key(s) {unknown}"
                + did_you_mean(unknown[0], _TOP_KEYS),
                check="config.keys",
            )
        general = _table(data.get("atls", {}), f"{source}: [atls]", _ATLS_KEYS)
        insecure = general.get("allow_insecure_test_validators", False)
        if not isinstance(insecure, bool):
            raise ConfigurationError(
                f"{source}: atls.allow_insecure_test_validators must be true or false",
                check="config.keys",
            )
        disabled = general.get("disable_plugins", [])
        if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
            raise ConfigurationError(
                f"{source}: atls.disable_plugins must be a list of names", check="config.keys"
            )
        hosts = data.get("hosts", {})
        if not isinstance(hosts, Mapping):
            raise ConfigurationError(f"{source}: [hosts] must be a table", check="config.keys")
        rules = []
        for pattern, body in hosts.items():
            where = f'{source}: hosts."{pattern}"'
            body = _table(body, where, _HOST_KEYS)
            validator = body.get("validator")
            if not isinstance(validator, str) or "." not in validator:
                raise ConfigurationError(
                    f"{where}.validator must be a validator id like 'tdx.dcap'",
                    check="config.validator",
                    actual=validator,
                )
            pki = body.get("pki", False)
            if not isinstance(pki, bool):
                raise ConfigurationError(f"{where}.pki must be true or false", check="config.keys")
            settings = body.get("settings", {})
            if not isinstance(settings, Mapping):
                raise ConfigurationError(f"{where}.settings must be a table", check="config.keys")
            try:
                canonical = canonical_pattern(pattern)
            except ConfigurationError as error:
                raise error.in_configuration(where) from None
            rules.append(
                HostRule(
                    pattern=canonical,
                    validator=validator,
                    policy=Policy.from_mapping(body.get("policy", {}), where=f"{where}.policy"),
                    settings=_resolve(settings, f"{where}.settings", base, env),
                    pki=pki,
                    where=where,
                )
            )
        config = cls(
            hosts=tuple(rules),
            allow_insecure_test_validators=insecure,
            disable_plugins=frozenset(disabled),
            source=source,
        )
        return config.check(manager) if check else config

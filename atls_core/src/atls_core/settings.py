"""Validator settings declared once, as a class, and read by one set of rules.

A plugin writes its settings as a :func:`settings_class` (a frozen,
keyword-only attrs class) whose fields come from :func:`setting`;
:func:`load` turns a ``[hosts."x".settings]`` mapping into
an instance, and :func:`spec_inputs` is what the ``ValidatorSpec`` takes from
it (``ValidatorSpec(..., **spec_inputs(MySettings, cli_options))``: the keys,
the tests-only knobs and the ``atls verify-evidence`` options over them), so
every name is written once.

Plugins used to read settings with their own small functions, which
disagreed (``"5"`` was a number in one plugin and not in another, a bare
string was a list in one and refused in another).  The rules, for all:

* ``None`` means "not given": the field's default applies, or the setting is
  required;
* seconds are a TOML number (int or float: not a bool, not text such as
  ``"5"``) and finite; :func:`seconds` is positive unless told otherwise;
  a whole number (:func:`integer`) is a TOML integer, within its bounds;
* a flag is a TOML boolean: ``"true"`` and ``1`` are refused;
* a list is a TOML array: a bare string is refused, as the core's policy
  lists refuse it, so ``"x"`` never silently means ``["x"]``;
* text is a non-blank string or a :class:`~atls_core.secret.Secret`
  (``{ "$env" = ... }``, ``{ "$file" = ... }``); an error shows a secret
  only by where it came from, never its value;
* a URL is ``https`` with a host and no fragment; plain ``http`` only to a
  loopback host, and only when the class's tests-only flag named by
  ``url(http_knob=...)`` is true; errors show a URL by :func:`redact_url`;
* a path is expanded (``~``) and must exist, unless it names something the
  plugin creates or reads later (:func:`path`);
* a certificate is a path to a PEM or DER file, or those bytes, and is kept as
  DER; a tests-only one (a custom root) needs the class's tests-only flag.

Every refusal is a :class:`ConfigurationError` with check ``config.settings``
(or the ``check`` given to :func:`load`) that names the setting
(``settings.timeout is out of range ...``).  Rules across settings go in the
class's ``__attrs_post_init__`` and raise :class:`Invalid`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict, TypeVar, cast, dataclass_transform

import attrs

from atls_core.errors import ConfigurationError
from atls_core.interfaces import CliOption, refuse_unknown_names
from atls_core.redact import redact_url
from atls_core.secret import Secret

if TYPE_CHECKING:  # imported where a value is read: declaring a class (every listing) needs none
    import datetime as dt
    from pathlib import Path

__all__ = [
    "Coerce",
    "Invalid",
    "Reading",
    "SpecInputs",
    "certificate",
    "check_url",
    "duration",
    "existing_path",
    "flag",
    "hex_bytes",
    "integer",
    "is_loopback",
    "joined",
    "list_of",
    "load",
    "path",
    "secret",
    "secret_or_text",
    "seconds",
    "setting",
    "setting_names",
    "settings_class",
    "spec_inputs",
    "table",
    "text",
    "url",
]

T = TypeVar("T")
V = TypeVar("V")
Coerce: TypeAlias = Callable[[Any, "Reading"], V]
"""Reads one raw value into its typed form, or raises :class:`Invalid`."""

_METADATA = "atls_core.settings"
_HEX = r"[0-9a-fA-F]*"
"""Compiled when a hex setting is first read (``re`` keeps it), not when a class declares one."""


class Invalid(ValueError):
    """A value is refused; :func:`load` turns it into a ``ConfigurationError`` naming the setting.

    ``setting`` names it when the rule spans settings (raised from a class's
    ``__attrs_post_init__``); inside a coercer the setting being read is known.
    """

    def __init__(
        self,
        why: str,
        *,
        actual: Any = None,
        expected: Any = None,
        setting: str | None = None,
        check: str | None = None,
    ) -> None:
        super().__init__(why)
        self.why = why
        self.actual = actual
        self.expected = expected
        self.setting = setting
        self.check = check
        """A more specific check name than the load's (``config.dcap.root_ca``)."""
        self.at = ""
        """Where inside the value (``[2]`` for a list item)."""


class _Declared:
    """How a field is read (its attrs metadata): a plain class, since every plugin listing
    imports this module and an attrs class costs a start more to build than it gives here."""

    __slots__ = ("coerce", "hint", "test_only")

    def __init__(self, coerce: Coerce[Any], test_only: bool, hint: str) -> None:
        self.coerce = coerce
        self.test_only = test_only
        self.hint = hint


def setting(
    coerce: Coerce[Any],
    *,
    default: Any = attrs.NOTHING,
    test_only: bool = False,
    hint: str = "",
    repr: bool | Callable[[Any], str] = True,
) -> Any:
    """A settings field read by ``coerce``; without ``default`` it is required.

    ``test_only`` marks a tests-only knob (``setting_names(cls, tests_only=True)``);
    ``hint`` ends every refusal of the setting (how to write it right); ``repr``
    is attrs' (``False`` or a function for a value that must not be shown whole).
    """
    declared = _Declared(coerce, test_only, hint)
    return attrs.field(default=default, repr=repr, metadata={_METADATA: declared})


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(setting,))
def settings_class(cls: type[T]) -> type[T]:
    """A frozen, keyword-only attrs class of :func:`setting` fields (type checkers see the
    defaults: a field without one is required)."""
    return attrs.frozen(kw_only=True)(cls)


def _declared(cls: type) -> dict[str, tuple[attrs.Attribute[Any], _Declared]]:
    fields: dict[str, tuple[attrs.Attribute[Any], _Declared]] = {}
    for field in attrs.fields(cast(Any, cls)):
        declared = field.metadata.get(_METADATA)
        if not isinstance(declared, _Declared):
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with setting()")
        fields[field.name] = (field, declared)
    return fields


def setting_names(cls: type, *, tests_only: bool = False) -> tuple[str, ...]:
    """The keys a settings class accepts, for ``ValidatorSpec(settings=...)``; with
    ``tests_only``, its tests-only knobs, for ``ValidatorSpec(test_settings=...)``."""
    declared = _declared(cls)
    return tuple(name for name, (_, d) in declared.items() if d.test_only or not tests_only)


class SpecInputs(TypedDict):
    """The ``ValidatorSpec`` fields a validator's settings decide (``**`` them into it)."""

    settings: tuple[str, ...]
    test_settings: tuple[str, ...]
    cli_options: tuple[CliOption, ...]


def spec_inputs(cls: type, cli_options: Iterable[CliOption] = ()) -> SpecInputs:
    """A settings class's keys and tests-only knobs, and command-line options over its keys."""
    names = setting_names(cls)
    options = tuple(cli_options)
    for option in options:
        if option.setting not in names:
            raise TypeError(f"{option.flag} sets {option.setting}, not a {cls.__name__} setting")
    return SpecInputs(
        settings=names, test_settings=setting_names(cls, tests_only=True), cli_options=options
    )


def joined(*parts: SpecInputs, settings: Iterable[str] = ()) -> SpecInputs:
    """Several sources' inputs for one spec, plus ``settings`` the validator reads itself."""
    return SpecInputs(
        settings=(*(n for p in parts for n in p["settings"]), *settings),
        test_settings=tuple(n for p in parts for n in p["test_settings"]),
        cli_options=tuple(o for p in parts for o in p["cli_options"]),
    )


def _error(
    subject: str, problem: Invalid, hint: str = "", check: str = "config.settings"
) -> ConfigurationError:
    message = f"{subject}{problem.at} {problem.why}" + (f": {hint}" if hint else "")
    return ConfigurationError(
        message,
        check=problem.check or check,
        expected=problem.expected,
        actual=problem.actual,
    )


class Reading:
    """What a coercer may ask while one setting is read."""

    def __init__(self, loader: _Loader, name: str) -> None:
        self._loader = loader
        self.name = name
        self.check = loader.check
        """The check name the load reports refusals under."""

    def knob(self, name: str) -> bool:
        """The value of the class's tests-only flag ``name`` (read now if not yet)."""
        _, declared = self._loader.fields[name]
        value = self._loader.value(name)
        if not declared.test_only or not isinstance(value, bool):
            raise TypeError(f"{name} is not a tests-only flag (setting(flag(), test_only=True))")
        return value


class _Loader:
    def __init__(self, cls: type, settings: Mapping[str, Any], where: str, check: str) -> None:
        self.fields = _declared(cls)
        self.settings = settings
        self.where = where
        self.check = check
        self.values: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        field, declared = self.fields[name]
        raw = self.settings.get(name)
        try:
            default: Any = field.default
            if raw is not None:
                value = declared.coerce(raw, Reading(self, name))
            elif isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                value = default.factory()
            elif default is attrs.NOTHING:
                raise Invalid("is required")
            else:
                value = default
        except Invalid as problem:
            raise self.error(name, problem) from None
        self.values[name] = value
        return value

    def error(self, name: str | None, problem: Invalid) -> ConfigurationError:
        name = problem.setting or name
        if name is None:
            return _error(f"{self.where}:", problem, check=self.check)
        hint = self.fields[name][1].hint if name in self.fields else ""
        return _error(f"{self.where}.{name}", problem, hint, self.check)


def load(
    cls: type[T],
    settings: Mapping[str, Any],
    *,
    where: str = "settings",
    partial: bool = False,
    check: str = "config.settings",
) -> T:
    """Read ``settings`` into ``cls``; every mistake is ``ConfigurationError(check)``.

    Unknown keys are refused unless ``partial`` (the class reads its part of
    a larger mapping whose other keys someone else checks).
    """
    loader = _Loader(cls, settings, where, check)
    if not partial:
        refuse_unknown_names("settings", settings, tuple(loader.fields), where=where)
    values = {str(loader.fields[name][0].alias): loader.value(name) for name in loader.fields}
    try:
        return cls(**values)
    except Invalid as problem:
        raise loader.error(None, problem) from None


# -- the rules ---------------------------------------------------------------------


def _shown(value: Any) -> Any:
    """What an error may show of a value: a secret only by where it came from."""
    if isinstance(value, (Secret, str)):
        return repr(value)  # quoted: "30" must not read as the number 30
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return type(value).__name__


def _text(value: Any) -> str:
    plain = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(plain, str) or not plain.strip():
        raise Invalid("must be a non-empty string", actual=_shown(value))
    return plain


def text(*, choices: Collection[str] | None = None) -> Coerce[str]:
    """A non-blank string, or a :class:`Secret` revealed; one of ``choices`` if given."""

    def coerce(value: Any, _reading: Reading) -> str:
        result = _text(value)
        if choices is not None and result not in choices:
            raise Invalid("is not a known choice", expected=sorted(choices), actual=_shown(value))
        return result

    return coerce


def secret() -> Coerce[Secret]:
    """A :class:`Secret` only: plain text is refused, so it never sits in a config file."""

    def coerce(value: Any, _reading: Reading) -> Secret:
        if not isinstance(value, Secret):
            raise Invalid("must not be plain text", actual=type(value).__name__)
        _text(value)
        return value

    return coerce


def secret_or_text() -> Coerce[str | Secret]:
    """A non-blank string or a :class:`Secret`, kept wrapped so it stays masked downstream."""

    def coerce(value: Any, _reading: Reading) -> str | Secret:
        _text(value)
        return cast("str | Secret", value)

    return coerce


def flag() -> Coerce[bool]:
    """A TOML boolean; text (``"true"``) and numbers are refused."""

    def coerce(value: Any, _reading: Reading) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false", actual=_shown(value))
        return value

    return coerce


def seconds(*, positive: bool = True, at_most: float | None = None) -> Coerce[float]:
    """A finite number of seconds, ``> 0`` (``>= 0`` unless ``positive``), at most ``at_most``."""
    low = "> 0" if positive else ">= 0"
    bounds = f"{low} s" if at_most is None else f"{low} and <= {at_most:g} s"

    def coerce(value: Any, _reading: Reading) -> float:
        number = math.nan
        if not isinstance(value, bool) and isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        if not math.isfinite(number):
            raise Invalid("must be a number of seconds", actual=_shown(value))
        if number < 0 or (positive and number == 0) or (at_most is not None and number > at_most):
            raise Invalid("is out of range", expected=bounds, actual=value)
        return number

    return coerce


def integer(*, at_least: int | None = None, at_most: int | None = None) -> Coerce[int]:
    """A whole number (a TOML integer: not a bool, a float or text such as ``"5"``), within
    the bounds given; what ``CliOption(kind="integer")`` passes from the command line."""
    bounds = " and ".join(
        f"{sign} {limit}"
        for sign, limit in ((">=", at_least), ("<=", at_most))
        if limit is not None
    )

    def coerce(value: Any, _reading: Reading) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("must be a whole number", actual=_shown(value))
        if (at_least is not None and value < at_least) or (at_most is not None and value > at_most):
            raise Invalid("is out of range", expected=bounds, actual=value)
        return value

    return coerce


def duration(*, positive: bool = False, at_most: float | None = None) -> Coerce[dt.timedelta]:
    """:func:`seconds` as a ``timedelta`` (a leeway: zero allowed by default)."""
    read = seconds(positive=positive, at_most=at_most)

    def coerce(value: Any, reading: Reading) -> dt.timedelta:
        import datetime as dt

        return dt.timedelta(seconds=read(value, reading))

    return coerce


def hex_bytes(size: int) -> Coerce[bytes]:
    """Exactly ``size`` bytes written as ``2 * size`` hex digits (no prefix, no spaces)."""

    def coerce(value: Any, _reading: Reading) -> bytes:
        digits = _text(value)
        if len(digits) != 2 * size or not re.fullmatch(_HEX, digits):
            raise Invalid(
                f"must be {size} bytes written as {2 * size} hex digits", actual=_shown(value)
            )
        return bytes.fromhex(digits)

    return coerce


def list_of(item: Coerce[V], *, non_empty: bool = False) -> Coerce[tuple[V, ...]]:
    """A TOML array, each element read by ``item``; a bare string is refused."""

    def coerce(value: Any, reading: Reading) -> tuple[V, ...]:
        if not isinstance(value, (list, tuple)):
            raise Invalid('must be a list (one value is written ["..."])', actual=_shown(value))
        if non_empty and not value:
            raise Invalid("must not be empty")
        result = []
        for index, element in enumerate(value):
            try:
                result.append(item(element, reading))
            except Invalid as problem:
                problem.at = f"[{index}]{problem.at}"
                raise
        return tuple(result)

    return coerce


def table() -> Coerce[Mapping[str, Any]]:
    """A TOML table (an inline JSON object in code), read-only."""

    def coerce(value: Any, _reading: Reading) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise Invalid("must be a table", actual=_shown(value))
        return MappingProxyType(dict(value))

    return coerce


def _path(value: Any) -> Path:
    from pathlib import Path

    raw = os.fsdecode(value) if isinstance(value, os.PathLike) else _text(value)
    return Path(raw).expanduser()


def existing_path(*, directory: bool = False) -> Coerce[Path]:
    """A path (``~`` expanded) to an existing file, or directory."""
    kind = "directory" if directory else "file"

    def coerce(value: Any, _reading: Reading) -> Path:
        found = _path(value)
        if not (found.is_dir() if directory else found.is_file()):
            shown = _shown(value) if isinstance(value, Secret) else str(found)
            raise Invalid(f"must name an existing {kind}", actual=shown)
        return found

    return coerce


def path() -> Coerce[Path]:
    """A path (``~`` expanded) that need not exist yet: a cache to create, a file
    read when it is needed (its absence is then that moment's error)."""
    return lambda value, _reading: _path(value)


def certificate(*, knob: str | None = None) -> Coerce[bytes]:
    """The DER of one X.509 certificate: a path to a PEM or DER file, or those bytes.

    With ``knob`` it is a tests-only anchor (a synthetic root): refused, before
    the file is read, unless the class's tests-only flag ``knob`` is true, under
    check ``<load's check>.<setting>``.
    """

    def coerce(value: Any, reading: Reading) -> bytes:
        from cryptography import x509  # when a certificate is read, not when a class declares one
        from cryptography.hazmat.primitives.serialization import Encoding

        if knob is not None and not reading.knob(knob):
            raise Invalid(
                f"is for tests only and needs {knob} = true",
                check=f"{reading.check}.{reading.name}",
            )
        if isinstance(value, (bytes, bytearray)):
            data, shown = bytes(value), "the given bytes"
        else:
            where = _path(value)
            shown = _shown(value) if isinstance(value, Secret) else str(where)
            try:
                data = where.read_bytes()
            except OSError as exc:
                raise Invalid(f"cannot be read ({exc.strerror})", actual=shown) from None
        try:
            pem = b"-----BEGIN" in data
            cert = (x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate)(data)
        except ValueError:
            raise Invalid("is not a PEM or DER certificate", actual=shown) from None
        return cert.public_bytes(Encoding.DER)

    return coerce


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address literal (names are not resolved: DNS may lie)."""
    import ipaddress

    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    return host.lower() == "localhost"


def _url(
    value: Any, *, http_knob: str | None, allow_http: bool, origin: bool, plain_http: bool = False
) -> str:
    import urllib.parse

    raw = _text(value).strip()
    shown = _shown(value) if isinstance(value, Secret) else redact_url(raw)
    try:
        parts = urllib.parse.urlsplit(raw)
        host = parts.hostname
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        raise Invalid("is not a URL", actual=shown) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host or parts.fragment:
        kind = "http(s)" if plain_http else "https"
        raise Invalid(f"must be an {kind} URL with a host and no fragment", actual=shown)
    if scheme == "http" and not plain_http and not (allow_http and is_loopback(host)):
        how = f" (plain http only to loopback, with {http_knob} = true, for tests)"
        raise Invalid("must be an https URL" + (how if http_knob else ""), actual=shown)
    if origin:
        if parts.path not in ("", "/") or parts.query or "@" in parts.netloc:
            raise Invalid(
                "must be an origin like https://host[:port] (no path, query or credentials)",
                actual=shown,
            )
        return f"{scheme}://{parts.netloc.lower()}"
    return raw


def url(
    *, http_knob: str | None = None, origin: bool = False, plain_http: bool = False
) -> Coerce[str]:
    """An https URL (revealed if a :class:`Secret`); with ``origin``, ``scheme://host[:port]``.

    ``http_knob`` names the class's tests-only flag that allows plain http to
    a loopback host (a stand-in service); without it http is refused, unless
    ``plain_http``: a service whose answers are signed end to end (DCAP
    collateral), where TLS adds no trust and an operator may run it over http.
    """

    def coerce(value: Any, reading: Reading) -> str:
        allow_http = http_knob is not None and reading.knob(http_knob)
        return _url(
            value, http_knob=http_knob, allow_http=allow_http, origin=origin, plain_http=plain_http
        )

    return coerce


def check_url(
    value: Any, *, name: str, where: str = "settings", allow_http_loopback: bool = False
) -> str:
    """:func:`url`'s rule for one value outside a settings class."""
    try:
        return _url(value, http_knob=None, allow_http=allow_http_loopback, origin=False)
    except Invalid as problem:
        raise _error(f"{where}.{name}", problem) from None

"""Appraisal policy: what a relying party accepts.

Defaults fail closed: only ``UpToDate`` TCBs, no advisories, never a debug TEE,
and never an unpinned workload (``allow_any_workload`` is the explicit opt-out).
Reference values are validator-specific (MRTD, MRENCLAVE, hostdata...) and each is
either enforced or warn-only.  ``options`` carries validator-specific knobs whose
names the validator's spec declares; the registry refuses unknown ones.

Evidence without a TCB verdict (a token whose service judged the TCB itself, the
simulated TEE) is the one place where the default differs from an explicit
setting: with ``accepted_tcb_statuses`` left at its default such evidence is
accepted with a warning (the validator says why it has no verdict); a policy
that *lists* accepted statuses refuses it, because no listed status was shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from atls_core.errors import ConfigurationError, did_you_mean

__all__ = ["TCB_STATUSES", "Policy", "ReferenceValue", "is_unset"]

TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "TDRelaunchAdvised",
)
"""Intel's TCB statuses (dcap-qvl's list, including ``TDRelaunchAdvised`` for TDX quotes
v5 whose TEE_TCB_SVN2 is current); other TEEs map onto these names."""

DEFAULT_TCB_STATUSES = frozenset({"UpToDate"})

COMMON_KEYS = (
    "id",
    "accepted_tcb_statuses",
    "accepted_advisory_ids",
    "allow_debug",
    "allow_any_workload",
    "max_age",
    "require_nonce",
    "reference_values",
)
"""Policy keys every validator understands; anything else is a validator option."""

_COMMON_KEYS = {
    "id",
    "allow_any_workload",
    "accepted_tcb_statuses",
    "accepted_advisory_ids",
    "allow_debug",
    "max_age",
    "require_nonce",
    "reference_values",
}


def _normalise(value: str) -> str:
    text = value.strip()
    if text.lower().startswith("0x"):
        text = text[2:]
    return text.lower()


def _items(values: Iterable[str]) -> Iterable[str]:
    # A bare string is iterable: frozenset("12") would accept "1" and "2".
    if isinstance(values, (str, bytes)):
        raise ConfigurationError(
            "expected a list of strings, not a single string", check="config.policy"
        )
    return values


_HEX_DIGITS = frozenset("0123456789abcdef")


def _reference_text(value: Any) -> str:
    """One accepted measurement value as lowercase hex (bytes are hex-encoded).

    Measurements are recorded as lowercase hex (decimal SVNs are digits, also
    hex-safe), so a value with other characters could never match: refuse it
    when the policy is built rather than at the first connection.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigurationError(
            f"a reference value must be a hex string, got {type(value).__name__}",
            check="config.reference_values",
        )
    text = _normalise(str(value))
    if not text:
        raise ConfigurationError("a reference value is empty", check="config.reference_values")
    if not set(text) <= _HEX_DIGITS:
        raise ConfigurationError(
            "a reference value must be hex digits (optional 0x)",
            check="config.reference_values",
            actual=str(value),
        )
    return text


def _normalised_set(values: Iterable[Any]) -> frozenset[str]:
    if isinstance(values, (str, bytes, bytearray, int)):
        values = [values]
    return frozenset(_reference_text(v) for v in values)


def _str_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(_items(values))


def _upper_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.upper() for v in _items(values))


def is_unset(value: str) -> bool:
    """Whether a measurement (lowercase hex) is all zeros: the value of one that is not set,
    which any workload shows and so identifies none."""
    return not value.strip("0")


@attrs.frozen(kw_only=True)
class ReferenceValue:
    """Accepted values for one measurement (any of them matches)."""

    accepted: frozenset[str] = attrs.field(converter=_normalised_set)
    enforce: bool = True
    admits_unset: bool = attrs.field(init=False, repr=False, eq=False)
    """Whether an all-zero value is accepted: for an identity measurement that is "not
    set" (a TD without MRCONFIGID or MROWNER), which any workload can show."""

    @admits_unset.default
    def _any_all_zero(self) -> bool:  # once, not at every appraisal's pinning rule
        return any(map(is_unset, self.accepted))

    def matches(self, actual: str) -> bool:
        # Recorded measurements are lowercase hex already: normalise only what is not found.
        return actual in self.accepted or _normalise(actual) in self.accepted

    def to_dict(self) -> dict[str, Any]:
        return {"values": sorted(self.accepted), "enforce": self.enforce}


def _frozen_refs(value: Mapping[str, Any]) -> Mapping[str, ReferenceValue]:
    """Reference values as given in code: a ``ReferenceValue``, a hex string or
    bytes, a list of them, or a ``{"values": [...], "enforce": bool}`` table."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            "reference_values must be a mapping of measurement name to values",
            check="config.reference_values",
        )
    coerced: dict[str, ReferenceValue] = {}
    for name, spec in value.items():
        if isinstance(spec, ReferenceValue):
            coerced[name] = spec
        elif isinstance(spec, Mapping):
            coerced.update(_reference_values({name: spec}, "policy.reference_values"))
        else:
            coerced[name] = ReferenceValue(accepted=spec)
        if not coerced[name].accepted:
            raise ConfigurationError(
                f"policy.reference_values.{name} lists no value", check="config.reference_values"
            )
    return MappingProxyType(coerced)


def _tcb_statuses(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else _str_set(values)


def _frozen_options(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Policy:
    id: str = "default"
    accepted_tcb_statuses: frozenset[str] | None = attrs.field(
        default=None, converter=_tcb_statuses
    )
    """``None``: the default (``UpToDate`` only; evidence without a TCB verdict is
    accepted with a warning).  A listed set also refuses evidence without a verdict."""
    accepted_advisory_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_upper_set)
    allow_debug: bool = False
    allow_any_workload: bool = False
    """Accept evidence whose workload the policy does not pin (status ``warning``);
    for exploring only: any genuine TEE running anything passes."""
    max_age: dt.timedelta | None = None
    """Oldest acceptable evidence (tokens' ``iat``, collateral issue dates...)."""
    require_nonce: bool = False
    """Refuse key-only freshness (static certificates)."""
    reference_values: Mapping[str, ReferenceValue] = attrs.field(
        factory=dict, converter=_frozen_refs
    )
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_options)
    _digest: list[str] = attrs.field(factory=list, init=False, repr=False, eq=False)

    @property
    def tcb_statuses(self) -> frozenset[str]:
        """The TCB statuses accepted, default included."""
        if self.accepted_tcb_statuses is None:
            return DEFAULT_TCB_STATUSES
        return self.accepted_tcb_statuses

    @property
    def tcb_status_required(self) -> bool:
        """Evidence without a TCB verdict is refused (statuses were listed explicitly)."""
        return self.accepted_tcb_statuses is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "accepted_tcb_statuses": sorted(self.tcb_statuses),
            "evidence_without_tcb": "refuse" if self.tcb_status_required else "warn",
            "accepted_advisory_ids": sorted(self.accepted_advisory_ids),
            "allow_debug": self.allow_debug,
            "allow_any_workload": self.allow_any_workload,
            "max_age": self.max_age.total_seconds() if self.max_age is not None else None,
            "require_nonce": self.require_nonce,
            "reference_values": {k: v.to_dict() for k, v in sorted(self.reference_values.items())},
            "options": _jsonable(dict(self.options)),
        }

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: results say exactly what was applied.

        Computed once per policy (a policy is frozen) and kept.
        """
        if not self._digest:
            canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            self._digest.append(hashlib.sha256(canonical.encode()).hexdigest())
        return self._digest[0]

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "policy") -> Policy:
        """Build a policy from TOML/dict data; errors name the offending key.

        Keys other than the common ones are validator-specific options.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where} must be a table", check="config.policy")
        kwargs: dict[str, Any] = {}
        if "id" in data:
            kwargs["id"] = _string(data["id"], f"{where}.id")
        if "accepted_tcb_statuses" in data:
            statuses = _strings(data["accepted_tcb_statuses"], f"{where}.accepted_tcb_statuses")
            unknown = sorted(set(statuses) - set(TCB_STATUSES))
            if unknown:
                raise ConfigurationError(
                    f"{where}.accepted_tcb_statuses: unknown status"
                    + did_you_mean(unknown[0], TCB_STATUSES),
                    check="config.policy",
                    expected=list(TCB_STATUSES),
                    actual=unknown,
                )
            kwargs["accepted_tcb_statuses"] = statuses
        if "accepted_advisory_ids" in data:
            kwargs["accepted_advisory_ids"] = _strings(
                data["accepted_advisory_ids"], f"{where}.accepted_advisory_ids"
            )
        for flag in ("allow_debug", "require_nonce", "allow_any_workload"):
            if flag in data:
                if not isinstance(data[flag], bool):
                    raise ConfigurationError(
                        f"{where}.{flag} must be true or false", check="config.policy"
                    )
                kwargs[flag] = data[flag]
        if "max_age" in data:
            seconds = data["max_age"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
                raise ConfigurationError(
                    f"{where}.max_age must be a positive number of seconds", check="config.policy"
                )
            kwargs["max_age"] = dt.timedelta(seconds=seconds)
        if "reference_values" in data:
            kwargs["reference_values"] = _reference_values(
                data["reference_values"], f"{where}.reference_values"
            )
        kwargs["options"] = {k: v for k, v in data.items() if k not in _COMMON_KEYS}
        return cls(**kwargs)


def _reference_values(data: Any, where: str) -> dict[str, ReferenceValue]:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} must be a table", check="config.policy")
    values: dict[str, ReferenceValue] = {}
    for name, spec in data.items():
        key = f"{where}.{name}"
        try:
            values[name] = _reference_value(spec, key)
        except ConfigurationError as error:
            if error.reason.startswith(key):
                raise
            raise error.in_configuration(key) from None
        if not values[name].accepted:
            raise ConfigurationError(f"{key} lists no value", check="config.policy")
    return values


def _reference_value(spec: Any, key: str) -> ReferenceValue:
    if isinstance(spec, str):
        return ReferenceValue(accepted=[spec])
    if isinstance(spec, list):
        return ReferenceValue(accepted=_strings(spec, key))
    if isinstance(spec, Mapping):
        extra = set(spec) - {"values", "value", "enforce"}
        if extra:
            raise ConfigurationError(
                f"{key}: unknown key(s) {sorted(extra)}", check="config.policy"
            )
        raw = spec.get("values", [spec["value"]] if "value" in spec else None)
        if raw is None:
            raise ConfigurationError(f"{key} needs 'values'", check="config.policy")
        enforce = spec.get("enforce", True)
        if not isinstance(enforce, bool):
            raise ConfigurationError(f"{key}.enforce must be true or false", check="config.policy")
        return ReferenceValue(accepted=_strings(raw, key), enforce=enforce)
    raise ConfigurationError(f"{key} must be a string, a list or a table", check="config.policy")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a string", check="config.policy")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{where} must be a list of strings", check="config.policy")
    items = list(value)
    if not all(isinstance(v, str) for v in items):
        raise ConfigurationError(f"{where} must be a list of strings", check="config.policy")
    return items


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)

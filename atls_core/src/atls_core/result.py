"""Attestation results, shaped after the IETF RATS drafts (AR4SI / EAR).

A result is immutable.  It carries an overall status tier, an AR4SI
trustworthiness vector, who appraised it (validator, plugin and core versions),
which policy was applied (id and digest), what was appraised (evidence digest),
how it was bound to the connection, the TCB, measurements, read-only claims,
warnings, the failed checks, and when it stops being valid.

Results are built by :class:`atls_core.appraisal.Appraisal`, which starts at
``none`` and reaches ``affirming`` only when every check ran and passed.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from atls_core.binding import Binding
from atls_core.errors import AppraisalFailed

__all__ = [
    "AttestationResult",
    "Failure",
    "Status",
    "Tcb",
    "TrustworthinessVector",
    "Verifier",
]


class Status(enum.Enum):
    """EAR status tiers, ordered from no claim to worst (:attr:`rank`).

    Printed as EAR's own word (``print(result.status)`` shows ``warning``); it
    is not a string, so it never compares equal to or sorts among strings.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    NONE = "none"
    AFFIRMING = "affirming"
    WARNING = "warning"
    CONTRAINDICATED = "contraindicated"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def of_claim(cls, value: int) -> Status:
        """AR4SI tier of a trustworthiness claim value."""
        if value == 0 or -1 <= value <= 1:
            return cls.NONE
        magnitude = abs(value)
        if magnitude < 32:
            return cls.AFFIRMING
        if magnitude < 96:
            return cls.WARNING
        return cls.CONTRAINDICATED


_RANK = {Status.NONE: 0, Status.AFFIRMING: 1, Status.WARNING: 2, Status.CONTRAINDICATED: 3}


@attrs.frozen(kw_only=True)
class TrustworthinessVector:
    """AR4SI trustworthiness claims; ``None`` means no claim was made.

    Values follow AR4SI: 2 affirming, 32..95 warning, 96..127 contraindicated.
    """

    instance_identity: int | None = None
    configuration: int | None = None
    executables: int | None = None
    file_system: int | None = None
    hardware: int | None = None
    runtime_opaque: int | None = None
    storage_opaque: int | None = None
    sourced_data: int | None = None

    def to_dict(self) -> dict[str, int]:
        return {
            name.replace("_", "-"): value
            for name, value in attrs.asdict(self).items()
            if value is not None
        }


# AR4SI claim values: the core's common checks set all but ``CONFIG_*``, which are for plugins.
AFFIRMING = 2
WARNING = 32
CONTRAINDICATED = 96
HW_GENUINE = 2
HW_UNSAFE = 32
HW_CONTRAINDICATED = 96
EXEC_APPROVED = 2
EXEC_UNRECOGNIZED = 33
EXEC_CONTRAINDICATED = 96
OPAQUE_ENCRYPTED = 2
OPAQUE_VISIBLE = 96
CONFIG_APPROVED = 2
CONFIG_UNSAFE = 32
CONFIG_CONTRAINDICATED = 96
IDENTITY_RECOGNIZED = 2
IDENTITY_CONTRAINDICATED = 96


@attrs.frozen(kw_only=True)
class Tcb:
    status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    date: dt.datetime | None = None
    """Date of the TCB level the platform matched (``tcbDate``)."""
    evaluation_data_number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "advisory_ids": list(self.advisory_ids),
            "date": _iso(self.date),
            "evaluation_data_number": self.evaluation_data_number,
        }


@attrs.frozen(kw_only=True)
class Verifier:
    """Who appraised: validator id and the versions involved."""

    validator: str
    plugin: str
    """Distribution that provides the validator."""
    plugin_version: str
    core_version: str

    def to_dict(self) -> dict[str, str]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Failure:
    """One failed check: dotted name, message, safe expected/actual values."""

    check: str
    message: str
    expected: Any = None
    actual: Any = None
    enforced: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "message": self.message,
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
            "enforced": self.enforced,
        }


_PLAIN = (str, int, float, bool, bytes, type(None))


def _freeze(value: Any) -> Any:
    if type(value) in _PLAIN:  # most claims: skip the ABC checks below (every appraisal)
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    return value


def _frozen_str_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _frozen_claims(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # One copy, plain values taken as they are: every result passes here.
    plain = type(value) is dict or isinstance(value, Mapping)
    items = value.items() if plain else dict(value).items()
    return MappingProxyType({k: v if type(v) in _PLAIN else _freeze(v) for k, v in items})


@attrs.frozen(kw_only=True)
class AttestationResult:
    status: Status
    trustworthiness: TrustworthinessVector
    verifier: Verifier
    policy_id: str
    policy_digest: str
    evidence_digest: str
    binding: Binding
    tee_type: str
    debug: bool | None
    tcb: Tcb
    measurements: Mapping[str, str] = attrs.field(converter=_frozen_str_map)
    """Named measurements as lowercase hex (MRTD, RTMR0..3, MRENCLAVE...)."""
    claims: Mapping[str, Any] = attrs.field(converter=_frozen_claims)
    """Every other verified field, read-only."""
    warnings: tuple[str, ...] = ()
    failures: tuple[Failure, ...] = ()
    issued_at: dt.datetime
    expires_at: dt.datetime | None
    expiry_reason: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the policy accepts: affirming, or warning without a failure."""
        if self.status is not Status.AFFIRMING and self.status is not Status.WARNING:
            return False
        return not self.failures or not any(f.enforced for f in self.failures)

    def is_expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def raise_for_status(self) -> AttestationResult:
        """Return self if accepted, else raise :class:`AppraisalFailed` naming the check."""
        if self.accepted:
            return self
        enforced = [f for f in self.failures if f.enforced]
        if enforced:
            first = enforced[0]
            more = f" (+{len(enforced) - 1} more)" if len(enforced) > 1 else ""
            raise AppraisalFailed(
                first.message + more,
                result=self,
                check=first.check,
                expected=first.expected,
                actual=first.actual,
            )
        raise AppraisalFailed(f"status is {self.status.value}", result=self, check="result.status")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "accepted": self.accepted,
            "trustworthiness": self.trustworthiness.to_dict(),
            "verifier": self.verifier.to_dict(),
            "policy": {"id": self.policy_id, "digest": self.policy_digest},
            "evidence_digest": self.evidence_digest,
            "binding": self.binding.to_dict(),
            "tee_type": self.tee_type,
            "debug": self.debug,
            "tcb": self.tcb.to_dict(),
            "measurements": dict(sorted(self.measurements.items())),
            "claims": _jsonable(self.claims),
            "warnings": list(self.warnings),
            "failures": [f.to_dict() for f in self.failures],
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "expiry_reason": self.expiry_reason,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=str)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

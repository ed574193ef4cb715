"""Clocks are arguments, never globals.

Recorded evidence verifies at its recorded time; live connections use now.
Every validator receives a :class:`Clock` instead of calling ``time.time()``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Clock", "FixedClock", "SystemClock", "parse_time"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


@attrs.frozen
class FixedClock:
    """A clock stopped at one instant (offline appraisal, tests)."""

    at: dt.datetime = attrs.field()

    @at.validator
    def _aware(self, _attr: object, value: dt.datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")

    @classmethod
    def from_unix(cls, seconds: float) -> FixedClock:
        return cls(dt.datetime.fromtimestamp(seconds, dt.UTC))

    def now(self) -> dt.datetime:
        return self.at


def parse_time(text: str) -> dt.datetime:
    """Parse Unix seconds or ISO-8601 (naive values are taken as UTC)."""
    text = text.strip()
    try:
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    except ValueError:
        pass
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)

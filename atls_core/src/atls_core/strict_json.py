"""JSON whose objects name each member once.

Readers disagree on which of two equal names counts: Python keeps the last,
others keep the first or refuse.  A document whose meaning depends on its
reader could show one workload to another tool and another to atls, so
wherever atls reads JSON that something signed or measured, such a document
is refused.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["RepeatedName", "loads", "unique_names"]


class RepeatedName(ValueError):
    """An object names a member twice (a ``ValueError``, as ``json.loads`` raises)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an object repeats the name {name!r}")
        self.name = name


def unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or :class:`RepeatedName`."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise RepeatedName(name)
        members[name] = value
    return members


def loads(text: str | bytes) -> Any:
    """``json.loads`` refusing repeated names; catch :class:`RepeatedName` before
    ``ValueError`` to say which name."""
    return json.loads(text, object_pairs_hook=unique_names)

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
    """``json.loads``'s ``object_pairs_hook``: the object, or :class:`RepeatedName`.

    Built in C and compared by size (a repeated name makes the dict smaller): the hook
    runs for every object of every document read per connection, and a Python loop
    over every member was most of what strict parsing cost above ``json.loads``.
    """
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                raise RepeatedName(name)
            seen.add(name)
    return members


_DECODER = json.JSONDecoder(object_pairs_hook=unique_names)
"""One decoder for every call: ``json.loads`` with a hook builds a new one each time."""


def loads(text: str | bytes) -> Any:
    """``json.loads`` refusing repeated names; catch :class:`RepeatedName` before
    ``ValueError`` to say which name."""
    if isinstance(text, str):
        if text.startswith("\ufeff"):  # as json.loads: a BOM in text is a mistake
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    elif isinstance(text, (bytes, bytearray)):  # as json.loads reads bytes
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    else:  # as json.loads: another type is a caller's mistake, named as such
        raise TypeError(
            "the JSON object must be str, bytes or bytearray, not " + type(text).__name__
        )
    return _DECODER.decode(text)

"""Secrets: values configuration resolved by indirection (``$env``, ``$file``).

Its own small module, so that the settings rules (read when plugins register)
can accept a secret without loading hosts and policies.
"""

from __future__ import annotations

import attrs

__all__ = ["Secret", "reveal"]


@attrs.frozen(repr=False, eq=False)
class Secret:
    """A resolved secret. ``reveal()`` is the only way to read it."""

    _value: str
    origin: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.origin})"

    __str__ = __repr__


def reveal(value: str | Secret) -> str:
    """Plain strings pass through; secrets are revealed."""
    return value.reveal() if isinstance(value, Secret) else value

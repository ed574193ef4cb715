"""Asserting a refusal together with its reason.

Every atls error names the check that failed; a test that only asks for the
error class also passes when another check refuses first, so it would no
longer test what it names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from atls_core.errors import ATLSError

__all__ = ["refused"]

E = TypeVar("E", bound=ATLSError)


@contextmanager
def refused(error: type[E], check: str) -> Iterator[pytest.ExceptionInfo[E]]:
    """``pytest.raises(error)`` that also requires the error to name ``check``."""
    with pytest.raises(error) as info:
        yield info
    assert info.value.check == check, f"refused by {info.value.check}, not by {check}: {info.value}"

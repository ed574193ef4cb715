"""Shared fixtures: a stand-in MAA instance on loopback, the recorded vectors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from atls_azure.testing.maa import StandInMaa


@pytest.fixture
def maa() -> Iterator[StandInMaa]:
    with StandInMaa() as service:
        yield service


@pytest.fixture(scope="module")
def module_maa() -> Iterator[StandInMaa]:
    with StandInMaa() as service:
        yield service


@pytest.fixture
def vectors() -> Path:
    """$ATLS_VECTORS: unset skips; set but incomplete fails (in the tests that read it)."""
    root = os.environ.get("ATLS_VECTORS")
    if not root:
        pytest.skip("ATLS_VECTORS is not set")
    return Path(root)

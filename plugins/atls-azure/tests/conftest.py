"""Shared fixtures: a stand-in MAA instance on loopback, the recorded vectors."""

from __future__ import annotations

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


def pytest_configure(config: pytest.Config) -> None:
    """The kit's plugins: vector tests skip without $ATLS_VECTORS (one summary line) and must
    run under CI=true; scripted loopback servers as fixtures."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")
    config.pluginmanager.import_plugin("atls_core.testing.servers")


@pytest.fixture
def vectors(atls_vectors: Path) -> Path:
    """The recorded-evidence folder (a file missing from it fails the test that reads it)."""
    return atls_vectors

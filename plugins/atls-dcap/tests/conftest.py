"""Recorded vectors come through $ATLS_VECTORS (atls_core.testing.vectors)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")

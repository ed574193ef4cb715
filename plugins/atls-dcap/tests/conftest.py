"""Recorded vectors come through $ATLS_VECTORS (atls_core.testing.vectors); a synthetic PKI."""

from __future__ import annotations

import pytest

from atls_dcap.testing.pki import DcapTestPki


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")


@pytest.fixture(scope="module")
def pki(request: pytest.FixtureRequest) -> DcapTestPki:
    """A synthetic Intel PKI per test module, seeded by the module's name (reproducible)."""
    return DcapTestPki.generate(seed=request.module.__name__.encode())

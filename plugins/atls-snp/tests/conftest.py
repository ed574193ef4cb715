"""Shared fixtures: synthetic SEV-SNP guests (one per product) and the recorded vectors."""

from __future__ import annotations

import pytest

from atls_snp.roots import Product
from atls_snp.testing import SyntheticSnp


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")


@pytest.fixture(scope="session")
def milan(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSnp:
    return SyntheticSnp(tmp_path_factory.mktemp("milan"), product=Product.MILAN)


@pytest.fixture(scope="session")
def genoa(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSnp:
    return SyntheticSnp(tmp_path_factory.mktemp("genoa"), product=Product.GENOA)


@pytest.fixture(scope="session")
def turin(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSnp:
    return SyntheticSnp(tmp_path_factory.mktemp("turin"), product=Product.TURIN)

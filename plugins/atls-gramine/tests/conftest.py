"""Shared fixtures: a deterministic synthetic DCAP PKI and the recorded vectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atls_core.testing.vectors import Vector
from atls_dcap.testing.pki import DcapTestPki
from atls_gramine.testing.certs import validator_settings
from atls_gramine.validator import GramineRatlsValidator


@pytest.fixture(scope="session")
def pki() -> DcapTestPki:
    return DcapTestPki.generate(seed="atls-gramine tests")


@pytest.fixture
def settings_for(pki: DcapTestPki, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``settings_for(tcb_status="OutOfDate", ...)``: validator settings trusting ``pki``."""

    def make(**collateral: Any) -> dict[str, Any]:
        return validator_settings(pki, tmp_path / "dcap", **collateral)

    return make


@pytest.fixture
def validator(settings_for: Callable[..., dict[str, Any]]) -> GramineRatlsValidator:
    return GramineRatlsValidator(settings_for())


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")


@pytest.fixture
def vector(atls_vector: Vector) -> Vector:
    """``vector("gramine", folder, file)``: a recorded file (fails if the folder lacks it)."""
    return atls_vector

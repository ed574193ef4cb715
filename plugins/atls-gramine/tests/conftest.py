"""Shared fixtures: a deterministic synthetic DCAP PKI and the recorded vectors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atls_gramine.testing.certs import validator_settings
from atls_gramine.validator import GramineRatlsValidator
from atls_tdx.testing.pki import DcapTestPki


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


def _vector(*parts: str) -> Path:
    root = os.environ.get("ATLS_VECTORS")
    if not root:
        pytest.skip("ATLS_VECTORS is not set")
    path = Path(root).joinpath(*parts)
    if not path.is_file():
        pytest.fail(f"vector file missing: {path}")
    return path


@pytest.fixture
def vector() -> Callable[..., Path]:
    """``vector("gramine", folder, file)``: a recorded file; skip if ATLS_VECTORS is unset,
    fail if it is set but the file is missing."""
    return _vector

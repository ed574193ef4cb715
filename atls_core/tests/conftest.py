"""atls-core's tests: recorded vectors through the shared plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.plugins import FakeSite


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    """The INSECURE simulated TEE, one per test module."""
    return SimulatedTEE()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """An ordinary PKI certificate authority, for the PKI side of mixed tests."""
    return trustme.CA()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """Fake installed distributions, on ``sys.path`` for this test only."""
    site = FakeSite(tmp_path / "site")
    site.path.mkdir()
    monkeypatch.syspath_prepend(str(site.path))
    yield site
    site.forget()

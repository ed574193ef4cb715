"""Shared fixtures: recorded vectors (via ATLS_VECTORS) and a stand-in ITA service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_ita.testing.standin import StandInIta, default_measurements, workload_pin
from atls_ita.validator import ItaValidator

API_KEY = "ita-test-api-key-6f1d"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def pytest_configure(config: pytest.Config) -> None:
    """The kit's plugins: vector tests skip without $ATLS_VECTORS (one summary line) and must
    run under CI=true; scripted loopback servers as fixtures."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")
    config.pluginmanager.import_plugin("atls_core.testing.servers")


@pytest.fixture(scope="session")
def _service() -> Iterator[StandInIta]:
    with StandInIta(api_key=API_KEY, clock=FixedClock(NOW)) as service:
        yield service


@pytest.fixture
def ita(_service: StandInIta) -> StandInIta:
    """The session's stand-in ITA with its knobs reset for this test."""
    service = _service
    service.clock = FixedClock(NOW)
    service.shape = "v2"
    service.tee = "tdx"
    service.issuer = "Intel Trust Authority"
    service.lifetime = dt.timedelta(minutes=5)
    service.tcb_status = "UpToDate"
    service.advisory_ids = []
    service.debug = False
    service.measurements = default_measurements()
    service.policy_ids_matched = []
    service.policy_ids_unmatched = []
    service.report_data_override = None
    service.fail_certs = False
    service.fail_crls = False
    service.check_quote_report_data = True
    service.revoked_leaves = set()
    service.revoked_cas = set()
    service.crl_lifetime = dt.timedelta(days=7)
    service.crl_key = None
    service.requests.clear()
    return service


@pytest.fixture
def clock() -> FixedClock:
    """One second after the stand-in's tokens are issued."""
    return FixedClock(NOW + dt.timedelta(seconds=1))


@pytest.fixture
def settings(ita: StandInIta, tmp_path: Path) -> dict[str, Any]:
    return ita.validator_settings(tmp_path / "root.pem")


@pytest.fixture
def validator(settings: dict[str, Any]) -> ItaValidator:
    return ItaValidator(settings)


@pytest.fixture
def pinned() -> Policy:
    """The default policy pinning the stand-in's default TD by ``mrtd``: only that pin
    separates it from any other genuine TD."""
    return Policy(reference_values=workload_pin("tdx"))

"""Shared fixtures: recorded vectors (via ATLS_VECTORS) and a synthetic DCAP PKI."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import attrs
import pytest

from atls_core.clock import FixedClock
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote

ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NEXT_UPDATE = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def pytest_configure(config: pytest.Config) -> None:
    """Vector tests skip without $ATLS_VECTORS (one summary line) and must run under CI=true."""
    config.pluginmanager.import_plugin("atls_core.testing.vectors")


@attrs.frozen
class Synthetic:
    """A synthetic DCAP world: PKI, collateral file and validator settings."""

    pki: DcapTestPki
    directory: Path
    clock: FixedClock = attrs.field(factory=lambda: FixedClock(NOW))

    def collateral_file(self, **kw: Any) -> Path:
        text = self.pki.collateral_json("tdx", issue_date=ISSUED, next_update=NEXT_UPDATE, **kw)
        name = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = self.directory / f"collateral-{name}.json"
        path.write_text(text)
        return path

    @property
    def root_file(self) -> Path:
        path = self.directory / "root.der"
        if not path.exists():
            path.write_bytes(self.pki.root_ca_der)
        return path

    def settings(self, **kw: Any) -> dict[str, Any]:
        collateral = kw.pop("collateral_kw", {})
        return {
            "collateral_file": str(self.collateral_file(**collateral)),
            "root_ca": str(self.root_file),
            "allow_custom_root": True,
            "cache_dir": "none",
            **kw,
        }

    def quote(self, report_data: bytes, **kw: Any) -> bytes:
        return make_tdx_quote(self.pki, report_data, **kw)

    @staticmethod
    def signed_regions(quote: bytes) -> list[tuple[int, int]]:
        """What a TDX quote's signatures cover, for the conformance kit's tampering test.

        Header and TD report (the attestation key's signature), that signature and
        key, the QE report, its signature and the QE auth data (the PCK signature
        and the QE report data hash).  Left out: the certification data's type and
        size and the PCK chain, whose PEM whitespace and root copy no signature
        covers (the configured root is the trust anchor, not the chain's).
        """
        version = int.from_bytes(quote[0:2], "little")
        body_end = 48 + 584 if version == 4 else 54 + int.from_bytes(quote[50:54], "little")
        signature = body_end + 4
        qe_report = signature + 64 + 64 + 6
        auth_end = qe_report + 384 + 64 + 2
        auth_end += int.from_bytes(quote[auth_end - 2 : auth_end], "little")
        return [(0, body_end), (signature, signature + 128), (qe_report, auth_end)]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    pki = DcapTestPki.generate(seed="atls-tdx validator tests")
    return Synthetic(pki=pki, directory=tmp_path_factory.mktemp("dcap"))

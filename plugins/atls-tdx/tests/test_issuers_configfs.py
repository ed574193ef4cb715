"""configfs-tsm issuer against an emulated configfs; its quotes verify with tdx.dcap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_dcap.testing.quotes import DEFAULT_MRTD
from atls_tdx.dcap_validator import TdxDcapValidator
from atls_tdx.issuers import ConfigfsTsmIssuer, IssuerError, configfs_tsm_quote
from atls_tdx.oids import ATLS_TDX_QUOTE
from atls_tdx.testing.dstack import FakeConfigfsTsm, spki_of


@pytest.fixture
def tsm(tmp_path: Path, synthetic: Any) -> FakeConfigfsTsm:
    root = tmp_path / "report"
    root.mkdir()
    return FakeConfigfsTsm(root, lambda report_data: synthetic.quote(report_data))


def test_quote_round_trip_and_cleanup(tsm: FakeConfigfsTsm, synthetic: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    nonce = b.new_nonce()
    report_data = b.report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    issuer = ConfigfsTsmIssuer({"root": str(tsm.root)}, fs=tsm)
    evidence = issuer.issue(report_data)
    assert evidence.source.oid == ATLS_TDX_QUOTE
    assert len(tsm.created) == 1
    assert tsm.removed == tsm.created
    assert list(tsm.root.iterdir()) == []
    result = TdxDcapValidator(synthetic.settings()).appraise(
        evidence,
        binding=b.BindingContext(spki_der=spki, nonce=nonce),
        clock=synthetic.clock,
        policy=Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()}),
    )
    assert result.accepted, result.to_json()
    assert result.claims["report_data"] == report_data.hex()


def test_concurrent_writer_is_detected(tsm: FakeConfigfsTsm) -> None:
    tsm.interfere = True
    with pytest.raises(IssuerError) as info:
        configfs_tsm_quote(bytes(64), root=tsm.root, fs=tsm)
    assert info.value.check == "tsm.generation"
    assert tsm.removed == tsm.created


def test_other_provider_is_refused(tsm: FakeConfigfsTsm) -> None:
    tsm.provider = "sev_guest"
    with pytest.raises(IssuerError) as info:
        configfs_tsm_quote(bytes(64), root=tsm.root, fs=tsm)
    assert info.value.check == "tsm.provider"
    assert tsm.removed == tsm.created


def test_missing_configfs_says_so(tmp_path: Path) -> None:
    with pytest.raises(IssuerError) as info:
        configfs_tsm_quote(bytes(64), root=tmp_path / "absent")
    assert info.value.check == "tsm.unavailable"
    assert "configfs-tsm" in str(info.value)


def test_kernel_refusal_is_an_issuer_error(tsm: FakeConfigfsTsm) -> None:
    def refuse(_report_data: bytes) -> bytes:
        raise OSError(5, "Input/output error")

    refusing = FakeConfigfsTsm(tsm.root, refuse)
    with pytest.raises(IssuerError) as info:
        configfs_tsm_quote(bytes(64), root=refusing.root, fs=refusing)
    assert info.value.check == "tsm.io"
    assert refusing.removed == refusing.created


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_report_data_must_be_64_bytes(tsm: FakeConfigfsTsm, size: int) -> None:
    with pytest.raises(ConfigurationError):
        configfs_tsm_quote(bytes(size), root=tsm.root, fs=tsm)
    assert tsm.created == []


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        ConfigfsTsmIssuer({"root": 5})
    with pytest.raises(ConfigurationError):
        ConfigfsTsmIssuer({"provider": 5})

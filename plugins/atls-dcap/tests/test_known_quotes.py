"""A quote verified before: dcap-qvl still verifies it every time, at the appraisal's time.

``DcapVerifier.verify`` keeps the quotes it verified (bounded) with their collateral, so
that the same bytes skip the parse and the field work.  These tests hold the memo to what
a verifier that never saw the quote says: another time, other collateral or another
verdict, and the answer is the fresh verifier's, refusals included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import dcap_qvl
import pytest

from atls_core.errors import ATLSError
from atls_dcap.settings import DcapSettings
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote
from atls_dcap.verifier import _KNOWN_KEPT, _KNOWN_SIZE, DcapVerifier

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NEXT_UPDATE = ISSUED + dt.timedelta(days=30)
NOW = ISSUED + dt.timedelta(days=2)


def _quote(pki: DcapTestPki, label: str, **kw: Any) -> bytes:
    return make_tdx_quote(pki, hashlib.sha512(label.encode()).digest(), **kw)


def _file_verifier(pki: DcapTestPki, folder: Path, collateral: str) -> DcapVerifier:
    path = folder / "collateral.json"
    path.write_text(collateral)
    return DcapVerifier(
        DcapSettings.for_validator(
            {
                "collateral_file": str(path),
                "root_ca": pki.root_ca_der,
                "allow_custom_root": True,
                "cache_dir": "none",
            }
        )
    )


def _pcs_verifier(pki: DcapTestPki, pcs: FakePcs) -> DcapVerifier:
    return DcapVerifier(
        DcapSettings.from_settings(
            {
                "root_ca": pki.root_ca_der,
                "allow_custom_root": True,
                "cache_dir": "none",
                "collateral": "pccs",
                "pccs_url": pcs.url,
            }
        )
    )


def _refusal(verifier: DcapVerifier, quote: bytes, now: dt.datetime) -> tuple[str, str]:
    with pytest.raises(ATLSError) as info:
        verifier.verify(quote, now=now)
    return type(info.value).__name__, info.value.check


def test_dcap_qvl_verifies_a_known_quote_every_time(
    pki: DcapTestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = _file_verifier(
        pki, tmp_path, pki.collateral_json("tdx", issue_date=ISSUED, next_update=NEXT_UPDATE)
    )
    quote = _quote(pki, "known")
    calls = []
    real = dcap_qvl.verify_with_root_ca

    def counted(*args: Any) -> Any:
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(dcap_qvl, "verify_with_root_ca", counted)
    first = verifier.verify(quote, now=NOW)
    again = [
        verifier.verify(bytes(bytearray(quote)), now=NOW + dt.timedelta(hours=h)) for h in (1, 2)
    ]
    assert len(calls) == 3
    assert calls[1:] == [int((NOW + dt.timedelta(hours=h)).timestamp()) for h in (1, 2)]
    assert all(verified == first for verified in again)


def test_a_known_quote_past_its_collateral_is_refused_as_a_new_one_is(
    pki: DcapTestPki, tmp_path: Path
) -> None:
    collateral = pki.collateral_json("tdx", issue_date=ISSUED, next_update=NEXT_UPDATE)
    for name in ("seen", "fresh"):
        (tmp_path / name).mkdir()
    seen = _file_verifier(pki, tmp_path / "seen", collateral)
    quote = _quote(pki, "expires")
    assert seen.verify(quote, now=NOW).tcb_status == "UpToDate"
    later = NEXT_UPDATE + dt.timedelta(days=1)
    fresh = _file_verifier(pki, tmp_path / "fresh", collateral)
    assert _refusal(seen, quote, later) == _refusal(fresh, quote, later)
    assert seen.verify(quote, now=NOW).tcb_status == "UpToDate"  # and back in its window


def test_a_known_quote_under_newer_collateral_gets_its_verdict(pki: DcapTestPki) -> None:
    quote = _quote(pki, "recovery")
    up_to_date = pki.collateral_json("tdx", issue_date=ISSUED, tcb_evaluation_data_number=17)
    with FakePcs(up_to_date) as pcs:
        verifier = _pcs_verifier(pki, pcs)
        assert verifier.verify(quote, now=NOW).tcb_status == "UpToDate"
        pcs.set_collateral(
            pki.collateral_json(
                "tdx",
                issue_date=ISSUED,
                tcb_status="OutOfDate",
                advisory_ids=["INTEL-SA-00001"],
                tcb_evaluation_data_number=18,
            )
        )
        verifier.cache.clear_memory()
        verified = verifier.verify(quote, now=NOW)
    assert (verified.tcb_status, verified.advisory_ids, verified.tcb_evaluation_data_number) == (
        "OutOfDate",
        ("INTEL-SA-00001",),
        18,
    )


def test_another_verdict_for_a_known_quote_is_not_taken_from_the_memo(
    pki: DcapTestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dcap-qvl answering otherwise for the same bytes and collateral (it cannot, but the
    memo must not paper over it): the long way, which compares with dcap-qvl's claims."""
    verifier = _file_verifier(pki, tmp_path, pki.collateral_json("tdx", issue_date=ISSUED))
    quote = _quote(pki, "verdict")
    verifier.verify(quote, now=NOW)
    real = dcap_qvl.verify_with_root_ca

    class Other:
        def __init__(self, report: Any) -> None:
            self.status, self.advisory_ids = "OutOfDate", report.advisory_ids

    monkeypatch.setattr(dcap_qvl, "verify_with_root_ca", lambda *a: Other(real(*a)))
    assert _refusal(verifier, quote, NOW) == ("UntrustedChain", "dcap.tcb_level")


def test_the_memo_is_bounded_and_keeps_no_padded_quote(pki: DcapTestPki, tmp_path: Path) -> None:
    verifier = _file_verifier(pki, tmp_path, pki.collateral_json("tdx", issue_date=ISSUED))
    for index in range(_KNOWN_SIZE + 3):
        verifier.verify(_quote(pki, f"bounded {index}"), now=NOW)
        assert len(verifier._known) <= _KNOWN_SIZE
    padded = _quote(pki, "padded", chain_suffix=b"A" * _KNOWN_KEPT)
    assert verifier.verify(padded, now=NOW).tcb_status == "UpToDate"
    assert padded not in verifier._known

"""Collateral sources, cache and timeouts, over a real loopback FakePcs and the synthetic PKI.

Every fetch here goes through atls_dcap.pcs (atls-core's bounded fetch) to FakePcs on 127.0.0.1;
every verification is dcap-qvl's, under the synthetic root (``allow_custom_root``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atls_core.errors import (
    CollateralUnavailable,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_dcap import INTEL_PCS_URL, DcapSettings, DcapVerifier
from atls_dcap.tcb import check_td_attributes
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import (
    TD_ATTRIBUTES_DEBUG,
    TD_ATTRIBUTES_SEPT_VE_DISABLE,
    make_sgx_quote,
    make_tdx_quote,
)

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)
REPORT_DATA = hashlib.sha512(b"dcap collateral tests").digest()


@pytest.fixture(scope="module")
def tdx_quote(pki: DcapTestPki) -> bytes:
    return make_tdx_quote(pki, REPORT_DATA)


def collateral(pki: DcapTestPki, tee: str = "tdx", **kwargs: Any) -> str:
    kwargs.setdefault("issue_date", ISSUED)
    return pki.collateral_json(tee, **kwargs)


@pytest.fixture
def pcs(pki: DcapTestPki) -> Iterator[FakePcs]:
    with FakePcs(collateral(pki)) as server:
        yield server


def settings(pki: DcapTestPki, **extra: Any) -> DcapSettings:
    values: dict[str, Any] = {"root_ca": pki.root_ca_der, "allow_custom_root": True}
    values.update(extra)
    return DcapSettings.from_settings(values)


def pccs_verifier(
    pki: DcapTestPki, pcs: FakePcs, cache_dir: Path | str, **extra: Any
) -> DcapVerifier:
    return DcapVerifier(
        settings(pki, collateral="pccs", pccs_url=pcs.url, cache_dir=str(cache_dir), **extra)
    )


# -- settings ----------------------------------------------------------------------------------


def test_settings_defaults_use_intel_pcs_and_a_user_cache() -> None:
    parsed = DcapSettings.from_settings({})
    assert parsed.collateral == "pcs"
    assert parsed.source_url == INTEL_PCS_URL
    assert parsed.source_name == "pcs"
    assert parsed.collateral_timeout == 10.0
    assert parsed.root_ca_der is None
    assert parsed.cache_dir is not None
    assert "atls" in str(parsed.cache_dir)


@pytest.mark.parametrize(
    "bad",
    [
        {"collateral": "phala"},
        {"collateral": "pccs"},
        {"collateral": "file"},
        {"pccs_url": "https://pccs.example"},
        {"collateral": "pccs", "pccs_url": "ftp://pccs.example"},
        {"collateral_file": "/tmp/x.json"},
        {"collateral_timeout": 0},
        {"collateral_timeout": -1},
        {"collateral_timeout": 1000},
        {"collateral_timeout": "soon"},
        {"collateral_timeout": True},
        {"collateral_timeout": float("nan")},
        {"allow_custom_root": "yes"},
        {"cache_dir": ""},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DcapSettings.from_settings(bad)


def test_custom_root_needs_explicit_permission(pki: DcapTestPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        DcapSettings.from_settings({"root_ca": pki.root_ca_der})
    assert info.value.check == "config.dcap.root_ca"
    pem = tmp_path / "root.pem"
    pem.write_text(pki.root_ca_pem)
    parsed = DcapSettings.from_settings({"root_ca": str(pem), "allow_custom_root": "true"})
    assert parsed.root_ca_der == pki.root_ca_der
    with pytest.raises(ConfigurationError):
        DcapSettings.from_settings(
            {"root_ca": str(tmp_path / "missing"), "allow_custom_root": True}
        )
    with pytest.raises(ConfigurationError):
        DcapSettings.from_settings({"root_ca": b"not a certificate", "allow_custom_root": True})


def test_cache_dir_none_disables_the_disk_cache() -> None:
    assert DcapSettings.from_settings({"cache_dir": "none"}).cache_dir is None


def test_synthetic_quote_is_refused_under_intel_root(pki: DcapTestPki, tdx_quote: bytes) -> None:
    verifier = DcapVerifier(DcapSettings.from_settings({"cache_dir": "none"}))
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(tdx_quote, collateral(pki), now=NOW)
    assert info.value.check.startswith("dcap.")


# -- fetching and caching ------------------------------------------------------------------


def test_pccs_fetch_then_memory_hit_makes_no_request(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    first = verifier.verify(tdx_quote, now=NOW)
    assert first.tcb_status == "UpToDate"
    assert first.collateral_source == f"pccs:{pcs.url}"
    assert pcs.requests == {"pckcrl": 1, "rootcacrl": 1, "tcb": 1, "qe_identity": 1}
    assert any("fmspc=" + pki.fmspc in p for p in pcs.paths)
    pcs.reset_counters()
    for _ in range(5):
        assert verifier.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    assert pcs.total_requests == 0
    assert verifier.cache.stats.fetches == 1
    assert verifier.cache.stats.memory_hits >= 5


def test_disk_cache_serves_a_new_process_without_requests(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    pccs_verifier(pki, pcs, cache_dir).verify(tdx_quote, now=NOW)
    files = list(cache_dir.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert json.loads(files[0].read_text())["tcb_info"]
    pcs.reset_counters()
    fresh = pccs_verifier(pki, pcs, cache_dir)  # a new verifier: empty memory
    assert fresh.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    assert pcs.total_requests == 0
    assert fresh.cache.stats.disk_hits == 1


def test_unsafe_or_corrupt_cache_files_are_ignored(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    pccs_verifier(pki, pcs, cache_dir).verify(tdx_quote, now=NOW)
    (path,) = cache_dir.iterdir()
    os.chmod(path, 0o644)  # readable by others: not trusted to be ours
    pcs.reset_counters()
    pccs_verifier(pki, pcs, cache_dir).verify(tdx_quote, now=NOW)
    assert pcs.requests["tcb"] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # rewritten atomically
    path.write_text("{ not json")
    os.chmod(path, 0o600)
    pcs.reset_counters()
    assert pccs_verifier(pki, pcs, cache_dir).verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    assert pcs.requests["tcb"] == 1


def test_expired_collateral_is_refetched_not_served(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    first = verifier.verify(tdx_quote, now=NOW)
    later = first.collateral_expires_at + dt.timedelta(hours=1)
    pcs.set_collateral(
        collateral(pki, issue_date=later - dt.timedelta(hours=2), tcb_evaluation_data_number=18)
    )
    pcs.reset_counters()
    second = verifier.verify(tdx_quote, now=later)
    assert pcs.requests["tcb"] == 1
    assert second.tcb_evaluation_data_number == 18
    assert second.collateral_expires_at > later
    # A source that keeps serving expired collateral gives a stale error, never acceptance.
    pcs.set_collateral(collateral(pki))
    beyond = second.collateral_expires_at + dt.timedelta(days=1)
    with pytest.raises(StaleEvidence) as info:
        verifier.verify(tdx_quote, now=beyond)
    assert info.value.check in {
        "dcap.tcb_info_expired",
        "dcap.crl_expired",
        "dcap.qe_identity_expired",
    }


def test_collateral_issued_after_the_appraisal_time_is_not_served_from_memory(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    # Regression (R3 review): the memory layer checked only "next update in the future",
    # so collateral cached by a live appraisal was served to an appraisal at an earlier
    # (recorded) time, where dcap-qvl refused it as not yet issued.
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    assert verifier.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    early = ISSUED - dt.timedelta(days=5)
    pcs.set_collateral(collateral(pki, issue_date=ISSUED - dt.timedelta(days=10)))
    pcs.reset_counters()
    assert verifier.verify(tdx_quote, now=early).tcb_status == "UpToDate"
    assert pcs.requests["tcb"] == 1


def test_concurrent_appraisals_fetch_once(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    pcs.delay = 0.2
    barrier = threading.Barrier(8)
    statuses: list[str] = []
    errors: list[BaseException] = []

    def appraise() -> None:
        barrier.wait()
        try:
            statuses.append(verifier.verify(tdx_quote, now=NOW).tcb_status)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=appraise) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert statuses == ["UpToDate"] * 8
    assert pcs.requests["tcb"] == 1
    assert verifier.cache.stats.fetches == 1


def test_sgx_and_tdx_collateral_are_cached_separately(
    pki: DcapTestPki, tdx_quote: bytes, tmp_path: Path
) -> None:
    sgx_quote = make_sgx_quote(pki, REPORT_DATA)
    with FakePcs(collateral(pki, "sgx")) as sgx_pcs, FakePcs(collateral(pki)) as tdx_pcs:
        sgx_verifier = pccs_verifier(pki, sgx_pcs, tmp_path / "cache")
        tdx_verifier = pccs_verifier(pki, tdx_pcs, tmp_path / "cache")
        assert sgx_verifier.key_for(sgx_quote) != tdx_verifier.key_for(tdx_quote)
        assert sgx_verifier.verify(sgx_quote, now=NOW).tee_type == "sgx"
        assert tdx_verifier.verify(tdx_quote, now=NOW).tee_type == "tdx"
    assert len(list((tmp_path / "cache").iterdir())) == 2


# -- failures: never an acceptance ---------------------------------------------------------------


def test_failing_source_is_collateral_unavailable_and_not_cached(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    pcs.fail_with = 503
    with pytest.raises(CollateralUnavailable) as info:
        verifier.verify(tdx_quote, now=NOW)
    assert info.value.check == "collateral.fetch"
    assert "503" in str(info.value)
    pcs.fail_with = None
    assert verifier.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"


def test_slow_source_times_out(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache", collateral_timeout=0.3)
    pcs.delay = 3.0
    with pytest.raises(CollateralUnavailable) as info:
        verifier.verify(tdx_quote, now=NOW)
    assert info.value.check == "collateral.timeout"
    assert not list((tmp_path / "cache").glob("*.json"))


def test_unreachable_source_is_collateral_unavailable(
    pki: DcapTestPki, tdx_quote: bytes, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verifier = DcapVerifier(
        settings(pki, collateral="pccs", pccs_url=f"http://127.0.0.1:{port}", cache_dir="none")
    )
    with pytest.raises(CollateralUnavailable):
        verifier.verify(tdx_quote, now=NOW)


def test_failure_is_shared_by_concurrent_waiters(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")
    pcs.fail_with = 500
    pcs.delay = 0.2
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def appraise() -> None:
        barrier.wait()
        try:
            verifier.verify(tdx_quote, now=NOW)
            outcomes.append("accepted")
        except CollateralUnavailable:
            outcomes.append("unavailable")

    threads = [threading.Thread(target=appraise) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["unavailable"] * 4
    assert pcs.requests["pckcrl"] <= 2  # one flight (a late thread may start a second)


def test_unknown_fmspc_at_the_source_is_unavailable(
    pki: DcapTestPki, tdx_quote: bytes, tmp_path: Path
) -> None:
    other = DcapTestPki.generate("30606A000000", seed=b"other platform")
    with (
        FakePcs(other.collateral_json("tdx", issue_date=ISSUED)) as pcs,
        pytest.raises(CollateralUnavailable),
    ):
        pccs_verifier(pki, pcs, tmp_path / "cache").verify(tdx_quote, now=NOW)


def test_works_inside_a_running_event_loop(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    verifier = pccs_verifier(pki, pcs, tmp_path / "cache")

    async def handler() -> str:
        asyncio.get_running_loop()  # we are inside a loop, as in an async web app
        return verifier.verify(tdx_quote, now=NOW).tcb_status

    assert asyncio.run(handler()) == "UpToDate"
    assert pcs.requests["tcb"] == 1


def test_file_source_reloads_a_changed_file(
    pki: DcapTestPki, tdx_quote: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "collateral.json"
    path.write_text(collateral(pki))
    verifier = DcapVerifier(
        settings(pki, collateral="file", collateral_file=str(path), cache_dir="none")
    )
    assert verifier.verify(tdx_quote, now=NOW).tcb_evaluation_data_number == 17
    path.write_text(collateral(pki, tcb_evaluation_data_number=19))
    os.utime(path, ns=(1, 1))
    assert verifier.verify(tdx_quote, now=NOW).tcb_evaluation_data_number == 19
    with pytest.raises(ConfigurationError):
        DcapVerifier(
            settings(
                pki, collateral="file", collateral_file=str(tmp_path / "nope"), cache_dir="none"
            )
        ).verify(tdx_quote, now=NOW)


# -- debug and TD attributes on synthetic quotes ---------------------------------------------------


@pytest.mark.parametrize("tee", ["tdx", "sgx"])
def test_debug_quotes_are_reported_not_rejected(pki: DcapTestPki, tee: str) -> None:
    quote = (
        make_tdx_quote(pki, REPORT_DATA, debug=True)
        if tee == "tdx"
        else make_sgx_quote(pki, REPORT_DATA, debug=True)
    )
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    verified = verifier.verify_with_collateral(quote, collateral(pki, tee), now=NOW)
    assert verified.debug is True
    assert verified.tcb_status == "UpToDate"
    assert verified.report_data == REPORT_DATA
    outdated = verifier.verify_with_collateral(
        make_tdx_quote(pki, REPORT_DATA, debug=True, tcb="outofdate")
        if tee == "tdx"
        else make_sgx_quote(pki, REPORT_DATA, debug=True, tcb="outofdate"),
        collateral(pki, tee),
        now=NOW,
    )
    assert outdated.tcb_status == "OutOfDate"
    assert outdated.advisory_ids


def test_debug_td_without_sept_ve_disable_is_still_rejected(pki: DcapTestPki) -> None:
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    for debug in (False, True):
        quote = make_tdx_quote(pki, REPORT_DATA, debug=debug, sept_ve_disable=False)
        with pytest.raises(UntrustedChain) as info:
            verifier.verify_with_collateral(quote, collateral(pki), now=NOW)
        assert info.value.check == "dcap.sept_ve_disable"


def _reserved_attribute_bit(debug: bool) -> dict[str, Any]:
    """TD attributes with SEPT_VE_DISABLE, DEBUG as asked, and reserved bit 8 set."""
    flags = TD_ATTRIBUTES_SEPT_VE_DISABLE | (TD_ATTRIBUTES_DEBUG if debug else 0) | 1 << 8
    return {"td_attributes": flags.to_bytes(8, "little")}


def _service_td(debug: bool) -> dict[str, Any]:
    return {"debug": debug, "version": 5, "mr_servicetd": b"\x01" * 48}


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("quote_kw", "check"),
    [(_reserved_attribute_bit, "dcap.td_attributes"), (_service_td, "dcap.mr_servicetd")],
)
def test_debug_td_is_held_to_the_td_attribute_rules(
    pki: DcapTestPki, quote_kw: Any, check: str, debug: bool
) -> None:
    """dcap-qvl refuses a debug TD before these checks, so atls repeats them (``tcb.py``)."""
    quote = make_tdx_quote(pki, REPORT_DATA, **quote_kw(debug))
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(quote, collateral(pki), now=NOW)
    assert info.value.check == check


def test_debug_td_with_a_service_td_is_refused_by_the_repeated_rule() -> None:
    """dcap-qvl 0.7.0 refuses a service TD before it looks at DEBUG (the test above passes
    through it), so ``tcb.py``'s copy of the rule is reached only if a 0.7.x release reorders
    its checks: it is held to the rule here, on the fields of a debug TD."""
    attributes = (TD_ATTRIBUTES_DEBUG | TD_ATTRIBUTES_SEPT_VE_DISABLE).to_bytes(8, "little")
    check_td_attributes({"td_attributes": attributes, "mr_servicetd": bytes(48)})
    with pytest.raises(UntrustedChain) as info:
        check_td_attributes({"td_attributes": attributes, "mr_servicetd": b"\x01" * 48})
    assert info.value.check == "dcap.mr_servicetd"


def test_revoked_tcb_is_rejected(pki: DcapTestPki, tdx_quote: bytes) -> None:
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(tdx_quote, collateral(pki, tcb_status="Revoked"), now=NOW)
    assert info.value.check == "dcap.tcb_revoked"


def test_revoked_pck_certificate_is_rejected(pki: DcapTestPki, tdx_quote: bytes) -> None:
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(tdx_quote, collateral(pki, revoked=("uptodate",)), now=NOW)
    assert info.value.check == "dcap.certificate_revoked"


def test_unmatched_tcb_is_rejected(pki: DcapTestPki) -> None:
    verifier = DcapVerifier(settings(pki, cache_dir="none"))
    quote = make_tdx_quote(pki, REPORT_DATA, tcb="unmatched")
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(quote, collateral(pki), now=NOW)
    assert info.value.check == "dcap.tcb_level"


def test_symlinked_cache_directory_is_not_used(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(target, target_is_directory=True)
    verifier = pccs_verifier(pki, pcs, link)
    assert verifier.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    assert list(target.iterdir()) == []  # nothing written through the link
    pcs.reset_counters()
    assert verifier.verify(tdx_quote, now=NOW).tcb_status == "UpToDate"
    assert pcs.total_requests == 0  # memory still serves it


def test_deeply_nested_collateral_is_malformed_not_a_recursion_error() -> None:
    # Regression (R3 review): a PCCS answer or collateral file nested deeply enough made
    # json.loads raise RecursionError instead of a collateral-format error.
    from atls_dcap.collateral import Collateral

    with pytest.raises(MalformedEvidence):
        Collateral.from_json(b"[" * 100_000)
    with pytest.raises(MalformedEvidence):
        Collateral.from_json(json.dumps({"tcb_info": "[" * 100_000, "qe_identity": "{}"}))


def test_a_quote_without_its_pck_chain_is_not_sent_to_the_pccs(
    pki: DcapTestPki, pcs: FakePcs, tdx_quote: bytes, tmp_path: Path
) -> None:
    """Certification data type 3 (encrypted PPID) instead of 5: fetching its PCK certificate is
    not supported, so no request is made and the appraisal is undecided, never accepted."""
    import struct

    quote = bytearray(tdx_quote)
    at = quote.find(b"-----BEGIN CERTIFICATE-----") - 6  # the inner certification data header
    assert struct.unpack_from("<H", quote, at) == (5,)
    struct.pack_into("<H", quote, at, 3)
    with pytest.raises(CollateralUnavailable) as info:
        pccs_verifier(pki, pcs, tmp_path / "cache").verify(bytes(quote), now=NOW)
    assert info.value.check == "collateral.pck_chain"
    assert pcs.total_requests == 0

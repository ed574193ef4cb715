"""A PCCS answer older than collateral that verified before is a replay, refused.

Intel raises ``tcbEvaluationDataNumber`` when a TCB recovery rates platforms anew;
older collateral, still before its next update, can call an out-of-date platform up
to date.  Whoever answers a PCCS fetch could serve it once the newer left the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

import pytest

from atls_core.errors import ATLSError, UntrustedChain
from atls_core.rollback import NewestSeen
from atls_dcap.cache import CollateralCache, CollateralKey
from atls_dcap.collateral import Collateral
from atls_dcap.settings import DcapSettings
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote
from atls_dcap.verifier import DcapVerifier

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)


def _collateral(pki: DcapTestPki, number: int, **kw: Any) -> str:
    return pki.collateral_json("tdx", issue_date=ISSUED, tcb_evaluation_data_number=number, **kw)


def _verifier(pki: DcapTestPki, pcs: FakePcs) -> DcapVerifier:
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


def test_older_collateral_after_newer_verified_is_refused(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, hashlib.sha512(b"rollback").digest())
    with FakePcs(_collateral(pki, 18)) as pcs:
        verifier = _verifier(pki, pcs)
        assert verifier.verify(quote, now=NOW).tcb_evaluation_data_number == 18
        pcs.set_collateral(_collateral(pki, 17))  # genuine, signed, still before its update
        verifier.cache.clear_memory()  # the newer one left the cache
        with pytest.raises(UntrustedChain) as info:
            verifier.verify(quote, now=NOW)
        assert info.value.check == "collateral.rollback"
        pcs.set_collateral(_collateral(pki, 19))  # a newer one is welcome
        verifier.cache.clear_memory()
        assert verifier.verify(quote, now=NOW).tcb_evaluation_data_number == 19


def test_collateral_that_did_not_verify_does_not_raise_the_bar(pki: DcapTestPki) -> None:
    """Only verified collateral counts: an unverifiable answer with a high number must not
    make every genuine answer after it a 'rollback'."""
    quote = make_tdx_quote(pki, hashlib.sha512(b"rollback").digest())
    expired = _collateral(pki, 99, next_update=ISSUED + dt.timedelta(days=1))
    with FakePcs(expired) as pcs:
        verifier = _verifier(pki, pcs)
        with pytest.raises(ATLSError) as info:
            verifier.verify(quote, now=NOW)
        assert info.value.check != "collateral.rollback"
        pcs.set_collateral(_collateral(pki, 18))
        verifier.cache.clear_memory()
        assert verifier.verify(quote, now=NOW).tcb_evaluation_data_number == 18


def test_collateral_noted_while_a_newer_one_is_noted_does_not_skip_the_check(
    pki: DcapTestPki,
) -> None:
    """The object a cached appraisal may skip the check for is always the one that set the
    bar, however two appraisals' notes interleave: an older one noted last would otherwise
    pass unchecked on every later appraisal that reuses it."""
    older = Collateral.from_json(_collateral(pki, 17))
    newer = Collateral.from_json(_collateral(pki, 18))
    key = CollateralKey(source="pccs", fmspc="00" * 6, ca="platform", tee="tdx")
    cache = CollateralCache(None)
    threads: list[threading.Thread] = []

    class Interleaved(NewestSeen[CollateralKey, tuple[int, int]]):
        def note(self, noted: CollateralKey, mark: tuple[int, int]) -> None:
            super().note(noted, mark)
            if mark == older.evaluation_numbers and not threads:
                # Another appraisal notes the newer collateral right after this one's check.
                threads.append(threading.Thread(target=cache.note_verified, args=(key, newer)))
                threads[0].start()
                threads[0].join(0.5)  # done, or waiting for this note to finish first

    cache._evaluations = Interleaved(what="collateral", check="collateral.rollback")
    cache.note_verified(key, older)
    threads[0].join()
    with pytest.raises(UntrustedChain) as info:
        cache.note_verified(key, older)  # as a cached appraisal would, with the same object
    assert info.value.check == "collateral.rollback"
    cache.note_verified(key, newer)

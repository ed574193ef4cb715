"""The CRL kept for a URL is the one that sets its replay bar, however appraisals interleave."""

from __future__ import annotations

import datetime as dt
import threading

from cryptography import x509

from atls_core.rollback import NewestSeen
from atls_ita.testing.standin import StandInIta
from atls_ita.trust import CrlCache

URL = "http://crl.example/signing-ca.crl"


def test_an_older_crl_kept_last_does_not_replace_the_newer_one(ita: StandInIta) -> None:
    # Two appraisals hold different genuine CRLs for one URL (one read the cache just
    # before the other fetched anew).  Kept in the order older-noted, newer-noted,
    # newer-kept, older-kept, the older would be served and refused as a replay by every
    # later appraisal until its own next update.
    now = dt.datetime.now(dt.UTC)
    older = x509.load_der_x509_crl(ita.pki.crl("signing-ca", now=now - dt.timedelta(hours=2)))
    newer = x509.load_der_x509_crl(ita.pki.crl("signing-ca", now=now - dt.timedelta(hours=1)))
    cache = CrlCache()
    threads: list[threading.Thread] = []

    class Interleaved(NewestSeen[str, dt.datetime]):
        def note(self, url: str, mark: dt.datetime) -> None:
            super().note(url, mark)
            if mark == older.last_update_utc and not threads:
                threads.append(threading.Thread(target=cache._keep_newest, args=(URL, newer)))
                threads[0].start()
                threads[0].join(0.5)  # done, or waiting for this CRL to be kept first

    cache._newest = Interleaved(what="CRL", check="ita.crl.rollback")
    cache._keep_newest(URL, older)
    threads[0].join()
    assert cache._crl(URL, now) is newer
    assert cache.fetches == 0

"""A cache of no entries is off: ATLSContext then skips its key (SHA-256 of the certificate)."""

from __future__ import annotations

from atls_core.appraisal_cache import AppraisalCache


def test_a_cache_of_no_entries_is_not_enabled() -> None:
    assert not AppraisalCache(max_entries=0).enabled
    assert AppraisalCache(max_entries=1).enabled
    assert not AppraisalCache(max_entries=-1).enabled

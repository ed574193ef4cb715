"""The shared replay rule: the newest verified document per key sets the bar."""

from __future__ import annotations

import datetime as dt

import pytest

from atls_core.errors import UntrustedChain
from atls_core.rollback import NewestSeen

DAY = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def test_an_older_mark_is_refused_and_names_the_bar() -> None:
    seen: NewestSeen[str, dt.datetime] = NewestSeen(what="CRL", check="x.crl.rollback")
    seen.note("a", DAY)
    with pytest.raises(UntrustedChain) as info:
        seen.note("a", DAY - dt.timedelta(seconds=1))
    assert info.value.check == "x.crl.rollback"
    assert "CRL is older" in str(info.value)
    assert info.value.expected == f"at or after {DAY.isoformat()}"
    seen.note("a", DAY)  # the same document again
    seen.note("b", DAY - dt.timedelta(days=9))  # another key has its own bar
    seen.note("a", DAY + dt.timedelta(days=1))
    assert seen.newest("a") == DAY + dt.timedelta(days=1)
    with pytest.raises(UntrustedChain):
        seen.note("a", DAY)


def test_a_componentwise_rule() -> None:
    def older(mark: tuple[int, int], newest: tuple[int, int]) -> bool:
        return mark[0] < newest[0] or mark[1] < newest[1]

    seen: NewestSeen[str, tuple[int, int]] = NewestSeen(what="x", check="c", older=older)
    seen.note("k", (5, 3))
    for replay in ((4, 9), (9, 2)):
        with pytest.raises(UntrustedChain):
            seen.note("k", replay)
    seen.note("k", (5, 4))
    assert seen.newest("k") == (5, 4)


def test_the_memory_is_bounded_least_recently_noted_first() -> None:
    seen: NewestSeen[int, int] = NewestSeen(what="x", check="c", max_keys=2)
    seen.note(1, 10)
    seen.note(2, 10)
    seen.note(1, 10)  # noted again: now the most recent
    seen.note(3, 10)
    assert seen.newest(2) is None
    assert seen.newest(1) == 10
    assert seen.newest(3) == 10
    seen.clear()
    assert seen.newest(1) is None
    with pytest.raises(ValueError, match="max_keys"):
        NewestSeen(what="x", check="c", max_keys=0)

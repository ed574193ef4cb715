"""Replays of older genuine documents: remember the newest one that verified.

A revocation list or TCB collateral is signed, so whoever answers the fetch cannot
forge one, but can serve an older genuine one that is still before its next update:
a CRL from before a revocation, collateral from before a TCB recovery.  Each is
refused once a newer one has verified here (per process; the memory is lost on
restart).  Only documents that verified may raise the bar, so a forged answer
cannot make genuine ones refused.

One rule for every backend that fetches such documents (Intel DCAP collateral,
ITA and AMD revocation lists), so they cannot drift apart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from atls_core.errors import UntrustedChain

__all__ = ["NewestSeen"]

K = TypeVar("K", bound=Hashable)
M = TypeVar("M")


def _less(mark: Any, newest: Any) -> bool:
    return bool(mark < newest)


class NewestSeen(Generic[K, M]):
    """Per key, the issue mark (an issue time, a TCB evaluation number) of the newest
    verified document; :meth:`note` refuses an older one and remembers a newer one.

    ``older(mark, newest)`` says when ``mark`` is a rollback (default ``<``).  At most
    ``max_keys`` keys are kept, the least recently noted forgotten first.
    """

    def __init__(
        self,
        *,
        what: str,
        check: str,
        max_keys: int = 256,
        older: Callable[[M, M], bool] = _less,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._what = what
        self._check = check
        self._max_keys = max_keys
        self._older = older
        self._newest: OrderedDict[K, M] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, key: K, mark: M) -> None:
        """``mark`` is that of a document that verified for ``key``: refuse it if it is
        older than one noted before, else remember it if it is newer."""
        with self._lock:
            newest = self._newest.get(key)
            if newest is not None:
                if self._older(mark, newest):
                    raise UntrustedChain(
                        f"the {self._what} is older than one already verified (a replayed "
                        "document)",
                        check=self._check,
                        expected=f"at or after {_shown(newest)}",
                        actual=_shown(mark),
                    )
                if not self._older(newest, mark):  # the same or no newer: keep the first
                    self._newest.move_to_end(key)
                    return
            self._newest[key] = mark
            self._newest.move_to_end(key)
            while len(self._newest) > self._max_keys:
                self._newest.popitem(last=False)

    def newest(self, key: K) -> M | None:
        """The mark that now sets the bar for ``key``, if any."""
        with self._lock:
            return self._newest.get(key)

    def clear(self) -> None:
        with self._lock:
            self._newest.clear()


def _shown(mark: object) -> str:
    isoformat = getattr(mark, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(mark)

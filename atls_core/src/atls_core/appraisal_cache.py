"""The client's cache of appraisals of static certificates.

A server with a static certificate presents the same evidence on every
connection; re-verifying it each time buys nothing while the result is still
valid.  So an accepted, key-only result is kept, keyed by the certificate's
digest, and served again only for a byte-identical certificate, to the same
validator instance, before the result expires.  Nonce-fresh results are never
stored: their evidence answers one connection only.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING

from atls_core.binding import Freshness

if TYPE_CHECKING:
    from atls_core.clock import Clock
    from atls_core.result import AttestationResult
    from atls_core.selection import AppraiserLike

__all__ = ["AppraisalCache"]


class AppraisalCache:
    """Bounded cache of accepted key-only results, keyed by certificate digest.

    Only a static certificate (report data without a nonce) appraised under a
    policy that does not require nonce freshness is ever stored, so a hit can
    only skip re-verifying byte-identical evidence in a byte-identical
    certificate.  Entries die at the result's ``expires_at`` or after
    ``max_age`` seconds, whichever comes first.  An entry is served only to the
    validator instance (settings and policy) that appraised it, so a cache
    shared between contexts cannot hand one policy's verdict to another.
    """

    def __init__(self, *, max_entries: int = 256, max_age: float = 300.0) -> None:
        self._entries: collections.OrderedDict[
            tuple[str, str], tuple[AttestationResult, float, AppraiserLike]
        ]
        self._entries = collections.OrderedDict()
        self._max = max_entries
        self._max_age = max_age
        self._lock = threading.Lock()
        self.hits = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is ever stored (``max_entries`` above zero)."""
        return self._max > 0

    def get(
        self, rule: str, cert_digest: str, clock: Clock, *, selected: AppraiserLike
    ) -> AttestationResult | None:
        if self._max <= 0:
            return None
        key = (rule, cert_digest)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            result, stored_at, appraised_by = entry
            if appraised_by is not selected:
                return None
            if result.is_expired(clock.now()) or time.monotonic() - stored_at > self._max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return result

    def put(
        self, rule: str, cert_digest: str, result: AttestationResult, selected: AppraiserLike
    ) -> None:
        if self._max <= 0 or selected.policy.require_nonce:
            return
        if not (result.accepted and result.binding.verified):
            return
        if result.binding.freshness is not Freshness.KEY_ONLY:
            return
        with self._lock:
            self._entries[(rule, cert_digest)] = (result, time.monotonic(), selected)
            self._entries.move_to_end((rule, cert_digest))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

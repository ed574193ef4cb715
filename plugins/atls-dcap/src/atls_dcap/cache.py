"""Collateral cache: memory, then disk, then one fetch per key at a time.

Entries are served only while the appraisal's clock lies between the
collateral's issue date and its earliest *next update*; otherwise they are
refetched.
Concurrent appraisals needing the same collateral wait for a single fetch
(single-flight).  The disk layer is a best-effort accelerator: files are
written atomically with mode 0600 in a 0700 directory, and anything unreadable,
foreign or stale is ignored.  Cached collateral is never trusted: dcap-qvl
verifies its signatures on every appraisal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import attrs

from atls_core.errors import ATLSError
from atls_core.fetch import SingleFlight
from atls_core.rollback import NewestSeen
from atls_dcap.collateral import Collateral

__all__ = ["CollateralCache", "CollateralKey"]

_MAX_MEMORY_ENTRIES = 256


@attrs.frozen(cache_hash=True)
class CollateralKey:
    """What identifies one collateral: its source, FMSPC, PCK CA type and TEE type."""

    source: str
    fmspc: str
    ca: str
    tee: str

    @property
    def digest(self) -> str:
        text = "\n".join((self.source, self.fmspc, self.ca, self.tee))
        return hashlib.sha256(text.encode()).hexdigest()


@attrs.define
class _Stats:
    memory_hits: int = 0
    disk_hits: int = 0
    fetches: int = 0


def _older_evaluation(numbers: tuple[int, int], newest: tuple[int, int]) -> bool:
    """Either number lower: TCB info and QE identity are rated anew independently."""
    return numbers[0] < newest[0] or numbers[1] < newest[1]


class CollateralCache:
    """Thread-safe collateral cache (see module doc).  ``directory=None``: memory only."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.stats = _Stats()
        self._memory: OrderedDict[CollateralKey, Collateral] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: SingleFlight[CollateralKey, Collateral] = SingleFlight()
        self._evaluations: NewestSeen[CollateralKey, tuple[int, int]] = NewestSeen(
            what="collateral's TCB evaluation (tcbEvaluationDataNumber of TCB info, QE identity)",
            check="collateral.rollback",
            max_keys=_MAX_MEMORY_ENTRIES,
            older=_older_evaluation,
        )
        """Per key, the evaluation numbers of collateral that verified: older is a rollback."""
        self._noted: dict[CollateralKey, Collateral] = {}
        """Per key, collateral whose numbers are the bar (written with it, under ``_lock``):
        every cached appraisal notes the same object and skips the check."""

    def get(
        self, key: CollateralKey, *, now: dt.datetime, fetch: Callable[[], Collateral]
    ) -> Collateral:
        hit = self._memory_get(key, now)
        if hit is not None:
            return hit
        # Another thread fetching this key shares its outcome, success or failure.
        return self._flights.run(key, lambda: self._load_or_fetch(key, now, fetch))

    def _load_or_fetch(
        self, key: CollateralKey, now: dt.datetime, fetch: Callable[[], Collateral]
    ) -> Collateral:
        hit = self._memory_get(key, now)  # a flight may have finished just before ours began
        if hit is not None:
            return hit
        loaded = self._disk_get(key, now)
        if loaded is not None:
            self._memory_put(key, loaded)
            with self._lock:
                self.stats.disk_hits += 1
            return loaded
        with self._lock:
            self.stats.fetches += 1
        fetched = fetch()
        if self._fits(key, fetched, now):
            self._memory_put(key, fetched)
            self._disk_put(key, fetched)
        # Unfit collateral (expired, other FMSPC) is returned uncached: dcap-qvl then
        # rejects it with the specific error instead of the cache hiding the problem.
        return fetched

    # -- rollback -------------------------------------------------------------

    def note_verified(self, key: CollateralKey, collateral: Collateral) -> None:
        """``collateral`` verified for ``key``: refuse it if its TCB evaluation is older than
        collateral that verified here before, else remember it.

        Whoever answers a PCCS fetch could replay an older answer, still before its next
        update, that rates an out-of-date platform up to date.  Noted only once verified,
        so forged collateral cannot raise the bar and make genuine answers refused.
        """
        if self._noted.get(key) is collateral:
            return
        with self._lock:  # the bar and the object that may skip it change together
            self._evaluations.note(key, collateral.evaluation_numbers)
            if len(self._noted) >= _MAX_MEMORY_ENTRIES:
                self._noted.clear()
            self._noted[key] = collateral

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    # -- memory ---------------------------------------------------------------

    def _memory_get(self, key: CollateralKey, now: dt.datetime) -> Collateral | None:
        with self._lock:
            entry = self._memory.get(key)
            if entry is None:
                return None
            if not (entry.is_fresh(now) and entry.issued_at <= now):
                # Expired, or not yet issued at this (possibly recorded) time: refetch.
                del self._memory[key]
                return None
            self._memory.move_to_end(key)
            self.stats.memory_hits += 1
            return entry

    def _memory_put(self, key: CollateralKey, collateral: Collateral) -> None:
        with self._lock:
            self._memory[key] = collateral
            self._memory.move_to_end(key)
            while len(self._memory) > _MAX_MEMORY_ENTRIES:
                self._memory.popitem(last=False)

    @staticmethod
    def _fits(key: CollateralKey, collateral: Collateral, now: dt.datetime) -> bool:
        return (
            collateral.is_fresh(now)
            and collateral.issued_at <= now
            and collateral.fmspc == key.fmspc
            and collateral.tee_type == key.tee
        )

    # -- disk -----------------------------------------------------------------

    def _path(self, key: CollateralKey) -> Path | None:
        return None if self.directory is None else self.directory / f"{key.digest}.json"

    def _disk_get(self, key: CollateralKey, now: dt.datetime) -> Collateral | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            if not _owned_private(path.parent, directory=True):
                return None
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != _uid():
                return None  # not ours, or readable by others: ignore
            text = path.read_text(encoding="utf-8")
            collateral = Collateral.from_json(text)
        except (OSError, ValueError, ATLSError):
            return None
        return collateral if self._fits(key, collateral, now) else None

    def _disk_put(self, key: CollateralKey, collateral: Collateral) -> None:
        path = self._path(key)
        if path is None:
            return
        directory = path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = directory.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == _uid() and info.st_mode & 0o077:
                os.chmod(directory, 0o700)
            if not _owned_private(directory, directory=True):
                return  # a symlink or someone else's directory: do not write there
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
        except OSError:
            return  # the disk cache is an accelerator; memory still holds the entry
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(collateral.json_text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def _owned_private(path: Path, *, directory: bool) -> bool:
    """A real (non-symlink) file or directory of ours, closed to group and others."""
    try:
        info = path.lstat()
    except OSError:
        return False
    kind = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    return kind and info.st_uid == _uid() and not info.st_mode & 0o077

"""Where collateral comes from: Intel PCS, a configured PCCS, or an offline file.

dcap-qvl's fetchers are coroutines that need a running event loop, and the
obvious ``asyncio.run`` fails when the caller already runs inside one (an
async web app doing a blocking appraisal).  They therefore run on a private
event loop in one daemon thread, bounded by ``collateral_timeout``; a fault
or a timeout is :class:`CollateralUnavailable`, never an acceptance.  dcap-qvl's
default PCCS (a third party's) is never used: every fetch names its URL.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from atls_core.errors import CollateralUnavailable, ConfigurationError, MalformedEvidence
from atls_tdx.dcap.cache import CollateralKey
from atls_tdx.dcap.collateral import Collateral
from atls_tdx.dcap.settings import DcapSettings

__all__ = [
    "CollateralKey",
    "CollateralSource",
    "FileSource",
    "UrlSource",
    "make_source",
    "run_coroutine",
]

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class _LoopThread:
    """One private event loop in a daemon thread, started on first use.

    A forked child (pre-forking servers) does not inherit the thread, so it
    starts its own loop instead of waiting on a loop nobody runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()

    def loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        with self._lock:
            if self._pid != os.getpid():
                self._loop, self._pid = None, os.getpid()
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="atls-dcap-collateral", daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop


_LOOP = _LoopThread()


def run_coroutine(factory: Callable[[], Awaitable[T]], *, timeout: float, what: str) -> T:
    """Run ``factory()`` on the private loop and wait at most ``timeout`` seconds.

    Works from plain threads and from inside a running event loop (the caller
    blocks; the coroutine runs elsewhere).
    """
    import asyncio

    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    future = asyncio.run_coroutine_threadsafe(bounded(), _LOOP.loop())
    try:
        return future.result(timeout + 1.0)
    except (TimeoutError, concurrent.futures.TimeoutError) as exc:
        future.cancel()
        raise CollateralUnavailable(
            f"{what}: no answer within {timeout:g} s", check="collateral.timeout"
        ) from exc


class CollateralSource(Protocol):
    name: str

    def fetch(self, quote: bytes, key: CollateralKey) -> Collateral: ...


class UrlSource:
    """Intel PCS or a PCCS, through dcap-qvl's ``get_collateral(url, quote)``."""

    def __init__(self, url: str, *, name: str, timeout: float) -> None:
        self.url = url
        self.name = name
        self.timeout = timeout

    def fetch(self, quote: bytes, key: CollateralKey) -> Collateral:
        import dcap_qvl

        raw = bytes(quote)
        url = self.url
        try:
            fetched: Any = run_coroutine(
                lambda: dcap_qvl.get_collateral(url, raw),
                timeout=self.timeout,
                what=f"collateral from {self.name}",
            )
        except CollateralUnavailable:
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            raise CollateralUnavailable(
                f"collateral from {self.name} could not be fetched: {_one_line(exc)}",
                check="collateral.fetch",
            ) from exc
        try:
            text = fetched.to_json()
            if not key.platform:
                # The quote carries its own PCK chain: keep the cached collateral per
                # FMSPC, not tied to the first platform that asked for it.
                data = json.loads(text)
                if data.pop("pck_certificate_chain", None) is not None:
                    text = json.dumps(data)
            return Collateral.from_json(text)
        except MalformedEvidence as exc:
            raise CollateralUnavailable(
                f"collateral from {self.name} is unusable: {exc.reason}", check="collateral.fetch"
            ) from exc


class FileSource:
    """Offline collateral from a JSON file (dcap-qvl's QuoteCollateralV3 shape).

    The file is parsed once and re-read only when its size or mtime changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int], Collateral] | None = None

    def fetch(self, quote: bytes, key: CollateralKey | None = None) -> Collateral:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise ConfigurationError(
                f"collateral_file {self.path}: {exc.strerror}", check="config.dcap.collateral_file"
            ) from exc
        signature = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if self._loaded is not None and self._loaded[0] == signature:
                return self._loaded[1]
        try:
            text = self.path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"collateral_file {self.path}: {exc.strerror}", check="config.dcap.collateral_file"
            ) from exc
        collateral = Collateral.from_json(text)
        with self._lock:
            self._loaded = (signature, collateral)
        return collateral


def make_source(settings: DcapSettings) -> UrlSource | FileSource:
    if settings.collateral == "file":
        assert settings.collateral_file is not None
        return FileSource(settings.collateral_file)
    url = settings.source_url
    assert url is not None
    return UrlSource(url, name=settings.source_name, timeout=settings.collateral_timeout)


def platform_tag(quote: bytes) -> str:
    """A per-platform cache discriminator for quotes that carry no PCK chain."""
    return hashlib.sha256(bytes(quote)).hexdigest()[:32]


def _one_line(exc: BaseException) -> str:
    return (
        " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        or type(exc).__name__
    )

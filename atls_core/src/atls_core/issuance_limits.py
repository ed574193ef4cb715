"""Bounds on per-connection issuance: what an anonymous client can make a server spend.

Every handshake that carries a nonce makes the server ask its evidence source for
something (a quote, a call to Intel Trust Authority or Azure Attestation, the dstack
agent).  Without bounds, anyone who can open TCP connections decides how often that
happens and how many calls hang at once.  :class:`IssuanceLimiter` bounds it:

* **Concurrency**: at most ``max_concurrent`` issuer calls run, each on one of as many
  daemon worker threads (so the pool never grows with the number of handshakes).  A
  handshake that finds every slot taken waits for one only if it runs on its own
  thread and fewer than ``max_pending`` handshakes are already waiting; otherwise it is
  refused at once.  A connection an event loop drives (an ``SSLObject`` under asyncio or
  uvicorn, a non-blocking socket) never waits: a wait would stall every connection.
* **Rate**: token buckets, one for the whole server and one per client address where
  the server sees one (an IPv4 address, an IPv6 /64, since one host often holds a whole
  /64).  A refused handshake costs no issuer call.
* **Deadline**: a handshake gets ``timeout`` seconds in all for its slot and its
  evidence; then it is refused.  The slot stays taken until the call really returns, so
  a hung evidence source ends with every slot taken, at most ``max_pending`` handshakes
  waiting out their deadline and the rest refused at once: never a growing pile of
  threads or queued calls.

Refusals are :class:`~atls_core.errors.IssuanceRefused` with ``phase`` ``busy``,
``rate`` or ``timeout``; :class:`RefusalLog` reports them on ``atls.server`` at most
once per interval and message, with a count, so a flood cannot flood the log too.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NoReturn, TypeVar

import attrs

from atls_core.errors import ConfigurationError, IssuanceRefused
from atls_core.logs import library_logger

__all__ = [
    "DEFAULT_ISSUANCE_RATE",
    "DEFAULT_PER_CLIENT_RATE",
    "ClientBuckets",
    "IssuanceLimiter",
    "Rate",
    "RefusalLog",
    "TokenBucket",
    "client_address",
    "logger",
    "peer_key",
]

logger = library_logger("atls.server")

T = TypeVar("T")
Clock = Callable[[], float]


@attrs.frozen
class Rate:
    """``per_second`` on average, in bursts of up to ``burst`` (a token bucket)."""

    per_second: float
    burst: int

    def __attrs_post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)) or self.burst < 1:
            raise ConfigurationError(
                "a rate needs per_second > 0 and burst >= 1",
                check="server.issuance_rate",
                actual=(self.per_second, self.burst),
            )

    @classmethod
    def of(cls, value: Rate | float | None) -> Rate | None:
        """A :class:`Rate`, a number (per second, bursts of one second's worth) or ``None`` (off)."""
        if value is None or isinstance(value, Rate):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(
                "a rate is a Rate, a number per second or None",
                check="server.issuance_rate",
                actual=type(value).__name__,
            )
        return cls(per_second=float(value), burst=max(1, math.ceil(value)))


DEFAULT_ISSUANCE_RATE = Rate(per_second=50.0, burst=100)
"""Issuances for the whole server: 50 a second, bursts of 100."""
DEFAULT_PER_CLIENT_RATE = Rate(per_second=10.0, burst=100)
"""Per client address: a fifth of the server's sustained rate, the same burst
(a client opening a connection pool at once is not refused)."""


class TokenBucket:
    """Starts full; ``take`` spends one token if there is one."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(float(self.rate.burst), self._tokens + elapsed * self.rate.per_second)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class ClientBuckets:
    """One bucket per client, the least recently seen forgotten beyond ``max_clients``.

    A forgotten client starts full again; the global bucket still bounds what many
    addresses achieve together.
    """

    def __init__(self, rate: Rate, *, max_clients: int = 4096) -> None:
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now: float) -> bool:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket.take(now)


def client_address(connection: object) -> str | None:
    """The peer an ``sni_callback`` connection comes from, as a rate-limit key.

    An ``SSLSocket`` knows its peer; an ``SSLObject`` (asyncio, uvicorn) does not, and
    neither does a Unix socket: ``None``, and only the global limits apply.
    """
    getpeername = getattr(connection, "getpeername", None)
    if getpeername is None:
        return None
    try:
        peer = getpeername()
    except OSError:
        return None
    return peer_key(peer)


def peer_key(peer: object) -> str | None:
    """The rate-limit key of a peer address (``(host, port, ...)``, as sockets and ASGI's
    ``scope["client"]`` give it): the IPv4 address or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])  # type: ignore[index]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RefusalLog:
    """One warning per message and ``interval``, counting the refusals in between."""

    def __init__(
        self,
        *,
        interval: float = 5.0,
        clock: Clock = time.monotonic,
        what: str = "per-connection handshake(s)",
    ) -> None:
        self.interval = interval
        self.what = what
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._unreported: collections.Counter[str] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()
        """Refusals by phase (``busy``, ``rate``, ``timeout``, ``error``) since start."""

    def refused(self, phase: str, message: str, detail: str = "") -> None:
        now = self._clock()
        with self._lock:
            self.counts[phase] += 1
            self._unreported[message] += 1
            last = self._last.get(message)
            if last is not None and now - last < self.interval:
                return
            self._last[message] = now
            count = self._unreported.pop(message)
        logger.warning(
            "refused %d %s: %s%s",
            count,
            self.what,
            message,
            f" ({detail})" if detail else "",
        )

    def failed(self, message: str, error: BaseException) -> None:
        """An evidence source that raised: counted and reported as ``error``.

        The warning names the failing check or the exception type only (a message may
        carry a service's answer); the traceback and message follow at DEBUG, where an
        operator who asks for them sees why the plugin failed.
        """
        check = getattr(error, "check", None)
        self.refused(
            "error", message, f"{type(error).__name__}: {check}" if check else type(error).__name__
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: %s", message, error, exc_info=error)


class _Workers:
    """Daemon threads for issuer calls: at most ``size``, started as calls need them.

    Daemon threads, unlike ``ThreadPoolExecutor``'s, do not hold up interpreter exit
    when an evidence source hangs; a thread idle for ``idle`` seconds ends.  Callers
    hold a slot per call, so no more than ``size`` calls are ever queued or running.
    """

    def __init__(self, size: int, *, idle: float = 60.0) -> None:
        self.size = size
        self.idle = idle
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._busy = 0

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:  # a thread decides to end under this lock, seeing the queue
            self._busy += 1
            if self._busy > self._threads and self._threads < self.size:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"atls-issuer-{self._threads}", daemon=True
                ).start()
            self._tasks.put((future, call))
        return future

    def _work(self) -> None:
        while True:
            try:
                future, call = self._tasks.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if self._tasks.empty():
                        self._threads -= 1
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as error:  # handed to the waiting handshake
                    future.set_exception(error)
            with self._lock:
                self._busy -= 1
            del future, call


class IssuanceLimiter:
    """Runs issuer calls under the concurrency cap, the rates and the deadline.

    ``clock`` drives the token buckets only (tests freeze it); deadlines use the
    monotonic clock the waits themselves use.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 8,
        max_pending: int = 64,
        rate: Rate | float | None = None,
        per_client_rate: Rate | float | None = None,
        timeout: float = 10.0,
        max_clients: int = 4096,
        clock: Clock = time.monotonic,
        log: RefusalLog | None = None,
    ) -> None:
        if max_concurrent < 1 or max_pending < 0:
            raise ConfigurationError(
                "max_concurrent_issuances must be >= 1 and max_pending_issuances >= 0",
                check="server.max_concurrent_issuances",
                actual=(max_concurrent, max_pending),
            )
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigurationError(
                "issuance_timeout must be a positive number of seconds",
                check="server.issuance_timeout",
                actual=timeout,
            )
        self.max_concurrent = max_concurrent
        self.max_pending = max_pending
        self.timeout = timeout
        self.rate = Rate.of(rate)
        self.per_client_rate = Rate.of(per_client_rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._free = max_concurrent
        self._waiting: collections.deque[object] = collections.deque()
        self._global = TokenBucket(self.rate, clock()) if self.rate else None
        self._clients = (
            ClientBuckets(self.per_client_rate, max_clients=max_clients)
            if self.per_client_rate
            else None
        )
        self._workers = _Workers(max_concurrent)
        self.log = log or RefusalLog()
        self.calls = 0
        """Issuer calls started (for operators and tests)."""
        self.in_flight = 0
        """Issuer calls running now, hung ones included."""

    @property
    def worker_threads(self) -> int:
        return self._workers.threads

    @property
    def waiting(self) -> int:
        """Handshakes waiting in line for a slot now."""
        return len(self._waiting)

    def submit(
        self,
        call: Callable[[], T],
        *,
        client: str | None = None,
        limited: bool = True,
        may_wait: bool = True,
    ) -> tuple[Future[T], float]:
        """Start ``call`` on a worker; returns its future and the deadline for :meth:`wait`.

        ``limited=False`` (the start-up certificate) skips the rates, not the cap or the
        deadline.  Raises :class:`IssuanceRefused` when refused.
        """
        deadline = time.monotonic() + self.timeout
        if limited:
            self._admit(client)
        self._take_slot(deadline, may_wait=may_wait)
        try:
            future = self._workers.submit(call)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future, deadline

    def wait(self, future: Future[T], deadline: float) -> T:
        """The call's result, or :class:`IssuanceRefused` once ``deadline`` passes."""
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            self._refuse("timeout", "the evidence source did not answer in time")

    def call(
        self,
        call: Callable[[], T],
        *,
        client: str | None = None,
        limited: bool = True,
        may_wait: bool = True,
    ) -> T:
        return self.wait(*self.submit(call, client=client, limited=limited, may_wait=may_wait))

    async def call_async(self, call: Callable[[], T], *, client: str | None = None) -> T:
        """:meth:`call` for an event loop: awaited, so the loop keeps serving meanwhile.

        Never waits in line for a slot (a full house is refused at once, as for any
        connection a loop drives); the deadline still bounds the wait for the evidence.
        """
        import asyncio

        future, deadline = self.submit(call, client=client, may_wait=False)
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(future), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            self._refuse("timeout", "the evidence source did not answer in time")

    def idle(self, timeout: float) -> bool:
        """Wait until no issuer call runs (tests, orderly shutdown); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.in_flight == 0, timeout)

    def _admit(self, client: str | None) -> None:
        now = self._clock()
        with self._lock:
            client_ok = client is None or self._clients is None or self._clients.take(client, now)
            global_ok = not client_ok or self._global is None or self._global.take(now)
        if not client_ok:
            self._refuse("rate", "per-client issuance rate exceeded", client=client)
        if not global_ok:
            self._refuse("rate", "issuance rate exceeded")

    def _take_slot(self, deadline: float, *, may_wait: bool) -> None:
        """A free slot, first come first served: a newcomer never overtakes a waiter."""
        with self._changed:
            if self._free and not self._waiting:
                self._claim()
                return
            may_queue = may_wait and len(self._waiting) < self.max_pending
            taken = self._wait_for_slot(deadline) if may_queue else None
        if taken is None:
            self._refuse("busy", "every issuance slot is taken")
        if not taken:
            self._refuse("timeout", "no issuance slot freed in time")

    def _wait_for_slot(self, deadline: float) -> bool:
        """In line until first with a free slot, or until ``deadline``; holds the lock."""
        ticket = object()
        self._waiting.append(ticket)
        try:
            while not (self._free and self._waiting[0] is ticket):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self._claim()
            return True
        finally:
            self._waiting.remove(ticket)
            self._changed.notify_all()

    def _claim(self) -> None:
        """Take a free slot for a call about to start; holds the lock."""
        self._free -= 1
        self.in_flight += 1
        self.calls += 1

    def _release(self, _future: Future[Any] | None) -> None:
        with self._changed:
            self._free += 1
            self.in_flight -= 1
            self._changed.notify_all()

    def _refuse(self, phase: str, message: str, *, client: str | None = None) -> NoReturn:
        self.log.refused(phase, message, f"client {client}" if client else "")
        raise IssuanceRefused(message, phase=phase, check=f"server.issuance_{phase}")

"""SingleFlight under forced interleavings: one call per key, a failure each waiter owns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from atls_core.errors import CollateralUnavailable
from atls_core.fetch import SingleFlight

WAITERS = 8


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition()`` (a state other threads reach), failing after a long while."""
    give_up = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < give_up, f"never happened: {what}"
        time.sleep(0.005)


def _flight_with_waiters(
    flights: SingleFlight[str, int], leader_call: Callable[[], int]
) -> tuple[list[threading.Thread], list[object]]:
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(flights.run("k", leader_call))
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=run) for _ in range(WAITERS + 1)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_every_caller_arriving_during_a_flight_waits_for_it() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    gate = threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        gate.wait(30)
        return 7

    threads, outcomes = _flight_with_waiters(flights, slow)
    _until(lambda: flights.waiting() == WAITERS, "every other caller waits on the flight")
    gate.set()
    for thread in threads:
        thread.join(30)
    assert calls == [1]
    assert outcomes == [7] * (WAITERS + 1)
    assert flights.waiting() == 0
    assert flights.in_flight() == 0


def test_each_waiter_gets_its_own_copy_of_the_failure() -> None:
    # One exception object raised in many threads at once has its traceback and
    # context rewritten by each: every caller gets an equal error of its own.
    flights: SingleFlight[str, int] = SingleFlight()
    gate = threading.Event()
    raised: list[CollateralUnavailable] = []

    def failing() -> int:
        gate.wait(30)
        error = CollateralUnavailable("keys unavailable from the source", check="jwt.keys")
        raised.append(error)
        raise error

    threads, outcomes = _flight_with_waiters(flights, failing)
    _until(lambda: flights.waiting() == WAITERS, "every other caller waits on the flight")
    gate.set()
    for thread in threads:
        thread.join(30)
    assert len(raised) == 1
    assert len(outcomes) == WAITERS + 1
    assert all(isinstance(o, CollateralUnavailable) for o in outcomes)
    assert len({id(o) for o in outcomes}) == WAITERS + 1
    assert {str(o) for o in outcomes} == {str(raised[0])}
    assert {o.check for o in outcomes if isinstance(o, CollateralUnavailable)} == {"jwt.keys"}

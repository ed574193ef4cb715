"""What every benchmark script shares: interleaved timing, per-round ratios, one report line.

A ratio is taken round by round: in each round every case runs its batch, in a shuffled
order, so a machine that slows down (other load, frequency changes) slows the measured case
and its baseline alike.  The report is the median of those per-round ratios with their
10th-90th percentile spread, one line per ratio, in a format meant to be compared across
commits::

    name: 1.04 (1.01-1.09) target <=1.05

Imported by the scripts beside it (``python benchmarks/bench_x.py`` puts this folder on
``sys.path``); standard library only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Case = Callable[[], object]


UNLIMITED: dict[str, Any] = {"issuance_rate": None, "per_client_rate": None}
"""Issuance bounds off: a benchmark measures cost, and its one client making hundreds of
issuances a second would be refused by a server's rates."""


def quiet_logs() -> None:
    """Silence atls's loggers: a benchmark appraises thousands of times and each may warn."""
    logging.getLogger("atls").setLevel(logging.CRITICAL + 1)


def machine() -> str:
    """The load the numbers were measured under (they mean little on a busy machine)."""
    one, five, fifteen = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def header(title: str) -> None:
    print(f"== {title}")
    print(machine())


@dataclasses.dataclass
class Timings:
    """Seconds per call of each case, one sample per round: elapsed, and this thread's CPU.

    Elapsed time is what a caller waits; on a machine shared with other work it is mostly
    the scheduler's noise.  CPU time of the calling thread leaves that out (it still counts
    everything the case computes in this thread, so it cannot hide work done here).
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleave(
    cases: Mapping[str, Case], *, rounds: int, per_round: int = 1, warm_up: int = 5
) -> Timings:
    """Time every case once per round, in an order shuffled each round."""
    for case in cases.values():
        for _ in range(warm_up):
            case()
    timings = Timings(wall={name: [] for name in cases}, cpu={name: [] for name in cases})
    names = list(cases)
    shuffle = random.Random(0x61746C73).shuffle  # seeded: the same order on every run
    for _ in range(rounds):
        shuffle(names)
        for name in names:
            case = cases[name]
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(per_round):
                case()
            timings.cpu[name].append((time.thread_time() - cpu) / per_round)
            timings.wall[name].append((time.perf_counter() - wall) / per_round)
    return timings


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


def ratios(measured: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Round-by-round ratios of two cases timed in the same rounds."""
    return [m / b for m, b in zip(measured, baseline, strict=True)]


def ratio_line(name: str, values: Sequence[float], target: str) -> str:
    """``name: median (p10-p90) target X``: the one format every ratio is printed in."""
    median, low, high = spread(values)
    return f"{name}: {median:.2f} ({low:.2f}-{high:.2f}) target {target}"


def report(name: str, values: Sequence[float], target: str) -> None:
    print(ratio_line(name, values, target))


def time_line(label: str, seconds: Sequence[float], unit: str = "ms") -> None:
    """A case's own median and spread, for reading the ratios."""
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    median, low, high = spread(seconds)
    print(f"  {label:<48} {median * scale:9.3f} {unit} ({low * scale:.3f}-{high * scale:.3f})")

"""Benchmark: DcapVerifier with cached collateral vs a bare dcap_qvl.verify, same inputs, same run.

    ATLS_VECTORS=/work/shared/vectors python benchmarks/bench_dcap.py

Uses the recorded tdx/dcap-sample quote when $ATLS_VECTORS is set, else a synthetic quote from
atls_dcap.testing (under its own root).  Collateral is fetched once (per verifier) from a loopback
FakePcs and then served from the cache, as in a long-running client.  Prints per-call medians of
the bare call, DcapVerifier.verify and the whole offline tdx.dcap appraisal (select_validator, a
policy pinning the quote's MRTD), the ratio (target < 1.2x) and appraisals/second with 1 and 2 threads (dcap-qvl holds the GIL, so two
threads are not expected to double the rate).  Finishes in well under 60 s.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dcap_qvl

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_dcap import DcapSettings, DcapVerifier
from atls_dcap.testing.pccs import FakePcs

ROUNDS = 15
PER_ROUND = 200


def inputs() -> tuple[bytes, str, int, bytes | None, str]:
    root = os.environ.get("ATLS_VECTORS")
    if root:
        base = Path(root) / "tdx" / "dcap-sample"
        quote = (base / "quote.bin").read_bytes()
        return (
            quote,
            (base / "collateral.json").read_text(),
            1750331763,
            None,
            "recorded tdx/dcap-sample",
        )
    from atls_dcap.testing.pki import DcapTestPki
    from atls_dcap.testing.quotes import make_tdx_quote

    issued = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    pki = DcapTestPki.generate(seed=b"bench_dcap")
    quote = make_tdx_quote(pki, bytes(64))
    collateral = pki.collateral_json("tdx", issue_date=issued)
    return (
        quote,
        collateral,
        int((issued + dt.timedelta(days=1)).timestamp()),
        pki.root_ca_der,
        "synthetic",
    )


def batch(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(PER_ROUND):
        fn()
    return (time.perf_counter() - start) / PER_ROUND


def interleaved(fns: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Per-call times of each function, measured in alternating rounds (shares machine noise)."""
    for fn in fns.values():
        for _ in range(50):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            times[name].append(batch(fn))
    return times


def rate(fn: Callable[[], object], threads: int, seconds: float = 2.0) -> float:
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < stop:
            fn()
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def main() -> None:
    quote, collateral_json, now_secs, root, label = inputs()
    now = dt.datetime.fromtimestamp(now_secs, dt.UTC)
    bare_collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    if root is None:

        def bare() -> Any:
            return dcap_qvl.verify(quote, bare_collateral, now_secs)
    else:

        def bare() -> Any:
            return dcap_qvl.verify_with_root_ca(quote, bare_collateral, root, now_secs)

    with FakePcs(collateral_json) as pcs:
        settings: dict[str, Any] = {"collateral": "pccs", "pccs_url": pcs.url, "cache_dir": "none"}
        if root is not None:
            settings.update(root_ca=root, allow_custom_root=True)
        verifier = DcapVerifier(DcapSettings.from_settings(settings))
        mrtd = verifier.verify(quote, now=now).measurements["mrtd"]  # warm the cache: one fetch

        def ours() -> Any:
            return verifier.verify(quote, now=now)

        # The whole offline appraisal through the public path: the core's skeleton around
        # tdx.dcap's verify, with a policy that pins the TD (the core refuses one that does not).
        selected = select_validator(
            "tdx.dcap", settings=settings, policy=Policy(reference_values={"mrtd": mrtd.hex()})
        )
        evidence = selected.validator.evidence_from_file(quote, name=label)
        clock = FixedClock(now)
        offline = BindingContext.offline_context()

        def appraisal() -> Any:
            return selected.appraise(evidence, binding=offline, clock=clock)

        warm = appraisal()  # warm its own cache: one more fetch
        if not warm.accepted:
            raise SystemExit(f"benchmark input was not accepted: {warm.to_json()}")
        fetched = pcs.total_requests

        times = interleaved({"bare": bare, "ours": ours, "full": appraisal})
        bare_t = statistics.median(times["bare"])
        ours_t = statistics.median(times["ours"])
        full_t = statistics.median(times["full"])
        ratio = statistics.median(o / b for o, b in zip(times["ours"], times["bare"], strict=True))
        full_ratio = statistics.median(
            f / b for f, b in zip(times["full"], times["bare"], strict=True)
        )
        rates = {n: rate(appraisal, n) for n in (1, 2)}
        bare_rates = {n: rate(bare, n) for n in (1, 2)}
        assert pcs.total_requests == fetched, "the cache-hit path made a network request"

    print(f"input: {label}; collateral fetched from FakePcs once per cache ({fetched} requests)")
    print(f"bare dcap_qvl.verify           : {bare_t * 1e3:8.3f} ms/call")
    print(
        f"DcapVerifier.verify (cached)   : {ours_t * 1e3:8.3f} ms/call   ratio {ratio:5.2f}x (target < 1.2x)"
    )
    print(
        f"tdx.dcap appraisal (offline)   : {full_t * 1e3:8.3f} ms/call   ratio {full_ratio:5.2f}x"
    )
    for n in (1, 2):
        print(
            f"appraisals/s with {n} thread(s): {rates[n]:8.0f}   (bare dcap_qvl.verify: {bare_rates[n]:8.0f}/s)"
        )


if __name__ == "__main__":
    main()

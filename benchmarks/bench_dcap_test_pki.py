"""How fast the synthetic DCAP PKI is (atls_dcap.testing): generation, collateral, quotes.

Baseline, measured in the same run: one dcap-qvl verification of the generated TDX quote.
Run: /work/venv/bin/python benchmarks/bench_dcap_test_pki.py
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable

import dcap_qvl

from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    report_data = bytes(64)
    pki = DcapTestPki.generate(seed=b"bench")
    collateral_json = pki.collateral_json("tdx")
    collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    quote = make_tdx_quote(pki, report_data)
    now = int(time.time())
    baseline = median_seconds(
        lambda: dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, now), 200
    )
    issue_dates = iter(
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=i)
        for i in range(10_000)
    )
    cases: dict[str, tuple[Callable[[], object], int]] = {
        "generate PKI (fresh keys)": (DcapTestPki.generate, 50),
        "collateral_json (uncached)": (
            lambda: pki.collateral_json(issue_date=next(issue_dates)),
            200,
        ),
        "collateral_json (cached)": (lambda: pki.collateral_json("tdx"), 2000),
        "make_tdx_quote v4": (lambda: make_tdx_quote(pki, report_data), 500),
        "make_tdx_quote v5": (lambda: make_tdx_quote(pki, report_data, version=5), 500),
        "make_sgx_quote v3": (lambda: make_sgx_quote(pki, report_data), 500),
    }
    print(f"baseline: dcap-qvl verify_with_root_ca of one TDX quote = {baseline * 1e3:.3f} ms")
    for name, (action, repeat) in cases.items():
        seconds = median_seconds(action, repeat)
        print(f"{name:32s} {seconds * 1e3:8.3f} ms  = {seconds / baseline:6.1f} x baseline")


if __name__ == "__main__":
    main()

"""How fast the synthetic DCAP PKI is (atls_dcap.testing): generation, collateral, quotes.

Baseline, measured in the same rounds (interleaved): one dcap-qvl verification of the
generated TDX quote.  CPU time of the calling thread.
Run: python benchmarks/bench_dcap_test_pki.py
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import dcap_qvl
import harness

from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote


def main() -> None:
    harness.header("synthetic DCAP PKI (atls_dcap.testing) vs one dcap-qvl verification")
    report_data = bytes(64)
    pki = DcapTestPki.generate(seed=b"bench")
    collateral_json = pki.collateral_json("tdx")
    collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    quote = make_tdx_quote(pki, report_data)
    now = int(time.time())
    issue_dates = iter(
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=i)
        for i in range(100_000)
    )
    cases: dict[str, Callable[[], object]] = {
        "baseline": lambda: dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, now),
        "generate PKI (fresh keys)": DcapTestPki.generate,
        "collateral_json (uncached)": lambda: pki.collateral_json(issue_date=next(issue_dates)),
        "collateral_json (cached)": lambda: pki.collateral_json("tdx"),
        "make_tdx_quote v4": lambda: make_tdx_quote(pki, report_data),
        "make_tdx_quote v5": lambda: make_tdx_quote(pki, report_data, version=5),
        "make_sgx_quote v3": lambda: make_sgx_quote(pki, report_data),
    }
    times = harness.interleave(cases, rounds=30, per_round=5)
    print("per call, CPU time of the calling thread:")
    harness.time_line("dcap-qvl verify_with_root_ca (baseline)", times.cpu["baseline"])
    for name in list(cases)[1:]:
        harness.time_line(name, times.cpu[name])
        label = "dcap_test_pki." + "_".join(name.lower().replace("(", "").replace(")", "").split())
        harness.report(label, harness.ratios(times.cpu[name], times.cpu["baseline"]), "none")


if __name__ == "__main__":
    main()

"""Benchmark: a full tdx.dstack appraisal vs the bare quote verification inside it, same run.

    python benchmarks/bench_dstack.py

Synthetic quote under atls_dcap.testing's PKI (custom root, tests only) with a dstack-shaped event
log.  Prints per-call medians of (a) DcapVerifier.verify alone (the baseline), (b) the whole
tdx.dstack appraisal through select_validator (quote + event-log replay + the policy, which pins
the compose file), and (c) parsing + replaying a 1000-event log, with ratios to the baseline.
Interleaved; compared in CPU time of the calling thread.  Finishes in well under a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import harness

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.evidence import EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote
from atls_tdx.dstack_eventlog import parse_event_log, replay
from atls_tdx.dstack_evidence import evidence_from_quote_document
from atls_tdx.tdx_common import make_verifier
from atls_tdx.testing.dstack import dstack_event_log, replay_rtmrs, runtime_event

NOW = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
COMPOSE = '{"runner":"docker-compose","docker_compose_file":"services: {}"}'


def main() -> None:
    harness.quiet_logs()
    harness.header("tdx.dstack appraisal vs its quote verification")
    pki = DcapTestPki.generate(seed="bench-dstack")
    directory = Path(tempfile.mkdtemp(prefix="atls-bench-"))
    collateral = directory / "collateral.json"
    collateral.write_text(
        pki.collateral_json(
            "tdx",
            issue_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            next_update=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        )
    )
    (directory / "root.der").write_bytes(pki.root_ca_der)
    settings = {
        "collateral_file": str(collateral),
        "root_ca": str(directory / "root.der"),
        "allow_custom_root": True,
        "cache_dir": "none",
    }
    events = dstack_event_log(app_compose=COMPOSE)
    quote = make_tdx_quote(pki, bytes(64), rtmr=replay_rtmrs(events))
    document = json.dumps({"quote": quote.hex(), "event_log": json.dumps(events)}).encode()
    evidence = evidence_from_quote_document(
        document, source=EvidenceSource(transport=Transport.FILE, location="bench")
    )
    # The policy pins the deployment by its compose file (a dstack pinning option).
    selected = select_validator(
        "tdx.dstack",
        settings=settings,
        policy=Policy(options={"app_compose": COMPOSE}),
        allow_insecure=True,  # the synthetic root is a tests-only setting
    )
    verifier = make_verifier(settings, tuple(settings))
    offline = BindingContext.offline_context()
    clock = FixedClock(NOW)

    result = selected.appraise(evidence, binding=offline, clock=clock)
    if not result.accepted:
        raise SystemExit(f"benchmark input was not accepted: {result.to_json()}")
    long_log = json.dumps(
        [*events, *(runtime_event(f"app-{i}", i.to_bytes(4, "big")) for i in range(987))]
    )
    times = harness.interleave(
        {
            "quote": lambda: verifier.verify(quote, now=NOW),
            "full": lambda: selected.appraise(evidence, binding=offline, clock=clock),
            "replay": lambda: replay(parse_event_log(long_log)),
        },
        rounds=30,
        per_round=5,
    )
    cpu = times.cpu
    print("per call, CPU time of the calling thread:")
    harness.time_line("quote verification (DcapVerifier, baseline)", cpu["quote"])
    harness.time_line("tdx.dstack appraisal (13 events)", cpu["full"])
    harness.time_line("parse + replay of 1000 events", cpu["replay"])
    harness.report("dstack.appraisal_vs_quote", harness.ratios(cpu["full"], cpu["quote"]), "none")
    harness.report(
        "dstack.replay_1000_events_vs_quote", harness.ratios(cpu["replay"], cpu["quote"]), "none"
    )


if __name__ == "__main__":
    main()

"""Benchmark: appraising an ITA token with ita.tdx vs a bare pyjwt signature check, same run.

    python benchmarks/bench_ita.py

Tokens are signed by the stand-in ITA service (atls_ita.testing, on 127.0.0.1) with PS384.
"atls" is the whole per-connection path with warm caches: header checks, key lookup in the
JWKS cache, the cached x5c-chain verdict, the signature, iss/exp/nbf/iat, the claim mapping,
ITA's report-data rule, the atls-v1 binding, the policy and the result.  "bare" is one
``jwt.decode`` with the key in hand and claim checks off.  "cold" is the first appraisal of a
fresh validator (one JWKS fetch over loopback + the chain verification).  The three are
interleaved; warm is compared in CPU time of the calling thread, cold in elapsed time (it
waits for the loopback service).  Finishes in well under a minute.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import harness
import jwt

from atls_core.binding import new_nonce
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token

ROUNDS = 30
PER_ROUND = 10


def main() -> None:
    harness.quiet_logs()
    harness.header("ita.tdx appraisal vs a bare pyjwt decode")
    now = dt.datetime.now(dt.UTC)
    with (
        StandInIta(api_key="bench", clock=FixedClock(now)) as ita,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = ita.validator_settings(Path(tmp) / "root.pem")
        issued = issue_token(ita, nonce=new_nonce())
        clock = FixedClock(now + dt.timedelta(seconds=1))
        policy = Policy(reference_values=workload_pin())
        selected = select_validator(
            "ita.tdx", settings=settings, policy=policy, allow_insecure=True
        )
        public_key = ita.pki.signers["PS384"].key.public_key()

        def atls() -> object:
            result = selected.appraise(issued.evidence, binding=issued.binding, clock=clock)
            assert result.accepted
            return result

        def bare() -> object:
            return jwt.decode(
                issued.token, public_key, algorithms=["PS384"], options={"verify_exp": False}
            )

        def cold() -> object:
            fresh = select_validator(
                "ita.tdx", settings=settings, policy=policy, allow_insecure=True
            )
            return fresh.appraise(issued.evidence, binding=issued.binding, clock=clock)

        atls()  # warm the caches
        before = ita.requests["/certs"]
        for _ in range(100):
            atls()
        warm_requests = ita.requests["/certs"] - before
        times = harness.interleave(
            {"bare": bare, "atls": atls, "cold": cold}, rounds=ROUNDS, per_round=PER_ROUND
        )
    print("per call, CPU time of the calling thread (cold: elapsed):")
    harness.time_line("bare pyjwt PS384 decode", times.cpu["bare"], "us")
    harness.time_line("ita.tdx appraisal (warm caches)", times.cpu["atls"], "us")
    harness.time_line("ita.tdx appraisal (cold, elapsed)", times.wall["cold"], "us")
    print(f"JWKS requests during 100 warm appraisals: {warm_requests}")
    harness.report(
        "ita.tdx_warm_vs_bare_jwt", harness.ratios(times.cpu["atls"], times.cpu["bare"]), "none"
    )
    harness.report(
        "ita.tdx_cold_vs_bare_jwt", harness.ratios(times.wall["cold"], times.wall["bare"]), "none"
    )


if __name__ == "__main__":
    main()

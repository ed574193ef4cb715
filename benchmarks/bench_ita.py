"""Benchmark: appraising an ITA token with ita.tdx vs a bare pyjwt signature check, same run.

    python benchmarks/bench_ita.py

Tokens are signed by the stand-in ITA service (atls_ita.testing, on 127.0.0.1) with PS384.
"atls" is the whole per-connection path with warm caches: header checks, key lookup in the
JWKS cache, the cached x5c-chain verdict, the signature, iss/exp/nbf/iat, the claim mapping,
ITA's report-data rule, the atls-v1 binding, the policy and the result.  "bare" is one
``jwt.decode`` with the key in hand and claim checks off.  "cold" is the first appraisal of a
fresh validator (one JWKS fetch over loopback + the chain verification).  Prints medians and
ratios.  Finishes in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt

from atls_core.binding import new_nonce
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token

ROUNDS = 7
PER_ROUND = 200


def _median_us(work: Callable[[], object], per_round: int = PER_ROUND) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(per_round):
            work()
        samples.append((time.perf_counter() - start) / per_round * 1e6)
    return statistics.median(samples)


def main() -> None:
    now = dt.datetime.now(dt.UTC)
    with (
        StandInIta(api_key="bench", clock=FixedClock(now)) as ita,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = ita.validator_settings(Path(tmp) / "root.pem")
        issued = issue_token(ita, nonce=new_nonce())
        clock = FixedClock(now + dt.timedelta(seconds=1))
        policy = Policy(reference_values=workload_pin())
        selected = select_validator("ita.tdx", settings=settings, policy=policy)
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
            fresh = select_validator("ita.tdx", settings=settings, policy=policy)
            return fresh.appraise(issued.evidence, binding=issued.binding, clock=clock)

        atls()  # warm the caches
        before = ita.requests["/certs"]
        warm_us = _median_us(atls)
        warm_requests = ita.requests["/certs"] - before
        bare_us = _median_us(bare)
        cold_us = _median_us(cold, per_round=10)
        print(f"ita.tdx appraisal (warm caches): {warm_us:8.1f} us median")
        print(f"bare pyjwt PS384 decode:         {bare_us:8.1f} us median")
        print(f"ita.tdx appraisal (cold, fresh validator, JWKS fetch + chain): {cold_us:8.1f} us")
        print(f"ratio warm/bare: {warm_us / bare_us:.2f}x   cold/warm: {cold_us / warm_us:.1f}x")
        print(f"JWKS requests during {ROUNDS * PER_ROUND} warm appraisals: {warm_requests}")


if __name__ == "__main__":
    main()

"""Benchmark: appraising an MAA token with azure.aci vs a bare pyjwt signature check, same run.

    python benchmarks/bench_azure.py

Tokens are signed by the stand-in MAA service (atls_azure.testing.maa, on 127.0.0.1), RS256.
"atls" is the whole per-connection path with warm caches: header checks, issuer selection,
key lookup in the JWKS cache, the x5c certificate, the signature, iss/exp/nbf/iat, the ACI
claim mapping, the azure-aci binding and x-ms-runtime checks, the policy and the result.
"bare" is one ``jwt.decode`` with the key in hand and claim checks off.  "cold" is the
first appraisal by a fresh validator (OpenID discovery + one JWKS fetch over loopback).
Prints medians and ratios.  Finishes in a few seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jwt

from atls_azure.issuer import aci_runtime_data
from atls_azure.specs import ACI_OID, MEDIA_TYPE
from atls_azure.testing.maa import StandInMaa, new_tls_key
from atls_core.binding import BindingContext, new_nonce
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.selection import select_validator

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
    with StandInMaa() as maa:
        _key, spki = new_tls_key()
        nonce = new_nonce()
        claims = maa.aci_claims(aci_runtime_data(spki, nonce))
        token = maa.sign(claims)
        evidence = Evidence(
            media_type=MEDIA_TYPE,
            data=token.encode(),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ACI_OID),
        )
        binding = BindingContext(spki_der=spki, nonce=nonce)
        clock = FixedClock.from_unix(claims["iat"] + 5)
        policy = Policy(options={"hostdata": [claims["x-ms-sevsnpvm-hostdata"]]})
        public = maa.key.private_key.public_key()

        def bare() -> object:
            return jwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False})

        selected = select_validator("azure.aci", settings=maa.settings(), policy=policy)

        def atls() -> object:
            return selected.appraise(evidence, binding=binding, clock=clock)

        def cold() -> object:
            fresh = select_validator("azure.aci", settings=maa.settings(), policy=policy)
            return fresh.appraise(evidence, binding=binding, clock=clock)

        assert atls().accepted  # type: ignore[attr-defined]
        bare_us = _median_us(bare)
        atls_us = _median_us(atls)
        cold_us = _median_us(cold, per_round=20)
        fetches = maa.requests.get("/certs", 0)
    print(f"bare pyjwt RS256 decode      {bare_us:9.1f} us")
    print(f"azure.aci appraisal (warm)   {atls_us:9.1f} us   x{atls_us / bare_us:.2f} of bare")
    print(f"azure.aci appraisal (cold)   {cold_us:9.1f} us   x{cold_us / bare_us:.2f} of bare")
    print(f"JWKS fetches: {fetches} (one per cold validator; warm appraisals fetch nothing)")


if __name__ == "__main__":
    main()

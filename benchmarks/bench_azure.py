"""Benchmark: appraising an MAA token with azure.aci vs a bare pyjwt signature check, same run.

    python benchmarks/bench_azure.py

Tokens are signed by the stand-in MAA service (atls_azure.testing.maa, on 127.0.0.1), RS256.
"atls" is the whole per-connection path with warm caches: header checks, issuer selection,
key lookup in the JWKS cache, the x5c certificate, the signature, iss/exp/nbf/iat, the ACI
claim mapping, the azure-aci binding and x-ms-runtime checks, the policy and the result.
"bare" is one ``jwt.decode`` with the key in hand and claim checks off.  "cold" is the
first appraisal by a fresh validator (OpenID discovery + one JWKS fetch over loopback).
The three are interleaved; warm is compared in CPU time of the calling thread (all of its
work is in this thread), cold in elapsed time (it waits for the loopback service).
Finishes in well under a minute.
"""

from __future__ import annotations

import harness
import jwt

from atls_azure.issuer import aci_runtime_data
from atls_azure.specs import ACI_OID, MEDIA_TYPE
from atls_azure.testing.maa import StandInMaa, new_tls_key
from atls_core.binding import BindingContext, new_nonce
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.selection import select_validator

ROUNDS = 30
PER_ROUND = 20


def main() -> None:
    harness.quiet_logs()
    harness.header("azure.aci appraisal vs a bare pyjwt decode")
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

        selected = select_validator(
            "azure.aci", settings=maa.settings(), policy=policy, allow_insecure=True
        )

        def atls() -> object:
            return selected.appraise(evidence, binding=binding, clock=clock)

        def cold() -> object:
            fresh = select_validator(
                "azure.aci", settings=maa.settings(), policy=policy, allow_insecure=True
            )
            return fresh.appraise(evidence, binding=binding, clock=clock)

        if not atls().accepted:  # type: ignore[attr-defined]
            raise SystemExit("benchmark input was not accepted")
        times = harness.interleave(
            {"bare": bare, "atls": atls, "cold": cold}, rounds=ROUNDS, per_round=PER_ROUND
        )
        fetches = maa.requests.get("/certs", 0)
    print("per call, CPU time of the calling thread (cold: elapsed):")
    harness.time_line("bare pyjwt RS256 decode", times.cpu["bare"], "us")
    harness.time_line("azure.aci appraisal (warm caches)", times.cpu["atls"], "us")
    harness.time_line("azure.aci appraisal (cold, elapsed)", times.wall["cold"], "us")
    print(f"JWKS fetches: {fetches} (one per cold validator; warm appraisals fetch nothing)")
    harness.report(
        "azure.aci_warm_vs_bare_jwt", harness.ratios(times.cpu["atls"], times.cpu["bare"]), "none"
    )
    harness.report(
        "azure.aci_cold_vs_bare_jwt",
        harness.ratios(times.wall["cold"], times.wall["bare"]),
        "none",
    )


if __name__ == "__main__":
    main()

"""Benchmark: appraising an SEV-SNP report with snp.report vs a bare ECDSA P-384 check, same run.

    ATLS_VECTORS=<recorded-evidence folder> python benchmarks/bench_snp.py

Uses the recorded snp/virtee-milan-v2-vcek report with its VCEK, ASK and ARK when $ATLS_VECTORS
is set (appraised offline at its recorded time), else a synthetic report from atls_snp.testing.
"appraisal" is the whole core path with the chain already verified once (a long-running client):
parsing the report, the certificate pool, the cached chain links, the report's ECDSA signature,
TCB/hwID matching, recording every field, the common policy and the result.  "bare" is one
``cryptography`` ECDSA P-384/SHA-384 verification of the same report with the VCEK's key and the
DER-encoded signature in hand.
The two run interleaved in rounds, in a shuffled order each round; the line printed is the
median of the per-round ratios with their 10th-90th percentiles.  Finishes in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import harness
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_snp.certs import parse_certificate
from atls_snp.report import parse_report
from atls_snp.validator import SnpReportValidator

ROUNDS = 31
PER_ROUND = 100


def inputs() -> tuple[bytes, dict[str, Any], dt.datetime, bytes, str]:
    """(report, validator settings, appraisal time, VCEK DER, label)."""
    root = os.environ.get("ATLS_VECTORS")
    if root:
        base = Path(root) / "snp"
        vcek = (base / "virtee-milan-v2-vcek" / "vcek.der").read_bytes()
        roots = base / "amd-roots" / "milan"
        settings = {
            "vcek": vcek,
            "ask": (roots / "ask.pem").read_bytes(),
            "ark": str(roots / "ark.pem"),
            "kds": "never",
        }
        report = (base / "virtee-milan-v2-vcek" / "report.bin").read_bytes()
        at = dt.datetime.fromtimestamp(1683082314, dt.UTC)
        return report, settings, at, vcek, "recorded snp/virtee-milan-v2-vcek"
    from atls_snp.testing import SyntheticSnp

    world = SyntheticSnp(Path(tempfile.mkdtemp(prefix="bench-snp-")))
    settings = world.settings(vcek=world.vcek.certificate, ask=world.pki.ask)
    return world.report(), settings, world.now, world.vcek.certificate, "synthetic (test root)"


def main() -> None:
    # Offline appraisals end in "warning" (the binding is unchecked), which the core logs at
    # WARNING once per appraisal; a live, affirmed appraisal logs at INFO.  Measure the
    # appraisal, not a logging handler writing to stderr.
    logging.getLogger("atls").setLevel(logging.ERROR)
    harness.header("snp.report appraisal vs a bare ECDSA P-384 verification")
    report, settings, at, vcek_der, label = inputs()
    parsed = parse_report(report)
    key = parse_certificate(vcek_der).public_key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signed = parsed.signed_part
    signature = encode_dss_signature(*parsed.signature_rs)

    def bare() -> None:
        key.verify(signature, signed, ec.ECDSA(hashes.SHA384()))

    validator = SnpReportValidator(settings)
    evidence = validator.evidence_from_file(report, name="report.bin")
    binding = BindingContext.offline_context()
    clock = FixedClock(at)
    policy = Policy(reference_values={"measurement": parsed.measurement.hex()})

    def appraisal() -> object:
        return appraise(validator, evidence, binding=binding, clock=clock, policy=policy)

    first = appraisal()
    assert first.accepted, first.to_json()  # type: ignore[attr-defined]
    times = harness.interleave(
        {"bare": bare, "appraisal": appraisal}, rounds=ROUNDS, per_round=PER_ROUND, warm_up=50
    )
    print(f"input: {label}; {ROUNDS} rounds x {PER_ROUND} calls, elapsed per call:")
    harness.time_line("bare ECDSA P-384 verification", times.wall["bare"], unit="us")
    harness.time_line("snp.report appraisal", times.wall["appraisal"], unit="us")
    harness.report(
        "snp.appraisal_vs_bare_ecdsa",
        harness.ratios(times.wall["appraisal"], times.wall["bare"]),
        "<1.5",
    )


if __name__ == "__main__":
    main()

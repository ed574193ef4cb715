"""Benchmark: appraising a Gramine RA-TLS certificate vs bare dcap-qvl on its quote, same run.

    ATLS_VECTORS=/work/shared/vectors python benchmarks/bench_gramine.py

With $ATLS_VECTORS set it uses the recorded gramine/konvera-... certificate (legacy extension,
Intel root, recorded collateral); otherwise a synthetic certificate with both extensions from
atls_gramine.testing (under a test root).  "atls" is the whole per-connection path: read the
certificate's extensions, parse, DCAP-verify through atls_dcap (file collateral, parsed
once), bind through the core, Gramine's checks, the policy and the result.  "bare" is one
dcap_qvl verify call on the same quote with pre-parsed collateral.  Prints medians and the
ratio.  Finishes in well under 60 s.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dcap_qvl

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.selection import select_validator

ROUNDS = 7
PER_ROUND = 200
KONVERA = "gramine/konvera-gramine-ratls-cert-00606a-outofdate"
KONVERA_MRENCLAVE = "f94ccbe6a504676b2edbefdcb8781a512913f7d8864c6f88592a843d0f9d4a66"
KONVERA_ADVISORIES = (
    "INTEL-SA-00828",
    "INTEL-SA-00837",
    "INTEL-SA-00657",
    "INTEL-SA-00767",
    "INTEL-SA-00960",
    "INTEL-SA-00615",
)


def inputs(workdir: Path) -> tuple[bytes, bytes, dict[str, Any], Policy, int, bytes | None, str]:
    """(certificate DER, quote, validator settings, policy, unix time, custom root, label)."""
    root = os.environ.get("ATLS_VECTORS")
    if root:
        base = Path(root) / KONVERA
        der = (base / "tlscert.der").read_bytes()
        collateral = base / "collateral_sgx_00606A_2025-08.json"
        settings = {"collateral_file": str(collateral), "cache_dir": "none"}
        policy = Policy.from_mapping(
            {
                "reference_values": {"mrenclave": KONVERA_MRENCLAVE},
                "accepted_tcb_statuses": ["UpToDate", "OutOfDate"],
                "accepted_advisory_ids": list(KONVERA_ADVISORIES),
            }
        )
        quote = (base / "extracted_quote.bin").read_bytes()
        return der, quote, settings, policy, 1757824605, None, f"recorded {KONVERA}"
    from atls_dcap.testing.pki import DcapTestPki
    from atls_dcap.testing.quotes import DEFAULT_MRENCLAVE
    from atls_gramine.testing.certs import INSIDE_WINDOW, make_ratls_credentials, validator_settings

    pki = DcapTestPki.generate(seed="bench_gramine")
    der = make_ratls_credentials(pki).certificate_der
    tcg = PeerCertificate.from_der(der).extension("2.23.133.5.4.9")
    assert tcg is not None
    from atls_gramine.ratls import parse_tcg_evidence

    quote = parse_tcg_evidence(tcg).quote
    settings = validator_settings(pki, workdir)
    return (
        der,
        quote,
        settings,
        Policy(reference_values={"mrenclave": DEFAULT_MRENCLAVE.hex()}),
        int(INSIDE_WINDOW.timestamp()),
        pki.root_ca_der,
        "synthetic (TCG + legacy extensions)",
    )


def interleaved_medians(
    first: Callable[[], object], second: Callable[[], object]
) -> tuple[float, float]:
    """Per-call medians of both, measured in alternating rounds (fair on a busy machine)."""
    for _ in range(30):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        for fn, bucket in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                fn()
            bucket.append((time.perf_counter() - start) / PER_ROUND)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-gramine-") as tmp:
        der, quote, settings, policy, at, custom_root, label = inputs(Path(tmp))
        collateral_path = Path(settings["collateral_file"])
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_path.read_text())
        selected = select_validator("gramine.ratls", settings=settings, policy=policy)
        clock = FixedClock(dt.datetime.fromtimestamp(at, dt.UTC))

        def bare() -> object:
            if custom_root is None:
                return dcap_qvl.verify(quote, collateral, at)
            return dcap_qvl.verify_with_root_ca(quote, collateral, custom_root, at)

        def atls() -> object:
            certificate = PeerCertificate.from_der(der)
            result = selected.appraise(
                selected.validator.evidence_from_certificate(certificate),
                binding=BindingContext(spki_der=certificate.spki_der, certificate_der=der),
                clock=clock,
            )
            if not result.accepted:
                raise SystemExit(f"benchmark input was not accepted: {result.to_json()}")
            return result

        atls()  # fail fast on a broken setup
        baseline, measured = interleaved_medians(bare, atls)
    print(f"bench_gramine: {label}")
    print(f"  bare dcap_qvl verify        {baseline * 1e3:8.3f} ms/call")
    print(f"  gramine.ratls appraisal     {measured * 1e3:8.3f} ms/call")
    print(f"  ratio appraisal / bare      {measured / baseline:8.2f}x")


if __name__ == "__main__":
    main()

"""Benchmark: appraising a Gramine RA-TLS certificate vs bare dcap-qvl on its quote, same run.

    ATLS_VECTORS=/path/to/vectors python benchmarks/bench_gramine.py

With $ATLS_VECTORS set it uses the recorded gramine/konvera-... certificate (legacy extension,
Intel root, recorded collateral); otherwise a synthetic certificate with both extensions from
atls_gramine.testing (under a test root).  "atls" is the whole per-connection path: read the
certificate's extensions, parse, DCAP-verify through atls_dcap (file collateral, parsed
once), bind through the core, Gramine's checks, the policy and the result.  "bare" is one
dcap_qvl verify call on the same quote with pre-parsed collateral.  Interleaved; compared in
CPU time of the calling thread (both compute in it).  Finishes in well under 60 s.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import dcap_qvl
import harness

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.selection import select_validator

ROUNDS = 40
PER_ROUND = 20
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


def main() -> None:
    harness.quiet_logs()
    harness.header("gramine.ratls appraisal vs bare dcap-qvl")
    with tempfile.TemporaryDirectory(prefix="bench-gramine-") as tmp:
        der, quote, settings, policy, at, custom_root, label = inputs(Path(tmp))
        collateral_path = Path(settings["collateral_file"])
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_path.read_text())
        selected = select_validator(
            "gramine.ratls",
            settings=settings,
            policy=policy,
            allow_insecure=custom_root is not None,  # a test root is a tests-only setting
        )
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
        times = harness.interleave({"bare": bare, "atls": atls}, rounds=ROUNDS, per_round=PER_ROUND)
    print(f"input: {label}; per call, CPU time of the calling thread:")
    harness.time_line("bare dcap_qvl verify", times.cpu["bare"])
    harness.time_line("gramine.ratls appraisal (certificate in hand)", times.cpu["atls"])
    harness.report(
        "gramine.appraisal_vs_bare_verify",
        harness.ratios(times.cpu["atls"], times.cpu["bare"]),
        "none",
    )


if __name__ == "__main__":
    main()

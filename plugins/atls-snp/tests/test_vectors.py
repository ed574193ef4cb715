"""Every recorded SEV-SNP report judged as its MANIFEST.md says, offline, at its recorded time.

Certificates come from the recording (or ``snp/amd-roots``); the validator is
offline (``kds = never``) and trusts only AMD's pinned ARKs.  Policies pin the
report's own measurement so that only what the manifest is about decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext
from atls_core.cli import main as atls_main
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError, StaleEvidence, UntrustedChain
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_core.testing.vectors import Vector
from atls_snp.report import SIGNED_SIZE, parse_report
from atls_snp.validator import SnpReportValidator

pytestmark = pytest.mark.vectors

MILAN_ASK = "snp/amd-roots/milan/ask.pem"
MILAN_ASVK = "snp/amd-roots/milan/asvk.pem"
MILAN_ARK = "snp/amd-roots/milan/ark.pem"

VALID = [
    # (folder, report, certificate files, time, product)
    ("virtee-milan-v2-vcek", "report.bin", ("vcek.der", MILAN_ASK, MILAN_ARK), 1683082314, "Milan"),
    (
        "automata-milan-v2-vcek",
        "report.bin",
        ("vcek.der", MILAN_ASK, MILAN_ARK),
        1732082566,
        "Milan",
    ),
    (
        "constellation-azure-milan-v2-vcek",
        "report.bin",
        ("vcek.pem", "certchain.pem"),
        1700837388,
        "Milan",
    ),
    (
        "constellation-azure-milan-v2-vcek",
        "report.bin",
        ("vcek.der", "certchain.pem"),
        1700837388,
        "Milan",
    ),
    ("dstack-milan-v3-vcek", "report.bin", ("vcek.pem", "ask.pem", MILAN_ARK), 1786113623, "Milan"),
    ("routex-genoa-v5-vcek", "report.bin", ("vcek-chain.pem",), 1772054565, "Genoa"),
    ("routex-milan-v3-vcek", "report.bin", ("vcek-chain.pem",), 1772054565, "Milan"),
    ("routex-turin-v5-vcek", "report.bin", ("vcek-chain.pem",), 1772054565, "Turin"),
    (
        "constellation-aws-milan-vlek",
        "report_2023-11.bin",
        ("vlek_2023-11.pem", MILAN_ASVK, MILAN_ARK),
        1700837388,
        "Milan",
    ),
    (
        "constellation-aws-milan-vlek",
        "report_2024-07.bin",
        ("vlek_2024-07.pem", "certchain.pem"),
        1721600060,
        "Milan",
    ),
    (
        "constellation-aws-milan-vlek",
        "report_2025-05.bin",
        ("vlek_2025-05.pem", "certchain.pem"),
        1746542633,
        "Milan",
    ),
]


def _path(vectors: Vector, folder: str, name: str) -> Path:
    return vectors(name if name.startswith("snp/") else f"snp/{folder}/{name}")


def _settings(vectors: Vector, folder: str, files: Sequence[str]) -> dict[str, Any]:
    bundle = b"".join(_path(vectors, folder, name).read_bytes() + b"\n" for name in files)
    return {"ask": bundle, "kds": "never"}


def _at(seconds: int) -> FixedClock:
    return FixedClock(dt.datetime.fromtimestamp(seconds, dt.UTC))


def _appraise(
    vectors: Vector,
    folder: str,
    report: str,
    files: Sequence[str],
    when: int,
    *,
    policy: Policy | None = None,
) -> AttestationResult:
    validator = SnpReportValidator(_settings(vectors, folder, files))
    data = _path(vectors, folder, report).read_bytes()
    evidence = validator.evidence_from_file(data, name=report)
    measurement = parse_report(data).measurement.hex()
    return appraise(
        validator,
        evidence,
        binding=BindingContext.offline_context(),
        clock=_at(when),
        policy=policy or Policy(reference_values={"measurement": measurement}),
    )


@pytest.mark.parametrize(("folder", "report", "files", "when", "product"), VALID)
def test_valid_recordings_verify_at_their_recorded_time(
    vectors: Vector, folder: str, report: str, files: Sequence[str], when: int, product: str
) -> None:
    result = _appraise(vectors, folder, report, files, when)
    assert result.accepted, result.to_json()
    assert result.claims["product"] == product
    assert result.claims["certificates"]["ark"]["pinned"] is True
    assert result.debug is False


@pytest.mark.parametrize(("folder", "report", "files", "when", "product"), VALID)
def test_valid_recordings_are_refused_long_after_their_endorsement_key_expired(
    vectors: Vector, folder: str, report: str, files: Sequence[str], when: int, product: str
) -> None:
    with pytest.raises(StaleEvidence) as info:
        _appraise(vectors, folder, report, files, when + 8 * 365 * 86400)
    assert info.value.check == "snp.chain.validity"


def test_azure_report_data_binds_the_hcl_runtime_data(vectors: Vector) -> None:
    folder = "constellation-azure-milan-v2-vcek"
    result = _appraise(vectors, folder, "report.bin", ("vcek.der", "certchain.pem"), 1700837388)
    runtime = _path(vectors, folder, "runtimedata.bin").read_bytes()
    report_data = bytes.fromhex(result.claims["report_data"])
    assert report_data == hashlib.sha256(runtime).digest() + bytes(32)
    assert result.measurements["guest_svn"] == "2"
    assert result.measurements["family_id"] == "01" + "00" * 15
    assert result.measurements["id_key_digest"].startswith("57e229e0")


def test_azure_attestation_with_its_hcl_trailer_is_not_a_report(vectors: Vector) -> None:
    folder = "constellation-azure-milan-v2-vcek"
    with pytest.raises(ATLSError) as info:
        _appraise(vectors, folder, "attestation.bin", ("vcek.der", "certchain.pem"), 1700837388)
    assert info.value.check == "snp.report.size"


def test_dstack_host_reports_a_lower_tcb_than_it_runs(vectors: Vector) -> None:
    folder = "dstack-milan-v3-vcek"
    result = _appraise(
        vectors, folder, "report.bin", ("vcek.pem", "ask.pem", MILAN_ARK), 1786113623
    )
    assert result.claims["reported_tcb"]["snp"] == 23
    assert result.claims["current_tcb"]["snp"] == 24
    assert bytes.fromhex(result.claims["report_data"]).rstrip(b"\0") == b"attest-test-fixture-2026"
    expected = json.loads(_path(vectors, folder, "expected.json").read_text())
    assert result.measurements["host_data"] == expected["host_data"]


@pytest.mark.parametrize(
    ("folder", "minimum"),
    [("routex-milan-v3-vcek", "1.55.35"), ("routex-turin-v5-vcek", "1.55.65")],
)
def test_routex_minimum_firmware_is_a_policy_question(
    vectors: Vector, folder: str, minimum: str
) -> None:
    data = _path(vectors, folder, "report.bin").read_bytes()
    policy = Policy(
        reference_values={"measurement": parse_report(data).measurement.hex()},
        options={"min_firmware": minimum},
    )
    result = _appraise(
        vectors, folder, "report.bin", ("vcek-chain.pem",), 1772054565, policy=policy
    )
    assert not result.accepted
    assert result.tcb.status == "OutOfDate"
    assert [f.check for f in result.failures if f.enforced] == ["tcb.status"]
    assert "committed firmware" in result.claims["tcb_below_minimum"][0]


def test_turin_vcek_matches_with_fmc_and_an_eight_byte_hwid(vectors: Vector) -> None:
    result = _appraise(
        vectors, "routex-turin-v5-vcek", "report.bin", ("vcek.pem", "vcek-chain.pem"), 1772054565
    )
    assert result.claims["reported_tcb"] == {
        "raw": "4700000002000100",
        "fmc": 0,
        "bootloader": 1,
        "tee": 0,
        "snp": 2,
        "microcode": 71,
    }
    assert result.measurements["chip_id"] == "3b42092f69c656d3" + "00" * 56


REFUSED = [
    # (folder, report, certificate files, time, error, check, words of the reason)
    pytest.param(
        "constellation-aws-milan-vlek",
        "report_2023-11.bin",
        ("vlek_2025-05.pem", "certchain.pem"),
        1746542633,
        UntrustedChain,
        "snp.vek.tcb",
        None,
        id="aws-vlek-of-another-recording",
    ),
    pytest.param(
        "constellation-aws-milan-vlek",
        "report_2025-05.bin",
        ("vlek_2025-05.pem", "certchain.pem"),
        1767225600,
        StaleEvidence,
        "snp.chain.validity",
        "SEV-VLEK",
        id="aws-vlek-after-its-one-year",
    ),
    pytest.param(
        "constellation-aws-milan-vlek",
        "report_2025-05.bin",
        ("vlek_2025-05.pem", MILAN_ASK, MILAN_ARK),
        1746542633,
        UntrustedChain,
        "snp.chain",
        "SEV-VLEK-Milan",
        id="aws-vlek-under-the-vcek-intermediate",
    ),
    pytest.param(
        "neg-constellation-milan-v2-vlek-sig-mismatch",
        "report.bin",
        ("vlek.pem", "vlekcertchain.pem"),
        1700837388,
        UntrustedChain,
        "snp.signature",
        None,
        id="vlek-that-chains-and-matches-but-did-not-sign",
    ),
    pytest.param(
        "virtee-milan-v2-vcek",
        "report.bin",
        (MILAN_ASK, MILAN_ARK),
        1683082314,
        UntrustedChain,
        "snp.chain",
        None,
        id="without-the-recorded-certificates-offline",
    ),
]


@pytest.mark.parametrize(("folder", "report", "files", "when", "error", "check", "reason"), REFUSED)
def test_recordings_with_the_wrong_key_chain_or_time_are_refused(
    vectors: Vector,
    folder: str,
    report: str,
    files: Sequence[str],
    when: int,
    error: type[ATLSError],
    check: str,
    reason: str | None,
) -> None:
    with pytest.raises(error) as info:
        _appraise(vectors, folder, report, files, when)
    assert info.value.check == check
    if reason is not None:
        assert reason in info.value.reason


def test_debug_guest_verifies_but_is_refused_by_default(vectors: Vector) -> None:
    folder = "neg-go-sev-guest-milan-v2-debug"
    files = ("vcek.der", MILAN_ASK, MILAN_ARK)
    result = _appraise(vectors, folder, "report.bin", files, 1663981107)
    assert not result.accepted
    assert result.debug is True
    assert [f.check for f in result.failures if f.enforced] == ["debug"]
    data = _path(vectors, folder, "report.bin").read_bytes()
    allowed = Policy(
        reference_values={"measurement": parse_report(data).measurement.hex()}, allow_debug=True
    )
    assert _appraise(vectors, folder, "report.bin", files, 1663981107, policy=allowed).accepted


@pytest.mark.parametrize(
    ("folder", "report", "files", "when"),
    [
        ("virtee-milan-v2-vcek", "report.bin", ("vcek.der", MILAN_ASK, MILAN_ARK), 1683082314),
        ("routex-turin-v5-vcek", "report.bin", ("vcek-chain.pem",), 1772054565),
        (
            "constellation-aws-milan-vlek",
            "report_2025-05.bin",
            ("vlek_2025-05.pem", "certchain.pem"),
            1746542633,
        ),
    ],
)
def test_flipping_any_signed_byte_is_refused(
    vectors: Vector, folder: str, report: str, files: Sequence[str], when: int
) -> None:
    validator = SnpReportValidator(_settings(vectors, folder, files))
    data = _path(vectors, folder, report).read_bytes()
    policy = Policy(allow_any_workload=True)
    for position in range(SIGNED_SIZE):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        evidence = validator.evidence_from_file(bytes(flipped), name=report)
        try:
            result = appraise(
                validator,
                evidence,
                binding=BindingContext.offline_context(),
                clock=_at(when),
                policy=policy,
            )
        except ATLSError:
            continue
        pytest.fail(f"byte {position:#x} flipped was accepted: {result.status}")


class TestRecordedMilanReportConformance(ValidatorConformance):
    """The kit on a real report (offline: it cannot be bound to the kit's keys)."""

    files: Sequence[str] = ("vcek.der", MILAN_ASK, MILAN_ARK)

    @pytest.fixture(autouse=True)
    def _recording(self, vectors: Vector) -> None:
        self.settings = _settings(vectors, "virtee-milan-v2-vcek", self.files)
        self.data = _path(vectors, "virtee-milan-v2-vcek", "report.bin").read_bytes()

    def make_validator(self) -> Validator:
        return SnpReportValidator(self.settings)

    def signed_regions(self, evidence: Evidence) -> Sequence[tuple[int, int]]:
        return [(0, SIGNED_SIZE)]

    def good_case(self) -> Case:
        evidence = self.make_validator().evidence_from_file(self.data, name="report.bin")
        return Case(
            evidence=evidence,
            binding=BindingContext.offline_context(),
            clock=_at(1683082314),
            policy=Policy(
                reference_values={"measurement": parse_report(self.data).measurement.hex()}
            ),
        )

    # The kit's binding tests skip an offline good case.  A recorded report is bound to a key
    # and nonce no one holds, so they never apply here (test_conformance.py runs them on
    # synthetic reports); each override only checks that its reason still holds.

    def test_evidence_bound_to_another_key_is_rejected(self) -> None:
        """No binding to change: a recorded report is appraised offline."""
        assert self.good_case().binding.offline

    def test_evidence_bound_to_another_nonce(self) -> None:
        """No binding to change: a recorded report is appraised offline."""
        assert self.good_case().binding.offline

    def test_errors_name_their_check(self) -> None:
        """The kit provokes its error by rebinding, which an offline report cannot be."""
        assert self.good_case().binding.offline


def _verify_evidence(vectors: Vector, folder: str, at: str, *arguments: str) -> int:
    """``atls verify-evidence`` on a recorded report with its recorded VCEK and AMD's roots."""
    return atls_main(
        [
            "verify-evidence",
            "--validator",
            "snp.report",
            "--vcek",
            str(_path(vectors, folder, "vcek.der")),
            "--ask",
            str(vectors(MILAN_ASK)),
            "--ark",
            str(vectors(MILAN_ARK)),
            "--at",
            at,
            *arguments,
        ]
    )


def test_atls_verify_evidence_command(vectors: Vector, capsys: pytest.CaptureFixture[str]) -> None:
    folder = "virtee-milan-v2-vcek"
    report = _path(vectors, folder, "report.bin")
    measurement = parse_report(report.read_bytes()).measurement.hex()
    reference = f"measurement={measurement}"
    code = _verify_evidence(
        vectors, folder, "1683082314", "--reference", reference, "--json", str(report)
    )
    output = json.loads(capsys.readouterr().out)
    assert code == 0, output
    assert output["claims"]["product"] == "Milan"
    assert output["measurements"]["measurement"] == measurement
    late = _verify_evidence(
        vectors, folder, "2030-05-01T00:00:00Z", "--reference", reference, str(report)
    )
    assert late != 0
    assert "snp.chain.validity" in capsys.readouterr().err

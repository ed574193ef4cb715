"""``describe`` and ``atls inspect`` on SEV-SNP evidence: decoded, signature NOT verified.

What is shown must be what the report says, under the names ``reference_values``
uses, with the TCB split by the product's layout when the product is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atls_core.errors import MalformedEvidence
from atls_core.server import mint_certificate
from atls_core.testing.inspection import described_by, inspect_json
from atls_core.testing.vectors import Vector
from atls_snp.issuer import ConfigfsSnpIssuer
from atls_snp.oids import ATLS_SNP_EVIDENCE
from atls_snp.report import parse_report
from atls_snp.specs import SNP_REPORT_SPEC
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.configfs import FakeConfigfsTsm, certificate_table
from atls_snp.validator import SnpReportValidator

REPORT_DATA = bytes(range(64))
HOST_DATA = b"\x33" * 32
DEBUG_POLICY = 0x30000 | 1 << 19


def _describe(world: SyntheticSnp, data: bytes, **settings: Any) -> dict[str, Any]:
    validator = SnpReportValidator(world.settings(**settings))
    return dict(validator.describe(validator.evidence_from_file(data, name="evidence")))


def test_describe_names_what_a_policy_pins(milan: SyntheticSnp) -> None:
    shown = _describe(milan, milan.envelope(REPORT_DATA, host_data=HOST_DATA, guest_svn=7))
    assert shown["format"] == "AMD SEV-SNP attestation report v3: signature NOT verified"
    assert list(shown["measurements"]) == list(SNP_REPORT_SPEC.measurements)
    assert shown["measurements"]["measurement"] == DEFAULT_MEASUREMENT.hex()
    assert shown["measurements"]["host_data"] == HOST_DATA.hex()
    assert shown["measurements"]["guest_svn"] == "7"
    assert shown["measurements"]["chip_id"] == milan.chip_id.hex()
    assert shown["report_data"] == REPORT_DATA.hex()
    assert (shown["debug"], shown["vmpl"], shown["signing_key"]) == (False, 0, "VCEK")
    assert (shown["product"], shown["product_from"]) == ("Milan", "the report's CPUID")
    assert {k: v for k, v in shown["reported_tcb"].items() if k != "raw"} == milan.tcb
    assert shown["committed_firmware"] == "1.55.30"
    assert shown["fields"]["cpuid"] == {"family": 0x19, "model": 0x01, "stepping": 0x01}
    subjects = [c["subject"] for c in shown["certificates"]]
    assert subjects == ["SEV-VCEK", "SEV-Milan", "ARK-Milan"]


def test_describe_shows_debug_and_turin_layout(turin: SyntheticSnp) -> None:
    shown = _describe(turin, turin.envelope(policy=DEBUG_POLICY, vlek=True))
    assert shown["debug"] is True
    assert shown["fields"]["guest_policy"]["debug"] is True
    assert shown["signing_key"] == "VLEK"
    assert shown["reported_tcb"]["fmc"] == turin.tcb["fmc"]


def test_a_version_2_report_without_certificates_shows_its_tcb_raw(genoa: SyntheticSnp) -> None:
    report = genoa.report(REPORT_DATA, version=2)
    shown = _describe(genoa, report)
    assert shown["product"] is None
    assert "settings.product" in shown["product_note"]
    assert list(shown["reported_tcb"]) == ["raw"]
    configured = _describe(genoa, report, product="Genoa")
    assert (configured["product"], configured["product_from"]) == ("Genoa", "settings.product")
    assert configured["reported_tcb"]["snp"] == genoa.tcb["snp"]


def test_describe_refuses_what_is_no_report(milan: SyntheticSnp) -> None:
    with pytest.raises(MalformedEvidence) as info:
        _describe(milan, b"\x05" + bytes(99))
    assert info.value.check == "snp.report.size"


def test_a_hex_file_of_another_size_is_named_by_its_size(milan: SyntheticSnp) -> None:
    """Hex text is decoded whatever its length: a TDX quote's hex is "not 1184 bytes"."""
    validator = SnpReportValidator(milan.settings())
    evidence = validator.evidence_from_file(b"0400020081" + b"00" * 600, name="quote.hex")
    with pytest.raises(MalformedEvidence) as info:
        validator.describe(evidence)
    assert info.value.check == "snp.report.size"


@pytest.mark.parametrize("form", ["envelope", "raw", "hex"])
def test_atls_inspect_reads_every_file_form(milan: SyntheticSnp, tmp_path: Path, form: str) -> None:
    """The envelope is a DER SEQUENCE too: it must reach snp.report, not the certificate reader."""
    envelope = milan.envelope(REPORT_DATA)
    data = {
        "envelope": envelope,
        "raw": milan.report(REPORT_DATA),
        "hex": envelope.hex().encode(),
    }[form]
    path = tmp_path / f"evidence.{form}"
    path.write_bytes(data)
    status, document, _ = inspect_json(str(path))
    assert status == 0
    ((entry),) = [e for e in document["decoded"] if "snp.report" in e["validators"]]
    assert entry["validators"] == ["snp.report", "snp.report-challenge"]
    assert described_by(document, "snp.report")["report_data"] == REPORT_DATA.hex()


def test_atls_inspect_reads_a_certificate_through_its_extension(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    root = tmp_path / "tsm"
    root.mkdir()
    table = certificate_table([("vcek", milan.vcek.certificate), ("ask", milan.pki.ask)])
    tsm = FakeConfigfsTsm(root, lambda data, vmpl: milan.report(data, vmpl=vmpl), auxblob=table)
    minted = mint_certificate(ConfigfsSnpIssuer({"root": str(root)}, fs=tsm), nonce=b"n" * 32)
    path = tmp_path / "server.pem"
    path.write_bytes(minted.certificate_pem)
    status, document, _ = inspect_json(str(path))
    assert status == 0
    readers = {e["oid"]: e["read_by"] for e in document["certificate"]["extensions"]}
    assert readers[ATLS_SNP_EVIDENCE] == "snp.report"
    shown = described_by(document, "snp.report")
    assert shown["measurements"]["measurement"] == DEFAULT_MEASUREMENT.hex()
    assert [c["subject"] for c in shown["certificates"]] == ["SEV-VCEK", "SEV-Milan"]


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("folder", "product"),
    [("routex-turin-v5-vcek", "Turin"), ("dstack-milan-v3-vcek", "Milan")],
)
def test_atls_inspect_on_recorded_reports(atls_vector: Vector, folder: str, product: str) -> None:
    path = atls_vector("snp", folder, "report.bin")
    report = parse_report(path.read_bytes())
    status, document, _ = inspect_json(str(path))
    assert status == 0
    shown = described_by(document, "snp.report")
    assert shown["product"] == product
    assert shown["measurements"] == report.measurements()
    assert shown["report_data"] == report.report_data.hex()
    assert shown["debug"] is report.debug

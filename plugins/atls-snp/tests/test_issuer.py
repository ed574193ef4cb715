"""The configfs-tsm issuer (provider sev_guest) against an emulated configfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Transport
from atls_core.policy import Policy
from atls_snp.envelope import decode_envelope, parse_certificate_table
from atls_snp.issuer import ConfigfsSnpIssuer, IssuerError, configfs_snp_report
from atls_snp.oids import ATLS_SNP_EVIDENCE
from atls_snp.specs import SNP_EVIDENCE_MEDIA_TYPE
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.configfs import FakeConfigfsTsm, certificate_table
from atls_snp.validator import SnpReportValidator

SPKI = b"the server's SubjectPublicKeyInfo"


def _tsm(tmp_path: Path, world: SyntheticSnp, **kw: object) -> FakeConfigfsTsm:
    root = tmp_path / "report"
    root.mkdir()
    return FakeConfigfsTsm(
        root,
        lambda report_data, vmpl: world.report(report_data, vmpl=vmpl),
        **kw,  # type: ignore[arg-type]
    )


def test_report_round_trip_with_the_hosts_certificates(milan: SyntheticSnp, tmp_path: Path) -> None:
    table = certificate_table(
        [("vcek", milan.vcek.certificate), ("ask", milan.pki.ask), ("ark", milan.pki.ark)]
    )
    tsm = _tsm(tmp_path, milan, auxblob=table)
    issuer = ConfigfsSnpIssuer({"root": str(tsm.root)}, fs=tsm)
    nonce = new_nonce()
    report_data = report_data_for("atls-v1", spki_der=SPKI, nonce=nonce)
    evidence = issuer.issue(report_data)
    assert evidence.media_type == SNP_EVIDENCE_MEDIA_TYPE
    assert evidence.source.oid == ATLS_SNP_EVIDENCE
    assert tsm.removed == tsm.created
    assert list(tsm.root.iterdir()) == []
    report, certificates = decode_envelope(evidence.data)
    assert report[0x50:0x90] == report_data
    assert certificates == milan.chain()
    validator = SnpReportValidator(milan.settings())
    result = appraise(
        validator,
        validator.evidence_from_file(evidence.data, name="issued"),
        binding=BindingContext(spki_der=SPKI, nonce=nonce),
        clock=FixedClock(milan.now),
        policy=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
    )
    assert result.accepted, result.to_json()


def test_table_guids_in_either_byte_order_and_padding(milan: SyntheticSnp) -> None:
    padded = milan.vcek.certificate + bytes(100)
    for little_endian in (False, True):
        table = certificate_table(
            [("vcek", padded), ("crl", b"\x30\x00"), ("ask", milan.pki.ask)],
            little_endian=little_endian,
        )
        assert parse_certificate_table(table) == [
            ("vcek", milan.vcek.certificate),
            ("ask", milan.pki.ask),
        ]


UNTERMINATED = bytes.fromhex("11" * 16) + (24).to_bytes(4, "little") + (4).to_bytes(4, "little")
OUTSIDE = bytes.fromhex("11" * 16) + (9999).to_bytes(4, "little") + (5).to_bytes(4, "little")


@pytest.mark.parametrize(
    "table",
    [b"", b"\x01" * 24, UNTERMINATED + b"abcd", OUTSIDE + bytes(24)],
    ids=["empty", "no-terminator", "unterminated", "outside"],
)
def test_malformed_tables_are_refused(table: bytes) -> None:
    with pytest.raises(MalformedEvidence) as info:
        parse_certificate_table(table)
    assert info.value.check == "snp.envelope"


def test_no_auxblob_and_configured_certificates(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan, auxblob=None)
    bundle = tmp_path / "vcek.pem"
    bundle.write_bytes(milan.vcek.certificate)
    issuer = ConfigfsSnpIssuer({"root": str(tsm.root), "certificates": str(bundle)}, fs=tsm)
    _report, certificates = decode_envelope(issuer.issue(bytes(64)).data)
    assert certificates == [milan.vcek.certificate]


def test_privlevel_is_written_and_counted_in_the_generation(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer({"root": str(tsm.root), "privlevel": 2}, fs=tsm)
    report, _ = decode_envelope(issuer.issue(bytes(64)).data)
    assert int.from_bytes(report[0x30:0x34], "little") == 2


def test_concurrent_writer_is_detected(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan, interfere=True)
    with pytest.raises(IssuerError) as info:
        configfs_snp_report(bytes(64), root=tsm.root, fs=tsm)
    assert info.value.check == "tsm.generation"
    assert tsm.removed == tsm.created


def test_other_provider_is_refused(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan, provider="tdx_guest")
    with pytest.raises(IssuerError) as info:
        configfs_snp_report(bytes(64), root=tsm.root, fs=tsm)
    assert info.value.check == "tsm.provider"


def test_missing_configfs_is_named(milan: SyntheticSnp, tmp_path: Path) -> None:
    tsm = _tsm(tmp_path, milan)
    with pytest.raises(IssuerError) as info:
        configfs_snp_report(bytes(64), root=tmp_path / "absent", fs=tsm)
    assert info.value.check == "tsm.unavailable"


def test_a_report_over_other_data_is_refused(milan: SyntheticSnp, tmp_path: Path) -> None:
    root = tmp_path / "report"
    root.mkdir()
    tsm = FakeConfigfsTsm(root, lambda _data, _vmpl: milan.report(bytes(64)))
    with pytest.raises(IssuerError) as info:
        configfs_snp_report(b"\x01" * 64, root=root, fs=tsm)
    assert info.value.check == "tsm.outblob"


def test_settings_are_checked(tmp_path: Path) -> None:
    for settings in (
        {"privlevel": 4},
        {"privlevel": "0"},
        {"root": 5},
        {"certificates": str(tmp_path / "x")},
    ):
        with pytest.raises(ConfigurationError):
            ConfigfsSnpIssuer(settings)
    with pytest.raises(ConfigurationError):
        configfs_snp_report(bytes(63), root=tmp_path)


def test_challenge_issuer_accepts_the_certificate_digest(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    tsm = _tsm(tmp_path, milan)
    issuer = ConfigfsSnpIssuer.challenge_issuer({"root": str(tsm.root)}, fs=tsm)
    evidence = issuer.issue(bytes(64), certificate_sha256=bytes(32))
    assert issuer.spec.transport is Transport.CHALLENGE
    assert evidence.source.transport is Transport.CHALLENGE

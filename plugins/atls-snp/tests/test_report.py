"""The report layout: every field where AMD's ABI puts it, for each product's TCB layout."""

from __future__ import annotations

import json

import pytest

from atls_core.errors import MalformedEvidence
from atls_core.testing.vectors import Vector
from atls_snp.report import REPORT_SIZE, parse_report
from atls_snp.roots import Product, SigningKey, product_from_cpuid
from atls_snp.testing import SyntheticSnp
from atls_snp.testing.reports import encode_tcb, make_report

RECORDED = [
    ("virtee-milan-v2-vcek", "report.bin", None),
    ("automata-milan-v2-vcek", "report.bin", None),
    ("constellation-azure-milan-v2-vcek", "report.bin", None),
    ("dstack-milan-v3-vcek", "report.bin", None),
    ("routex-genoa-v5-vcek", "report.bin", None),
    ("routex-milan-v3-vcek", "report.bin", None),
    ("routex-turin-v5-vcek", "report.bin", None),
    ("neg-go-sev-guest-milan-v2-debug", "report.bin", None),
    ("neg-constellation-milan-v2-vlek-sig-mismatch", "report.bin", None),
    ("constellation-aws-milan-vlek", "report_2023-11.bin", 0),
    ("constellation-aws-milan-vlek", "report_2024-07.bin", 1),
    ("constellation-aws-milan-vlek", "report_2025-05.bin", 2),
]


def _expected(vectors: Vector, folder: str, index: int | None) -> dict[str, object]:
    document = json.loads(vectors(f"snp/{folder}/expected.json").read_text())
    return document if index is None else document["reports"][index]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("folder", "name", "index"), RECORDED)
def test_recorded_reports_read_as_their_recorders_read_them(
    vectors: Vector, folder: str, name: str, index: int | None
) -> None:
    expected = _expected(vectors, folder, index)
    report = parse_report(vectors(f"snp/{folder}/{name}").read_bytes())
    product = Product.named(str(expected["product"]))
    assert product is not None
    assert report.version == expected["version"]
    assert report.guest_svn == expected["guest_svn"]
    assert f"0x{report.policy:016x}" == expected["policy"]
    assert int(report.debug) == expected["policy_debug_bit19"]
    assert report.vmpl == expected["vmpl"]
    assert report.signature_algo == expected["signature_algo"]
    assert report.signing_key.name == expected["signing_key"]
    assert f"0x{report.platform_info:016x}" == expected["platform_info"]
    for which in ("current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"):
        tcb = getattr(report, which)(product)
        assert tcb.to_claim() == expected[which], which
    cpuid = report.cpuid
    assert (None if cpuid is None else bytes(cpuid).hex()) == expected["cpuid_fam_mod_step"]
    if cpuid is not None:
        assert report.cpuid_product is product
    for field in (
        "chip_id",
        "measurement",
        "host_data",
        "report_data",
        "family_id",
        "image_id",
        "id_key_digest",
        "author_key_digest",
        "report_id",
    ):
        assert getattr(report, field).hex() == expected[field], field


def test_turin_puts_the_fmc_spl_first(turin: SyntheticSnp) -> None:
    tcb = {"fmc": 3, "bootloader": 1, "tee": 2, "snp": 5, "microcode": 71}
    raw = encode_tcb(Product.TURIN, tcb)
    assert raw.hex() == "0301020500000047"
    report = parse_report(turin.report(reported_tcb=tcb))
    assert report.reported_tcb(Product.TURIN).components() == tcb
    # The same bytes read as Milan would be nonsense: the layout depends on the product.
    assert report.reported_tcb(Product.MILAN).components()["bootloader"] == 3


def test_milan_layout(milan: SyntheticSnp) -> None:
    tcb = {"bootloader": 4, "tee": 1, "snp": 24, "microcode": 219}
    assert encode_tcb(Product.MILAN, tcb).hex() == "04010000000018db"
    report = parse_report(milan.report(reported_tcb=tcb, current_tcb={**tcb, "snp": 25}))
    assert report.reported_tcb(Product.MILAN).components() == tcb
    assert report.current_tcb(Product.MILAN).snp == 25
    assert report.reported_tcb(Product.MILAN).fmc is None


def test_policy_and_platform_bits(milan: SyntheticSnp) -> None:
    policy = 0x30000 | 1 << 18 | 1 << 19 | 1 << 20 | 0x0102
    report = parse_report(milan.report(policy=policy, platform_info=0b10100001))
    claim = report.policy_claim()
    assert claim["debug"]
    assert claim["migrate_ma"]
    assert claim["single_socket"]
    assert claim["smt_allowed"]
    assert not claim["cxl_allowed"]
    assert (claim["abi_major"], claim["abi_minor"]) == (1, 2)
    assert report.debug
    assert report.migrate_ma
    assert report.smt_enabled
    info = report.platform_info_claim()
    assert info["smt_enabled"]
    assert info["alias_check_complete"]
    assert info["tio_enabled"]
    assert not info["tsme_enabled"]


def test_version_5_mitigation_vectors_and_version_2_has_no_cpuid(milan: SyntheticSnp) -> None:
    v5 = parse_report(milan.report(version=5))
    assert v5.mitigation_vectors == (0, 0)
    v2 = parse_report(milan.report(version=2))
    assert v2.cpuid is None
    assert v2.cpuid_product is None
    assert v2.mitigation_vectors is None


@pytest.mark.parametrize("size", [0, REPORT_SIZE - 1, REPORT_SIZE + 20])
def test_wrong_size_is_refused(milan: SyntheticSnp, size: int) -> None:
    data = (milan.report() * 2)[:size]
    with pytest.raises(MalformedEvidence) as info:
        parse_report(data)
    assert info.value.check == "snp.report.size"


@pytest.mark.parametrize("version", [0, 1, 6, 0xFFFFFFFF])
def test_unknown_versions_are_refused(milan: SyntheticSnp, version: int) -> None:
    raw = bytearray(milan.report())
    raw[0:4] = version.to_bytes(4, "little")
    with pytest.raises(MalformedEvidence) as info:
        parse_report(bytes(raw))
    assert info.value.check == "snp.report.version"


def test_other_signature_algorithms_are_refused(milan: SyntheticSnp) -> None:
    raw = bytearray(milan.report())
    raw[0x34:0x38] = (2).to_bytes(4, "little")
    with pytest.raises(MalformedEvidence) as info:
        parse_report(bytes(raw))
    assert info.value.check == "snp.report.signature_algo"


def test_signing_key_field_other_than_vcek_or_vlek_is_refused(milan: SyntheticSnp) -> None:
    raw = bytearray(milan.report())
    raw[0x48] = 7 << 2  # "no key": the firmware did not sign
    report = parse_report(bytes(raw))
    with pytest.raises(MalformedEvidence) as info:
        _ = report.signing_key
    assert info.value.check == "snp.signing_key"
    assert parse_report(milan.report(vlek=True)).signing_key is SigningKey.VLEK


def test_product_from_cpuid() -> None:
    assert product_from_cpuid(0x19, 0x01) is Product.MILAN
    assert product_from_cpuid(0x19, 0x11) is Product.GENOA
    assert product_from_cpuid(0x1A, 0x02) is Product.TURIN
    assert product_from_cpuid(0x19, 0xA0) is None  # not guessed
    assert product_from_cpuid(0x17, 0x31) is None


def test_signature_fields_are_little_endian(milan: SyntheticSnp) -> None:
    report = parse_report(make_report(milan.vcek, bytes(64)))
    r, s = report.signature_rs
    assert 0 < r < 2**384
    assert 0 < s < 2**384
    assert report.raw[0x2A0 + 48 : 0x2E8] == bytes(24)

"""The synthetic DCAP PKI and quotes, checked against the real dcap-qvl.

Every acceptance here is dcap-qvl's own verdict under the generated root; every rejection is
dcap-qvl's too, with the reason it gives (so a test fails if a quote is rejected for the wrong
reason, e.g. a malformed structure instead of the intended bad signature).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import struct
import time
from collections.abc import Callable
from typing import Any

import dcap_qvl
import pytest
from cryptography import x509

from atls_core.testing.vectors import vectors_root
from atls_dcap.testing.pki import (
    DEFAULT_OUTOFDATE_ADVISORIES,
    QE_MRSIGNER,
    SGX_EXTENSION_OID,
    DcapTestPki,
)
from atls_dcap.testing.quotes import (
    DEFAULT_MRENCLAVE,
    DEFAULT_MRSIGNER,
    DEFAULT_MRTD,
    make_sgx_quote,
    make_tdx_quote,
)

ISSUED = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
NOW = int((ISSUED + datetime.timedelta(days=2)).timestamp())
REPORT_DATA = hashlib.sha512(b"report data").digest()

# Offsets inside the quotes (header 48 bytes; TD report 1.0 is 584 bytes, SGX report 384).
HEADER = 48
TD_BODY = 584
SGX_BODY = 384
SIG_LEN = 4


def collateral(pki: DcapTestPki, tee: str = "tdx", **kwargs: Any) -> Any:
    kwargs.setdefault("issue_date", ISSUED)
    return dcap_qvl.QuoteCollateralV3.from_json(pki.collateral_json(tee, **kwargs))


def verify(
    pki: DcapTestPki, quote: bytes, tee: str = "tdx", *, now: int = NOW, **kwargs: Any
) -> Any:
    return dcap_qvl.verify_with_root_ca(quote, collateral(pki, tee, **kwargs), pki.root_ca_der, now)


def quote_of(pki: DcapTestPki, tee: str, **options: Any) -> bytes:
    """A quote of the ``tee`` ("tdx" or "sgx") over REPORT_DATA, made by the test PKI."""
    if tee == "tdx":
        return make_tdx_quote(pki, REPORT_DATA, **options)
    return make_sgx_quote(pki, REPORT_DATA, **options)


def report_json(verified: Any) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(verified.to_json())["report"]
    return report


def rejected(pki: DcapTestPki, quote: bytes, reason: str, tee: str = "tdx", **kwargs: Any) -> None:
    with pytest.raises(ValueError, match=reason):
        verify(pki, quote, tee, **kwargs)


# ----------------------------------------------------------------------------- acceptance


def test_tdx_v4_uptodate_round_trips_every_field(pki: DcapTestPki) -> None:
    rtmr = tuple(hashlib.sha384(bytes([i])).digest() for i in range(4))
    config_id = hashlib.sha384(b"config").digest()
    owner = hashlib.sha384(b"owner").digest()
    quote = make_tdx_quote(
        pki, REPORT_DATA, rtmr=rtmr, mr_config_id=config_id, mr_owner=owner, version=4
    )
    verified = verify(pki, quote)
    assert verified.status == "UpToDate"
    assert list(verified.advisory_ids) == []
    report = report_json(verified)["TD10"]
    assert report["report_data"] == REPORT_DATA.hex()
    assert report["mr_td"] == DEFAULT_MRTD.hex()
    assert [report[f"rt_mr{i}"] for i in range(4)] == [r.hex() for r in rtmr]
    assert report["mr_config_id"] == config_id.hex()
    assert report["mr_owner"] == owner.hex()
    assert report["mr_owner_config"] == "00" * 48
    assert report["tee_tcb_svn"] == pki.platform_tcb("uptodate").tee_tcb_svn.hex()
    # SEPT_VE_DISABLE (bit 28) set, DEBUG (bit 0) clear, little-endian.
    assert report["td_attributes"] == "0000001000000000"
    parsed = dcap_qvl.parse_quote(quote)
    assert parsed.is_tdx()
    assert parsed.header.version == 4
    assert parsed.fmspc().upper() == pki.fmspc
    assert parsed.ca() == "platform"
    assert verified.ppid == pki.ppid


def test_tdx_v5_carries_a_td15_report(pki: DcapTestPki) -> None:
    svn2 = bytes([7, 1, 3]) + bytes(13)  # the current TCB, after a TD-preserving module update
    quote = make_tdx_quote(pki, REPORT_DATA, version=5, tee_tcb_svn2=svn2)
    verified = verify(pki, quote)
    assert verified.status == "UpToDate"
    report = report_json(verified)["TD15"]
    assert report["tee_tcb_svn2"] == svn2.hex()
    assert report["mr_service_td"] == "00" * 48
    assert report["base"]["report_data"] == REPORT_DATA.hex()
    assert dcap_qvl.parse_quote(quote).header.version == 5


def test_tdx_v5_tcb_svn_and_tcb_svn2(pki: DcapTestPki) -> None:
    """dcap-qvl judges a TD report 1.5 by TEE_TCB_SVN (the TCB the TD was launched on) and reports
    ``TDRelaunchAdvised`` when TEE_TCB_SVN2 (the current module, after a TD-preserving update) is
    newer; TEE_TCB_SVN2 must match a TCB level too."""
    new = pki.platform_tcb("uptodate").tee_tcb_svn
    old = pki.platform_tcb("outofdate").tee_tcb_svn
    low = pki.platform_tcb("unmatched").tee_tcb_svn

    def status(svn: bytes, svn2: bytes) -> str:
        quote = make_tdx_quote(pki, REPORT_DATA, version=5, tee_tcb_svn=svn, tee_tcb_svn2=svn2)
        return str(verify(pki, quote).status)

    assert status(old, old) == "OutOfDate"
    assert status(old, new) == "TDRelaunchAdvised"
    assert status(new, old) == "UpToDate"
    quote = make_tdx_quote(pki, REPORT_DATA, version=5, tee_tcb_svn=new, tee_tcb_svn2=low)
    rejected(pki, quote, "TEE_TCB_SVN2")


def test_sgx_v3_round_trips_every_field(pki: DcapTestPki) -> None:
    mrenclave = hashlib.sha256(b"enclave").digest()
    mrsigner = hashlib.sha256(b"signer").digest()
    quote = make_sgx_quote(
        pki, REPORT_DATA, mrenclave=mrenclave, mrsigner=mrsigner, isv_prod_id=7, isv_svn=3
    )
    verified = verify(pki, quote, "sgx")
    assert verified.status == "UpToDate"
    report = report_json(verified)["SgxEnclave"]
    assert report["mr_enclave"] == mrenclave.hex()
    assert report["mr_signer"] == mrsigner.hex()
    assert (report["isv_prod_id"], report["isv_svn"]) == (7, 3)
    assert report["report_data"] == REPORT_DATA.hex()
    assert report["attributes"] == "05000000000000000300000000000000"
    parsed = dcap_qvl.parse_quote(quote)
    assert parsed.is_sgx()
    assert parsed.header.version == 3


def test_sgx_defaults_and_processor_ca() -> None:
    pki = DcapTestPki.generate("00A067110000", seed=b"processor", ca="processor")
    quote = make_sgx_quote(pki, REPORT_DATA)
    verified = verify(pki, quote, "sgx")
    assert verified.status == "UpToDate"
    report = report_json(verified)["SgxEnclave"]
    assert (report["mr_enclave"], report["mr_signer"]) == (
        DEFAULT_MRENCLAVE.hex(),
        DEFAULT_MRSIGNER.hex(),
    )
    parsed = dcap_qvl.parse_quote(quote)
    assert parsed.ca() == "processor"
    assert parsed.fmspc().upper() == "00A067110000"
    assert parsed.pck_extension().sgx_type == 0
    assert parsed.pck_extension().platform_instance_id is None


def test_pck_extension_carries_the_platform_tcb(pki: DcapTestPki) -> None:
    for tcb in ("uptodate", "outofdate", "unmatched"):
        chain = make_tdx_quote(pki, REPORT_DATA, tcb=tcb)
        ext = dcap_qvl.parse_quote(chain).pck_extension()
        platform = pki.platform_tcb(tcb)
        assert ext.cpu_svn == platform.cpu_svn
        assert ext.pce_svn == platform.pce_svn
        assert ext.fmspc.hex().upper() == pki.fmspc
        assert ext.ppid == pki.ppid
        assert ext.pce_id == pki.pce_id
        assert ext.sgx_type == 1
        assert ext.platform_instance_id == pki.platform_instance_id
    leaf = x509.load_der_x509_certificate(pki.pck_certificate_der())
    ext_oid = x509.ObjectIdentifier(SGX_EXTENSION_OID)
    assert not leaf.extensions.get_extension_for_oid(ext_oid).critical


def test_default_collateral_verifies_now(pki: DcapTestPki) -> None:
    """Defaults (no dates) cover the current time: what live handshake tests rely on."""
    col = dcap_qvl.QuoteCollateralV3.from_json(pki.collateral_json("tdx"))
    quote = make_tdx_quote(pki, REPORT_DATA)
    verified = dcap_qvl.verify_with_root_ca(quote, col, pki.root_ca_der, int(time.time()))
    assert verified.status == "UpToDate"


def test_collateral_json_shape(pki: DcapTestPki) -> None:
    doc = json.loads(pki.collateral_json("tdx", issue_date=ISSUED))
    tcb_info = json.loads(doc["tcb_info"])
    assert (tcb_info["id"], tcb_info["version"], tcb_info["fmspc"]) == ("TDX", 3, pki.fmspc)
    assert tcb_info["issueDate"] == "2026-03-01T00:00:00Z"
    assert tcb_info["nextUpdate"] == "2026-03-31T00:00:00Z"
    qe_identity = json.loads(doc["qe_identity"])
    assert (qe_identity["id"], qe_identity["isvprodid"]) == ("TD_QE", 2)
    assert qe_identity["mrsigner"] == QE_MRSIGNER.hex().upper()
    sgx = json.loads(pki.collateral_json("sgx", issue_date=ISSUED))
    assert json.loads(sgx["tcb_info"])["id"] == "SGX"
    assert "tdxtcbcomponents" not in json.loads(sgx["tcb_info"])["tcbLevels"][0]["tcb"]
    assert json.loads(sgx["qe_identity"])["id"] == "QE"
    # dcap-qvl reads it back unchanged.
    parsed = collateral(pki)
    assert parsed.tcb_info == doc["tcb_info"]
    assert parsed.root_ca_crl == bytes.fromhex(doc["root_ca_crl"])


# ----------------------------------------------------------------------------- TCB statuses


@pytest.mark.parametrize("tee", ["tdx", "sgx"])
@pytest.mark.parametrize(
    ("status", "advisories"),
    [
        ("UpToDate", ()),
        ("SWHardeningNeeded", ("INTEL-SA-00615",)),
        ("ConfigurationNeeded", ()),
        ("ConfigurationAndSWHardeningNeeded", ("INTEL-SA-00289", "INTEL-SA-00615")),
        ("OutOfDate", ("INTEL-SA-00828",)),
        ("OutOfDateConfigurationNeeded", ("INTEL-SA-00828", "INTEL-SA-00289")),
    ],
)
def test_configured_status_and_advisories(
    pki: DcapTestPki, tee: str, status: str, advisories: tuple[str, ...]
) -> None:
    quote = quote_of(pki, tee)
    verified = verify(pki, quote, tee, tcb_status=status, advisory_ids=advisories)
    assert verified.status == status
    assert tuple(verified.advisory_ids) == advisories


@pytest.mark.parametrize("tee", ["tdx", "sgx"])
def test_outofdate_platform_matches_the_older_level(pki: DcapTestPki, tee: str) -> None:
    quote = quote_of(pki, tee, tcb="outofdate")
    verified = verify(pki, quote, tee)
    assert verified.status == "OutOfDate"
    assert tuple(verified.advisory_ids) == DEFAULT_OUTOFDATE_ADVISORIES
    custom = verify(pki, quote, tee, outofdate_advisory_ids=["INTEL-SA-01234"])
    assert tuple(custom.advisory_ids) == ("INTEL-SA-01234",)


@pytest.mark.parametrize("tee", ["tdx", "sgx"])
def test_unmatched_platform_has_no_tcb_level(pki: DcapTestPki, tee: str) -> None:
    rejected(pki, quote_of(pki, tee, tcb="unmatched"), "No matching TCB level found", tee)


@pytest.mark.parametrize(("tee", "old_qe_svn"), [("tdx", 3), ("sgx", 6)])
def test_outofdate_quoting_enclave_lowers_the_status(
    pki: DcapTestPki, tee: str, old_qe_svn: int
) -> None:
    verified = verify(
        pki, quote_of(pki, tee, qe_svn=old_qe_svn), tee, tcb_status="SWHardeningNeeded"
    )
    assert verified.status == "OutOfDate"
    assert "INTEL-SA-00615" in verified.advisory_ids
    assert json.loads(verified.to_json())["qe_status"]["status"] == "OutOfDate"
    rejected(pki, quote_of(pki, tee, qe_svn=1), "QE ISVSVN 1 is below minimum", tee)


def test_revoked_tcb_level_is_rejected(pki: DcapTestPki) -> None:
    rejected(pki, make_tdx_quote(pki, REPORT_DATA), "Revoked", tcb_status="Revoked")


def test_revoked_pck_certificate_is_rejected(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    rejected(pki, quote, "CertRevoked", revoked=["uptodate"])
    # Revoking another platform's PCK does not affect this one.
    assert verify(pki, quote, revoked=["outofdate"]).status == "UpToDate"


# ----------------------------------------------------------------------------- debug / attributes


def test_debug_td_is_marked_and_rejected_by_dcap_qvl(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA, debug=True)
    td_attributes = dcap_qvl.parse_quote(quote).report.td_attributes
    assert td_attributes[0] & 0x01
    rejected(pki, quote, "Debug mode is enabled")


def test_debug_enclave_is_marked_and_rejected_by_dcap_qvl(pki: DcapTestPki) -> None:
    quote = make_sgx_quote(pki, REPORT_DATA, debug=True)
    assert dcap_qvl.parse_quote(quote).report.attributes[0] & 0x02
    rejected(pki, quote, "Debug mode is enabled", "sgx")


def test_td_without_sept_ve_disable_is_rejected(pki: DcapTestPki) -> None:
    rejected(pki, make_tdx_quote(pki, REPORT_DATA, sept_ve_disable=False), "SEPT_VE_DISABLE")


def test_v5_with_a_service_td_is_rejected(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA, version=5, mr_servicetd=b"\x01" * 48)
    rejected(pki, quote, "service TD")


# ----------------------------------------------------------------------------- tampering


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    "offset",
    [
        HEADER + TD_BODY - 1,  # last byte of report data
        HEADER + 16 + 48 + 48 + 8 + 8 + 8,  # first byte of MRTD
        40,  # user data in the header
    ],
)
def test_flipped_quote_body_is_rejected(pki: DcapTestPki, offset: int) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    rejected(pki, flip(quote, offset), "(?i)ISV enclave report signature is invalid")


def test_flipped_qe_report_is_rejected(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    # signature length, ECDSA signature, attestation key, cert data type 6 header, then QE report.
    qe_report = HEADER + TD_BODY + SIG_LEN + 64 + 64 + 6
    for offset in (qe_report + 128, qe_report + 383):  # MRSIGNER, QE report data
        rejected(pki, flip(quote, offset), "Signature is invalid for qe_report")


def test_flipped_sgx_qe_report_and_body_are_rejected(pki: DcapTestPki) -> None:
    quote = make_sgx_quote(pki, REPORT_DATA)
    qe_report = HEADER + SGX_BODY + SIG_LEN + 64 + 64
    rejected(pki, flip(quote, qe_report + 64), "Signature is invalid for qe_report", "sgx")
    rejected(pki, flip(quote, HEADER + 64), "(?i)ISV enclave report signature is invalid", "sgx")


def test_wrong_attestation_key_is_rejected(pki: DcapTestPki) -> None:
    """The attestation key is bound by the QE report's report data, not just by the signature."""
    quote = make_tdx_quote(pki, REPORT_DATA)
    key_offset = HEADER + TD_BODY + SIG_LEN + 64
    rejected(pki, flip(quote, key_offset + 5), "QE report hash mismatch")


def tampered_collateral(pki: DcapTestPki, tee: str, change: Any) -> Any:
    doc = json.loads(pki.collateral_json(tee, issue_date=ISSUED))
    change(doc)
    return dcap_qvl.QuoteCollateralV3.from_json(json.dumps(doc))


def _flipped_signature(field: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc[field] = flip(bytes.fromhex(doc[field]), 10).hex()

    return change


def _outofdate_raised_after_signing(doc: dict[str, Any]) -> None:
    """Raising a level's status after signing breaks the TCB info signature."""
    doc["tcb_info"] = doc["tcb_info"].replace('"OutOfDate"', '"UpToDate"')


@pytest.mark.parametrize(
    ("change", "tcb", "reason"),
    [
        pytest.param(
            _flipped_signature("tcb_info_signature"),
            "uptodate",
            "tcb_info",
            id="flipped-tcb-info-signature",
        ),
        pytest.param(
            _flipped_signature("qe_identity_signature"),
            "uptodate",
            "(?i)qe.?identity",
            id="flipped-qe-identity-signature",
        ),
        pytest.param(
            _outofdate_raised_after_signing, "outofdate", "tcb_info", id="tcb-info-edited"
        ),
    ],
)
def test_tampered_collateral_is_rejected(
    pki: DcapTestPki, change: Callable[[dict[str, Any]], None], tcb: str, reason: str
) -> None:
    col = tampered_collateral(pki, "tdx", change)
    quote = make_tdx_quote(pki, REPORT_DATA, tcb=tcb)
    with pytest.raises(ValueError, match=reason):
        dcap_qvl.verify_with_root_ca(quote, col, pki.root_ca_der, NOW)


def test_quote_from_another_pki_is_rejected(pki: DcapTestPki) -> None:
    other = DcapTestPki.generate(seed=b"another platform")
    quote = make_tdx_quote(other, REPORT_DATA)
    with pytest.raises(ValueError, match="certificate chain"):
        dcap_qvl.verify_with_root_ca(quote, collateral(pki), pki.root_ca_der, NOW)


def test_real_intel_root_rejects_the_synthetic_pki(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    with pytest.raises(ValueError, match="Verification failed"):
        dcap_qvl.verify(quote, collateral(pki), NOW)
    with pytest.raises(ValueError, match="Verification failed"):
        dcap_qvl.verify(make_sgx_quote(pki, REPORT_DATA), collateral(pki, "sgx"), NOW)


def test_tdx_quote_with_sgx_collateral_is_rejected(pki: DcapTestPki) -> None:
    rejected(pki, make_tdx_quote(pki, REPORT_DATA), "QE Identity", "sgx")


def test_unknown_qe_vendor_is_rejected(pki: DcapTestPki) -> None:
    rejected(pki, flip(make_tdx_quote(pki, REPORT_DATA), 20), "Unknown QE vendor ID")


def test_fmspc_mismatch_is_rejected(pki: DcapTestPki) -> None:
    other = DcapTestPki.generate("11223344AABB", seed=__name__.encode())  # the fixture's seed
    assert other.root_ca_der == pki.root_ca_der  # same keys, different platform
    quote = make_tdx_quote(other, REPORT_DATA)
    rejected(pki, quote, "(?i)fmspc")


# ----------------------------------------------------------------------------- validity windows


def test_collateral_after_next_update_is_rejected(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    later = int((ISSUED + datetime.timedelta(days=31)).timestamp())
    rejected(pki, quote, "(?i)expired", now=later)
    long = ISSUED + timedelta_days(30)
    short = ISSUED + datetime.timedelta(hours=1)
    rejected(
        pki,
        quote,
        "TCBInfo expired",
        next_update=short,
        crl_next_update=long,
        qe_identity_next_update=long,
    )


@pytest.mark.parametrize(
    ("part", "reason"),
    [("crl_next_update", "CrlExpired"), ("qe_identity_next_update", "QE Identity expired")],
)
def test_each_collateral_part_expires_on_its_own(pki: DcapTestPki, part: str, reason: str) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    expiry: dict[str, Any] = {part: ISSUED + timedelta_days(5)}
    assert verify(pki, quote, now=ts(ISSUED + timedelta_days(4)), **expiry).status == "UpToDate"
    rejected(pki, quote, reason, now=ts(ISSUED + timedelta_days(6)), **expiry)
    tcb_info = json.loads(json.loads(pki.collateral_json(issue_date=ISSUED, **expiry))["tcb_info"])
    assert tcb_info["nextUpdate"] == "2026-03-31T00:00:00Z"


def test_collateral_before_issue_date_is_rejected(pki: DcapTestPki) -> None:
    quote = make_tdx_quote(pki, REPORT_DATA)
    earlier = int((ISSUED - datetime.timedelta(days=1)).timestamp())
    rejected(pki, quote, "TCBInfo issue date is in the future", now=earlier)


def test_certificates_outside_their_validity_are_rejected() -> None:
    not_before = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    pki = DcapTestPki.generate(
        seed=b"short-lived", not_before=not_before, not_after=not_before + timedelta_days(90)
    )
    quote = make_tdx_quote(pki, REPORT_DATA)
    inside = not_before + timedelta_days(30)
    assert verify(pki, quote, issue_date=inside, now=ts(inside + timedelta_days(1))).status == (
        "UpToDate"
    )
    after = not_before + timedelta_days(100)
    rejected(pki, quote, "CertExpired", issue_date=after, now=ts(after + timedelta_days(1)))
    before = not_before - timedelta_days(10)
    rejected(
        pki,
        quote,
        "CertNotValidYet",
        issue_date=before,
        now=ts(before + timedelta_days(1)),
    )


def timedelta_days(days: int) -> datetime.timedelta:
    return datetime.timedelta(days=days)


def ts(value: datetime.datetime) -> int:
    return int(value.timestamp())


# ----------------------------------------------------------------------------- determinism, inputs


def test_seeded_generation_is_deterministic_and_cached() -> None:
    a = DcapTestPki.generate(seed=b"same")
    b = DcapTestPki.generate(seed="same")
    assert a is b
    fresh = DcapTestPki.generate(seed=b"same", ca="processor")
    assert fresh.root_ca_der == a.root_ca_der
    assert make_tdx_quote(a, REPORT_DATA) == make_tdx_quote(b, REPORT_DATA)
    assert a.collateral_json(issue_date=ISSUED) == b.collateral_json(issue_date=ISSUED)
    assert DcapTestPki.generate(seed=b"other").root_ca_der != a.root_ca_der
    assert DcapTestPki.generate().root_ca_der != DcapTestPki.generate().root_ca_der


def test_root_is_intel_shaped(pki: DcapTestPki) -> None:
    root = x509.load_der_x509_certificate(pki.root_ca_der)
    assert root.subject == root.issuer
    assert root.subject.rfc4514_string() == (
        "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX Root CA"
    )
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 1
    signing = x509.load_der_x509_certificate(pki.tcb_signing_der)
    assert signing.issuer == root.subject
    assert "TCB Signing" in signing.subject.rfc4514_string()


def test_bad_inputs_are_refused(pki: DcapTestPki) -> None:
    with pytest.raises(ValueError, match="report_data must be 64 bytes"):
        make_tdx_quote(pki, b"short")
    with pytest.raises(ValueError, match="report_data must be 64 bytes"):
        make_sgx_quote(pki, bytes(65))
    with pytest.raises(ValueError, match="unknown TCB profile"):
        make_tdx_quote(pki, REPORT_DATA, tcb="UpToDate")
    with pytest.raises(ValueError, match="version"):
        make_tdx_quote(pki, REPORT_DATA, version=3)
    with pytest.raises(ValueError, match="rtmr"):
        make_tdx_quote(pki, REPORT_DATA, rtmr=(bytes(48),) * 3)
    with pytest.raises(ValueError, match="unknown TCB status"):
        pki.collateral_json(tcb_status="Fine")
    with pytest.raises(ValueError, match="tee"):
        pki.collateral_json("sev")
    with pytest.raises(ValueError, match="next_update"):
        pki.collateral_json(issue_date=ISSUED, next_update=ISSUED)
    with pytest.raises(ValueError, match="fmspc"):
        DcapTestPki.generate("00906ED5")
    with pytest.raises(ValueError, match="timezone"):
        DcapTestPki.generate(not_before=datetime.datetime(2026, 1, 1))


def test_quote_lengths_are_self_consistent(pki: DcapTestPki) -> None:
    for quote, body in (
        (make_tdx_quote(pki, REPORT_DATA), TD_BODY),
        (make_sgx_quote(pki, REPORT_DATA), SGX_BODY),
    ):
        (signature_length,) = struct.unpack_from("<I", quote, HEADER + body)
        assert len(quote) == HEADER + body + SIG_LEN + signature_length


# ----------------------------------------------------------------------------- real shapes


def keys_of(document: Any) -> Any:
    """The key structure of a JSON document (values dropped, lists reduced to their first item)."""
    if isinstance(document, dict):
        return {key: keys_of(value) for key, value in document.items() if key != "advisoryIDs"}
    if isinstance(document, list):
        return [keys_of(document[0])] if document else []
    return None


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("tee", "folder"), [("tdx", "tdx/dcap-sample"), ("sgx", "sgx/dcap-sample")]
)
def test_collateral_has_the_shape_of_intels(pki: DcapTestPki, tee: str, folder: str) -> None:
    real = json.loads((vectors_root() / folder / "collateral.json").read_text())
    ours = json.loads(pki.collateral_json(tee, issue_date=ISSUED))
    assert set(ours) == set(real)
    for field in ("tcb_info", "qe_identity"):
        real_body = json.loads(real[field])
        ours_body = json.loads(ours[field])
        for level in real_body["tcbLevels"]:
            for part in ("sgxtcbcomponents", "tdxtcbcomponents"):
                for component in level["tcb"].get(part, []):
                    component.pop("category", None)
                    component.pop("type", None)
        assert keys_of(ours_body) == keys_of(real_body)
    real_quote = dcap_qvl.parse_quote((vectors_root() / folder / "quote.bin").read_bytes())
    our_quote = dcap_qvl.parse_quote(quote_of(pki, tee))
    assert our_quote.header.version == real_quote.header.version
    assert our_quote.header.tee_type == real_quote.header.tee_type
    assert our_quote.header.qe_vendor_id == real_quote.header.qe_vendor_id


def test_platform_flags_reach_dcap_qvl_policy() -> None:
    """The PCK configuration flags (dynamic platform, cached keys, SMT) are what a strict
    dcap-qvl policy reads; the default mirrors the recorded real platforms (all set)."""
    for flags, accepted in (((True, True, True), False), ((False, False, False), True)):
        pki = DcapTestPki.generate(seed=b"flags", platform_flags=flags)
        verifier = dcap_qvl.QuoteVerifier(pki.root_ca_der)
        quote = make_tdx_quote(pki, REPORT_DATA)
        strict = dcap_qvl.QuotePolicy.strict(NOW)
        if accepted:
            claims = json.loads(
                verifier.verify_with_policy(quote, collateral(pki), NOW, strict).to_json()
            )
            assert claims["tcb"]["status"] == "UpToDate"
        else:
            with pytest.raises(ValueError, match="Dynamic platform is not allowed"):
                verifier.verify_with_policy(quote, collateral(pki), NOW, strict)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mr_signer_seam": b"\x5a" * 48}, "TDX module MRSIGNER mismatch"),
        ({"seam_attributes": b"\x01" + bytes(7)}, "SEAMATTRIBUTES mismatch"),
        ({"tee_tcb_svn": bytes([6, 2, 3]) + bytes(13)}, "No TDX module identity with id TDX_02"),
    ],
)
def test_tdx_module_identity_is_enforced(
    pki: DcapTestPki, change: dict[str, bytes], reason: str
) -> None:
    """The TCB info's TDX module identities (TDX_01, Intel's zero MRSIGNER) bind the module."""
    rejected(pki, make_tdx_quote(pki, REPORT_DATA, **change), reason)  # type: ignore[arg-type]

"""DcapVerifier on recorded real evidence, at the recorded time.

Vectors are read only through $ATLS_VECTORS (atls_core.testing.vectors: skip without them,
fail if they are incomplete or CI=true lacks them).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dcap_qvl
import pytest

from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.errors import MalformedEvidence, StaleEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.measurements import SGX_WORKLOAD, TDX_WORKLOAD
from atls_core.policy import Policy
from atls_core.testing.vectors import vectors_root as vectors
from atls_dcap import (
    SGX_MEASUREMENTS,
    TDX_MEASUREMENTS,
    Collateral,
    DcapSettings,
    DcapVerifier,
    VerifiedQuote,
    parse_report_fields,
    record_quote,
)
from atls_dcap import tcb as tcb_eval
from atls_dcap.report import OUR_NAMES
from atls_dcap.sources import FileSource

pytestmark = pytest.mark.vectors


def read_quote(rel: str) -> bytes:
    path = vectors() / rel
    if path.suffix == ".hex":
        text = path.read_text().strip()
        return bytes.fromhex(text.removeprefix("0x").removeprefix("0X"))
    return path.read_bytes()


def read_text(rel: str) -> str:
    return (vectors() / rel).read_text()


def at(unix: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC)


# (quote, collateral, verify-at, status, advisories)
POSITIVE = [
    ("tdx/dcap-sample/quote.bin", "tdx/dcap-sample/collateral.json", 1750331763, "UpToDate", ()),
    (
        "tdx/dstack-quote-report/quote.bin",
        "tdx/dstack-quote-report/collateral.json",
        1763539264,
        "UpToDate",
        (),
    ),
    (
        "tdx/dstack-near-bob-20a06f-eventlog/quote.hex",
        "tdx/dstack-near-bob-20a06f-eventlog/collateral.json",
        1759388630,
        "UpToDate",
        (),
    ),
    (
        "tdx/gcp-teekit-v4-00806f05/quote.bin",
        "tdx/gcp-teekit-v4-00806f05/collateral_2025-07.json",
        1754471202,
        "UpToDate",
        (),
    ),
    (
        "tdx/gcp-teekit-v4-00806f05/quote.bin",
        "tdx/gcp-teekit-v4-00806f05/collateral_2025-09-29.json",
        1759388630,
        "UpToDate",
        (),
    ),
    (
        "tdx/outofdate-v4-00806f05/edgeless_quote.bin",
        "tdx/outofdate-v4-00806f05/collateral_2025-01.json",
        1740048927,
        "OutOfDate",
        ("INTEL-SA-00837", "INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
    ),
    (
        "tdx/outofdate-v4-00806f05/zkdcap_quote.bin",
        "tdx/outofdate-v4-00806f05/collateral_2025-01.json",
        1740048927,
        "OutOfDate",
        ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
    ),
    (
        "tdx/outofdate-v4-00806f05/automata_quote.bin",
        "tdx/outofdate-v4-00806f05/collateral_2025-01.json",
        1740048927,
        "OutOfDate",
        ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
    ),
    (
        "sgx/dcap-sample/quote.bin",
        "sgx/dcap-sample/collateral.json",
        1750334171,
        "ConfigurationAndSWHardeningNeeded",
        ("INTEL-SA-00289", "INTEL-SA-00615"),
    ),
    (
        "sgx/tlsn-sgx-v3-00906ed5-swhardening/quote9.bin",
        "sgx/tlsn-sgx-v3-00906ed5-swhardening/collateral_2025-01.json",
        1740048099,
        "SWHardeningNeeded",
        ("INTEL-SA-00334", "INTEL-SA-00615"),
    ),
    (
        "sgx/tlsn-sgx-v3-00906ed5-swhardening/quotedev.bin",
        "sgx/tlsn-sgx-v3-00906ed5-swhardening/collateral_2025-01.json",
        1740048099,
        "SWHardeningNeeded",
        ("INTEL-SA-00334", "INTEL-SA-00615"),
    ),
    (
        "gramine/konvera-gramine-ratls-cert-00606a-outofdate/extracted_quote.bin",
        "gramine/konvera-gramine-ratls-cert-00606a-outofdate/collateral_sgx_00606A_2025-08.json",
        1757824605,
        "OutOfDate",
        (
            "INTEL-SA-00615",
            "INTEL-SA-00657",
            "INTEL-SA-00767",
            "INTEL-SA-00828",
            "INTEL-SA-00837",
            "INTEL-SA-00960",
        ),
    ),
]
POSITIVE_IDS = [f"{q.split('/')[1]}:{Path(q).stem}:{Path(c).stem}" for q, c, *_ in POSITIVE]

DEBUG_ENCLAVE = (
    "gramine/neg-ccc-gramine-cert-00606a-debug-enclave/extracted_quote_legacy_oid.bin",
    "gramine/neg-ccc-gramine-cert-00606a-debug-enclave/collateral_sgx_00606A_2025-08.json",
    1757824605,
)

NO_TCB_LEVEL = [
    (
        "tdx/dcap-sample-no-tcb-level/quote.bin",
        "tdx/dcap-sample-no-tcb-level/collateral.json",
        1771415931,
    ),
    (
        "tdx/neg-dstack-simulator-b0c06f-eventlog-ok-tcb-nomatch/quote.hex",
        "tdx/neg-dstack-simulator-b0c06f-eventlog-ok-tcb-nomatch/collateral_2025-09-29.json",
        1759388630,
    ),
]


@pytest.fixture(scope="module")
def verifier() -> DcapVerifier:
    return DcapVerifier(DcapSettings.from_settings({"cache_dir": "none"}))


def _expected_report(rel_quote: str) -> dict[str, Any] | None:
    path = vectors() / Path(rel_quote).parent / "expected.json"
    if not path.exists():
        return None
    report: dict[str, Any] = json.loads(path.read_text())["report"]
    return report


@pytest.mark.parametrize(
    ("quote", "collateral", "when", "status", "advisories"), POSITIVE, ids=POSITIVE_IDS
)
def test_recorded_quote_verifies_with_recorded_status(
    verifier: DcapVerifier,
    quote: str,
    collateral: str,
    when: int,
    status: str,
    advisories: tuple[str, ...],
) -> None:
    raw = read_quote(quote)
    verified = verifier.verify_with_collateral(raw, read_text(collateral), now=at(when))
    assert verified.tcb_status == status
    assert sorted(verified.advisory_ids) == sorted(advisories)
    assert verified.debug is False
    assert verified.tee_type == quote.split("/")[0].replace("gramine", "sgx")
    assert len(verified.report_data) == 64
    assert verified.collateral_expires_at > at(when)
    assert verified.collateral_source == "given"
    assert verified.fmspc == dcap_qvl.parse_quote(raw).fmspc().upper()
    names = TDX_MEASUREMENTS if verified.tee_type == "tdx" else SGX_MEASUREMENTS
    assert set(names) <= set(verified.fields)
    assert verified.tcb_date is not None
    assert verified.tcb_date < at(when)
    # dcap-qvl's own legacy entry point agrees on status and advisories.
    legacy = dcap_qvl.verify(raw, dcap_qvl.QuoteCollateralV3.from_json(read_text(collateral)), when)
    assert (legacy.status, sorted(legacy.advisory_ids)) == (status, sorted(advisories))


@pytest.mark.parametrize("quote", ["tdx/dcap-sample/quote.bin", "sgx/dcap-sample/quote.bin"])
def test_fields_match_the_recorded_report(verifier: DcapVerifier, quote: str) -> None:
    case = next(p for p in POSITIVE if p[0] == quote)
    verified = verifier.verify_with_collateral(
        read_quote(quote), read_text(case[1]), now=at(case[2])
    )
    expected = _expected_report(quote)
    assert expected is not None
    body = next(iter(expected.values()))
    compared = 0
    for name, value in body.items():
        ours = verified.fields.get(OUR_NAMES.get(name, name))
        if ours is None:
            continue  # reserved fields dcap-qvl prints and we skip
        compared += 1
        if isinstance(value, int) and isinstance(ours, bytes):
            ours = int.from_bytes(ours, "little")  # dcap-qvl prints misc_select as a number
        assert (ours if isinstance(ours, int) else ours.hex()) == value, name
    assert compared >= 6
    assert verified.report_data.hex() == body["report_data"]


@pytest.mark.parametrize("case", POSITIVE, ids=POSITIVE_IDS)
def test_verified_fields_are_what_dcap_qvls_parser_reads(
    verifier: DcapVerifier, case: tuple[str, str, int, str, tuple[str, ...]]
) -> None:
    """Fields from dcap-qvl's verified claims and from its parser (debug quotes) agree."""
    quote, collateral, when, *_ = case
    raw = read_quote(quote)
    verified = verifier.verify_with_collateral(raw, read_text(collateral), now=at(when))
    tee_type, version, fields = parse_report_fields(raw)
    assert (tee_type, version) == (verified.tee_type, verified.quote_version)
    assert fields == dict(verified.fields)


def test_file_source_verifies_and_names_the_file(verifier: DcapVerifier) -> None:
    quote, collateral, when, status, _ = POSITIVE[0]
    settings = DcapSettings.from_settings(
        {"collateral": "file", "collateral_file": str(vectors() / collateral), "cache_dir": "none"}
    )
    file_verifier = DcapVerifier(settings)
    verified = file_verifier.verify(read_quote(quote), now=at(when))
    assert verified.tcb_status == status
    assert verified.collateral_source == f"file:{vectors() / collateral}"
    # Parsed once: the same Collateral object serves the second call.
    source = file_verifier.source
    assert isinstance(source, FileSource)
    assert source.fetch(b"") is source.fetch(b"")


def test_trailing_zero_padding_is_accepted(verifier: DcapVerifier) -> None:
    quote, collateral, when, status, _ = POSITIVE[0]
    padded = read_quote(quote) + bytes(512)
    assert (
        verifier.verify_with_collateral(padded, read_text(collateral), now=at(when)).tcb_status
        == status
    )


@pytest.mark.parametrize(("quote", "collateral", "when"), NO_TCB_LEVEL)
def test_no_matching_tcb_level_is_rejected(
    verifier: DcapVerifier, quote: str, collateral: str, when: int
) -> None:
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(read_quote(quote), read_text(collateral), now=at(when))
    assert info.value.check == "dcap.tcb_level"
    assert "No matching TCB level found" in str(info.value)


@pytest.mark.parametrize(
    ("quote", "collateral", "when", "error", "check"),
    [
        pytest.param(
            "tdx/gcp-teekit-v4-00806f05/quote.bin",
            "tdx/outofdate-v4-00806f05/collateral_2025-01.json",
            1740048927,
            StaleEvidence,
            "dcap.certificate_not_yet_valid",
            id="pck-not-yet-valid-with-older-collateral",
        ),
        pytest.param(
            "tdx/dcap-sample/quote.bin",
            "tdx/dstack-quote-report/collateral.json",
            1763539264,
            UntrustedChain,
            "dcap.fmspc",
            id="collateral-for-another-platform",
        ),
    ],
)
def test_collateral_that_does_not_fit_the_quote_is_refused(
    verifier: DcapVerifier,
    quote: str,
    collateral: str,
    when: int,
    error: type[StaleEvidence | UntrustedChain],
    check: str,
) -> None:
    with pytest.raises(error) as info:
        verifier.verify_with_collateral(read_quote(quote), read_text(collateral), now=at(when))
    assert info.value.check == check


def test_expired_and_future_collateral_are_stale(verifier: DcapVerifier) -> None:
    quote, collateral, when, *_ = POSITIVE[0]
    raw, text = read_quote(quote), read_text(collateral)
    with pytest.raises(StaleEvidence) as late:
        verifier.verify_with_collateral(raw, text, now=at(when + 40 * 86400))
    assert late.value.check in {
        "dcap.tcb_info_expired",
        "dcap.crl_expired",
        "dcap.qe_identity_expired",
    }
    with pytest.raises(StaleEvidence) as early:
        verifier.verify_with_collateral(raw, text, now=at(when - 40 * 86400))
    assert early.value.check.endswith("not_yet_valid")


def _signed_offsets(raw: bytes) -> dict[str, int]:
    """Offsets of one byte in each signed region of a v4 TDX quote."""
    body = 48
    auth = body + 584 + 4
    qe_report = auth + 64 + 64 + 6
    return {
        "header": 2,  # attestation key type / tee type area is covered by the quote signature
        "report_data": body + 584 - 1,
        "mrtd": body + 136,
        "quote_signature": auth + 10,
        "attestation_key": auth + 64 + 10,
        "qe_report": qe_report + 300,
        "qe_report_signature": qe_report + 384 + 10,
    }


@pytest.mark.parametrize(
    ("region", "checks"),
    [
        ("report_data", {"dcap.quote_signature"}),
        ("mrtd", {"dcap.quote_signature"}),
        ("quote_signature", {"dcap.quote_signature"}),
        ("attestation_key", {"dcap.qe_report_hash", "dcap.quote_signature"}),
        ("qe_report", {"dcap.qe_report_signature"}),
        ("qe_report_signature", {"dcap.qe_report_signature"}),
    ],
)
def test_flipped_quote_byte_is_rejected_specifically(
    verifier: DcapVerifier, region: str, checks: set[str]
) -> None:
    quote, collateral, when, *_ = POSITIVE[0]
    raw = bytearray(read_quote(quote))
    raw[_signed_offsets(bytes(raw))[region]] ^= 0x01
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(bytes(raw), read_text(collateral), now=at(when))
    assert info.value.check in checks


def _tamper_collateral(text: str, field: str) -> str:
    data = json.loads(text)
    if field in ("tcb_info", "qe_identity"):
        inner = json.loads(data[field])
        inner["tcbEvaluationDataNumber"] = int(inner["tcbEvaluationDataNumber"]) + 1
        data[field] = json.dumps(inner, separators=(",", ":"))
    else:
        value = data[field]
        middle = len(value) // 2
        data[field] = value[:middle] + ("1" if value[middle] == "0" else "0") + value[middle + 1 :]
    return json.dumps(data)


@pytest.mark.parametrize(
    ("field", "error", "checks"),
    [
        ("tcb_info", UntrustedChain, {"dcap.tcb_info_signature"}),
        ("qe_identity", UntrustedChain, {"dcap.qe_identity_signature"}),
        ("tcb_info_signature", UntrustedChain, {"dcap.tcb_info_signature"}),
        ("qe_identity_signature", UntrustedChain, {"dcap.qe_identity_signature"}),
        ("pck_crl", UntrustedChain, {"dcap.crl", "dcap.crl_signature", "dcap.certificate_chain"}),
        ("root_ca_crl", UntrustedChain, {"dcap.crl", "dcap.crl_signature"}),
    ],
)
def test_flipped_collateral_is_rejected_specifically(
    verifier: DcapVerifier, field: str, error: type[Exception], checks: set[str]
) -> None:
    quote, collateral, when, *_ = POSITIVE[0]
    tampered = _tamper_collateral(read_text(collateral), field)
    with pytest.raises((error, MalformedEvidence)) as info:
        verifier.verify_with_collateral(read_quote(quote), tampered, now=at(when))
    assert getattr(info.value, "check", None) in checks | {"dcap.collateral_format"}
    if field in ("tcb_info", "qe_identity", "tcb_info_signature", "qe_identity_signature"):
        assert isinstance(info.value, UntrustedChain)


def test_malformed_quotes_and_collateral(verifier: DcapVerifier) -> None:
    quote, collateral, when, *_ = POSITIVE[0]
    raw, text = read_quote(quote), read_text(collateral)
    for bad in (b"", b"\x00" * 10, raw[:600], b"\x07\x00" + raw[2:]):
        with pytest.raises(MalformedEvidence):
            verifier.verify_with_collateral(bad, text, now=at(when))
    for bad_text in ("not json", "[]", json.dumps({"tcb_info": "{"})):
        with pytest.raises(MalformedEvidence) as info:
            verifier.verify_with_collateral(raw, bad_text, now=at(when))
        assert info.value.check == "dcap.collateral_format"


# -- debug enclaves: verified, reported, left to policy ------------------------------------


class _Recorded(ValidatorBase):
    """A validator whose ``verify`` only records an already verified quote."""

    def __init__(self, verified: VerifiedQuote) -> None:
        self.verified = verified
        tdx = verified.tee_type == "tdx"
        self.spec = ValidatorSpec(
            id="tdx.test-dcap",
            media_types=("application/octet-stream",),
            binding_schemes=("atls-v1",),
            transport=Transport.FILE,
            tee_type=verified.tee_type,
            measurements=TDX_MEASUREMENTS if tdx else SGX_MEASUREMENTS,
            workload_identity=TDX_WORKLOAD if tdx else SGX_WORKLOAD,
        )

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        record_quote(appraisal, self.verified)
        return ReportData(value=self.verified.report_data)


def _appraise(verified: VerifiedQuote, when: int, **policy: Any) -> Any:
    """The core's appraisal (offline) of what record_quote recorded; the policy pins
    the quote's own workload so that only the recorded facts decide."""
    identity = "mrtd" if verified.tee_type == "tdx" else "mrenclave"
    pin = verified.fields[identity]
    assert isinstance(pin, bytes)
    evidence = Evidence(
        media_type="application/octet-stream",
        data=b"quote",
        source=EvidenceSource(transport=Transport.FILE),
    )
    return appraise(
        _Recorded(verified),
        evidence,
        binding=BindingContext.offline_context(),
        clock=FixedClock(at(when)),
        policy=Policy.from_mapping({"reference_values": {identity: pin.hex()}, **policy}),
    )


def test_debug_enclave_is_verified_and_left_to_policy(verifier: DcapVerifier) -> None:
    quote, collateral, when = DEBUG_ENCLAVE
    raw = read_quote(quote)
    with pytest.raises(ValueError, match="Debug mode is enabled"):
        dcap_qvl.verify(raw, dcap_qvl.QuoteCollateralV3.from_json(read_text(collateral)), when)
    verified = verifier.verify_with_collateral(raw, read_text(collateral), now=at(when))
    assert verified.debug is True
    assert verified.tcb_status == "OutOfDate"
    assert "INTEL-SA-00615" in verified.advisory_ids
    rejected = _appraise(verified, when)
    assert not rejected.accepted
    assert any(f.check == "debug" for f in rejected.failures)
    allowed = _appraise(
        verified,
        when,
        allow_debug=True,
        accepted_tcb_statuses=["OutOfDate"],
        accepted_advisory_ids=list(verified.advisory_ids),
    )
    assert allowed.accepted
    assert allowed.debug is True


@pytest.mark.parametrize("offset", [48 + 384 - 1, 48 + 100, 48 + 384 + 4 + 10])
def test_tampered_debug_enclave_still_fails_its_signature(
    verifier: DcapVerifier, offset: int
) -> None:
    quote, collateral, when = DEBUG_ENCLAVE
    raw = bytearray(read_quote(quote))
    raw[offset] ^= 0x01
    with pytest.raises(UntrustedChain) as info:
        verifier.verify_with_collateral(bytes(raw), read_text(collateral), now=at(when))
    assert info.value.check == "dcap.quote_signature"


def test_debug_enclave_with_expired_collateral_is_stale(verifier: DcapVerifier) -> None:
    quote, collateral, when = DEBUG_ENCLAVE
    with pytest.raises(StaleEvidence):
        verifier.verify_with_collateral(
            read_quote(quote), read_text(collateral), now=at(when + 90 * 86400)
        )


@pytest.mark.parametrize(
    ("quote", "collateral", "when", "status", "advisories"), POSITIVE, ids=POSITIVE_IDS
)
def test_debug_tcb_evaluation_agrees_with_dcap_qvl(
    quote: str, collateral: str, when: int, status: str, advisories: tuple[str, ...]
) -> None:
    """The evaluator used only for debug quotes reproduces dcap-qvl on every recorded quote."""
    raw = read_quote(quote)
    parsed = Collateral.from_json(read_text(collateral))
    tee_type, _version, fields = parse_report_fields(raw)
    verdict = tcb_eval.evaluate(raw, parsed, tee_type=tee_type, fields=fields)
    assert verdict.status == status
    assert sorted(verdict.advisory_ids) == sorted(advisories)


@pytest.mark.parametrize(("quote", "collateral", "when"), NO_TCB_LEVEL)
def test_debug_tcb_evaluation_rejects_unmatched_levels(
    quote: str, collateral: str, when: int
) -> None:
    raw = read_quote(quote)
    tee_type, _version, fields = parse_report_fields(raw)
    with pytest.raises(UntrustedChain) as info:
        tcb_eval.evaluate(
            raw, Collateral.from_json(read_text(collateral)), tee_type=tee_type, fields=fields
        )
    assert info.value.check == "dcap.tcb_level"


# -- record_quote ------------------------------------------------------------------------------


def test_record_quote_fills_the_appraisal(verifier: DcapVerifier) -> None:
    quote, collateral, when, *_ = POSITIVE[0]
    verified = verifier.verify_with_collateral(
        read_quote(quote), read_text(collateral), now=at(when)
    )
    result = _appraise(verified, when)
    assert result.accepted
    assert set(result.measurements) == set(TDX_MEASUREMENTS)
    assert result.measurements["mrtd"] == verified.fields["mrtd"].hex()  # type: ignore[union-attr]
    assert result.claims["report_data"] == verified.report_data.hex()
    assert result.claims["tee_tcb_svn"] == "06010300000000000000000000000000"
    assert result.claims["fmspc"] == "B0C06F000000"
    assert result.tcb.status == "UpToDate"
    assert result.tcb.date == verified.tcb_date
    assert result.expires_at == verified.collateral_expires_at
    assert result.tee_type == "tdx"
    assert result.debug is False


def test_record_quote_sgx_claims_are_typed(verifier: DcapVerifier) -> None:
    quote, collateral, when, *_ = POSITIVE[8]
    verified = verifier.verify_with_collateral(
        read_quote(quote), read_text(collateral), now=at(when)
    )
    result = _appraise(
        verified,
        when,
        accepted_tcb_statuses=["ConfigurationAndSWHardeningNeeded"],
        accepted_advisory_ids=["INTEL-SA-00289", "INTEL-SA-00615"],
    )
    assert result.accepted
    assert set(result.measurements) == set(SGX_MEASUREMENTS)
    assert (
        result.measurements["mrenclave"]
        == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
    )
    assert result.claims["isv_prod_id"] == 0
    assert result.claims["isv_svn"] == 0
    assert result.claims["attributes"] == "0500000000000000e700000000000000"
    default = _appraise(verified, when)
    assert not default.accepted  # UpToDate-only default policy

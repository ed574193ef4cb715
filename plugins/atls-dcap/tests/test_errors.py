"""Error mapping and tamper properties of DcapVerifier (synthetic PKI, no vectors needed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atls_core.errors import ATLSError, MalformedEvidence, StaleEvidence, UntrustedChain
from atls_dcap import DcapSettings, DcapVerifier, VerifiedQuote, map_qvl_error
from atls_dcap.errors import _RAISES, _RULES
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)
REPORT_DATA = hashlib.sha512(b"dcap error tests").digest()

# v4 TDX: header 48 + TD report 584 + signature-data length 4 + quote signature 64 +
# attestation key 64 + certification-data header 6 + QE report 384 + QE report signature 64.
SIGNED_TDX_PREFIX = 48 + 584 + 4 + 64 + 64 + 6 + 384 + 64
# v3 SGX: no certification-data header before the QE report.
SIGNED_SGX_PREFIX = 48 + 384 + 4 + 64 + 64 + 384 + 64

_PKI = DcapTestPki.generate(seed=b"test_dcap_errors")
_TDX_QUOTE = make_tdx_quote(_PKI, REPORT_DATA)
_SGX_QUOTE = make_sgx_quote(_PKI, REPORT_DATA)
_COLLATERAL = {tee: _PKI.collateral_json(tee, issue_date=ISSUED) for tee in ("tdx", "sgx")}
_VERIFIER = DcapVerifier(
    DcapSettings.from_settings(
        {"root_ca": _PKI.root_ca_der, "allow_custom_root": True, "cache_dir": "none"}
    )
)


@pytest.mark.parametrize(
    ("message", "cls", "check"),
    [
        ("Verification failed: No matching TCB level found", UntrustedChain, "dcap.tcb_level"),
        ("Verification failed: TCBInfo expired", StaleEvidence, "dcap.tcb_info_expired"),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CrlExpired",
            StaleEvidence,
            "dcap.crl_expired",
        ),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n"
            "    CertNotValidYet { time: UnixTime(1), not_before: UnixTime(2) }",
            StaleEvidence,
            "dcap.certificate_not_yet_valid",
        ),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CertRevoked",
            UntrustedChain,
            "dcap.certificate_revoked",
        ),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    UnknownIssuer",
            UntrustedChain,
            "dcap.certificate_chain",
        ),
        (
            "Verification failed: ISV enclave report signature is invalid",
            UntrustedChain,
            "dcap.quote_signature",
        ),
        ("Verification failed: QE report hash mismatch", UntrustedChain, "dcap.qe_report_hash"),
        (
            "Verification failed: TCB status Revoked is not acceptable by policy",
            UntrustedChain,
            "dcap.tcb_revoked",
        ),
        ("Verification failed: Fmspc mismatch", UntrustedChain, "dcap.fmspc"),
        (
            "Verification failed: SEPT_VE_DISABLE is not enabled",
            UntrustedChain,
            "dcap.sept_ve_disable",
        ),
        (
            "Failed to parse quote: Could not decode `Header::pce_svn`",
            MalformedEvidence,
            "dcap.quote_format",
        ),
        (
            "Verification failed: Failed to decode TcbInfo",
            MalformedEvidence,
            "dcap.collateral_format",
        ),
    ],
)
def test_known_messages_map_to_specific_errors(
    message: str, cls: type[ATLSError], check: str
) -> None:
    error = map_qvl_error(ValueError(message))
    assert type(error) is cls
    assert error.check == check
    assert "\n" not in str(error)
    assert "dcap-qvl:" in str(error)


def test_every_rule_has_an_outcome_and_every_outcome_a_rule() -> None:
    explanations = {reason for _needle, reason in _RULES}
    assert explanations == set(_RAISES)


def test_unknown_message_keeps_the_original_text() -> None:
    error = map_qvl_error(ValueError("Verification failed: something brand new happened"))
    assert type(error) is UntrustedChain
    assert error.check == "dcap.verify"
    assert "something brand new happened" in str(error)
    assert "verify failed" not in str(error).lower()


def test_verified_quote_is_frozen() -> None:
    verified = _VERIFIER.verify_with_collateral(_TDX_QUOTE, _COLLATERAL["tdx"], now=NOW)
    assert isinstance(verified, VerifiedQuote)
    with pytest.raises(AttributeError):
        verified.tcb_status = "Revoked"  # type: ignore[misc]
    with pytest.raises(TypeError):
        verified.fields["mrtd"] = b""  # type: ignore[index]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _VERIFIER.verify_with_collateral(
            _TDX_QUOTE, _COLLATERAL["tdx"], now=dt.datetime(2026, 3, 3)
        )


def _verify_flipped(quote: bytes, tee: str, offset: int, bit: int) -> Any:
    tampered = bytearray(quote)
    tampered[offset] ^= 1 << bit
    return _VERIFIER.verify_with_collateral(bytes(tampered), _COLLATERAL[tee], now=NOW)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset=st.integers(0, SIGNED_TDX_PREFIX - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_in_a_signed_tdx_region_is_rejected(offset: int, bit: int) -> None:
    with pytest.raises((UntrustedChain, MalformedEvidence)):
        _verify_flipped(_TDX_QUOTE, "tdx", offset, bit)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset=st.integers(0, SIGNED_SGX_PREFIX - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_in_a_signed_sgx_region_is_rejected(offset: int, bit: int) -> None:
    with pytest.raises((UntrustedChain, MalformedEvidence)):
        _verify_flipped(_SGX_QUOTE, "sgx", offset, bit)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(["tcb_info", "qe_identity"]),
    position=st.floats(0, 1, exclude_max=True),
    replacement=st.sampled_from("0123456789abcdefXYZ"),
)
def test_any_changed_character_of_signed_collateral_is_rejected(
    field: str, position: float, replacement: str
) -> None:
    data = json.loads(_COLLATERAL["tdx"])
    text = data[field]
    index = int(position * len(text))
    if text[index] == replacement:
        return  # not a change
    data[field] = text[:index] + replacement + text[index + 1 :]
    with pytest.raises((UntrustedChain, MalformedEvidence, StaleEvidence)):
        _VERIFIER.verify_with_collateral(_TDX_QUOTE, json.dumps(data), now=NOW)


@pytest.mark.parametrize("debug", [False, True])
def test_tdx_v5_quotes_verify_and_report_v5_fields(debug: bool) -> None:
    quote = make_tdx_quote(_PKI, REPORT_DATA, version=5, debug=debug)
    verified = _VERIFIER.verify_with_collateral(quote, _COLLATERAL["tdx"], now=NOW)
    assert verified.quote_version == 5
    assert verified.debug is debug
    assert verified.tcb_status == "UpToDate"
    assert verified.report_data == REPORT_DATA
    assert {"tee_tcb_svn2", "mr_servicetd"} <= set(verified.fields)


def test_debug_quote_with_nonzero_servicetd_is_rejected() -> None:
    quote = make_tdx_quote(_PKI, REPORT_DATA, version=5, debug=True, mr_servicetd=b"\x01" * 48)
    with pytest.raises(UntrustedChain) as info:
        _VERIFIER.verify_with_collateral(quote, _COLLATERAL["tdx"], now=NOW)
    assert info.value.check == "dcap.mr_servicetd"


def test_debug_evaluator_checks_the_quoting_enclave_identity() -> None:
    from atls_dcap import Collateral, parse_report_fields
    from atls_dcap import tcb as tcb_eval

    quote = make_tdx_quote(_PKI, REPORT_DATA, debug=True)
    tee_type, _version, fields = parse_report_fields(quote)
    collateral = Collateral.from_json(_COLLATERAL["tdx"])
    assert (
        tcb_eval.evaluate(quote, collateral, tee_type=tee_type, fields=fields).status == "UpToDate"
    )
    collateral.qe_identity["mrsigner"] = "00" * 32
    with pytest.raises(UntrustedChain) as info:
        tcb_eval.evaluate(quote, collateral, tee_type=tee_type, fields=fields)
    assert info.value.check == "dcap.qe_identity"


@pytest.mark.parametrize("debug", [False, True])
def test_every_sgx_field_comes_through_verified_or_parsed(debug: bool) -> None:
    """dcap-qvl names most SGX fields; the KSS ones are cut from its reserved ranges."""
    values: dict[str, Any] = {
        "isv_prod_id": 0x1234,
        "isv_svn": 0x0102,
        "misc_select": 0x0A0B0C0D,
        "config_id": bytes(range(64)),
        "config_svn": 0x0304,
        "isv_family_id": bytes(range(100, 116)),
        "isv_ext_prod_id": bytes(range(200, 216)),
    }
    quote = make_sgx_quote(_PKI, REPORT_DATA, debug=debug, **values)
    verified = _VERIFIER.verify_with_collateral(quote, _COLLATERAL["sgx"], now=NOW)
    assert verified.debug is debug
    fields = dict(verified.fields)
    assert fields["isv_prod_id"] == 0x1234
    assert fields["isv_svn"] == 0x0102
    assert fields["misc_select"] == (0x0A0B0C0D).to_bytes(4, "little")
    assert fields["config_id"] == bytes(range(64))
    assert fields["config_svn"] == (0x0304).to_bytes(2, "little")
    assert fields["isv_family_id"] == bytes(range(100, 116))
    assert fields["isv_ext_prod_id"] == bytes(range(200, 216))
    assert fields["report_data"] == REPORT_DATA
    from atls_dcap import parse_report_fields

    assert parse_report_fields(quote) == ("sgx", 3, fields)


@pytest.mark.parametrize("version", [4, 5])
def test_every_td_field_comes_through_verified_or_parsed(version: int) -> None:
    rtmrs = [bytes([i]) * 48 for i in range(1, 5)]
    quote = make_tdx_quote(
        _PKI,
        REPORT_DATA,
        version=version,
        rtmr=rtmrs,
        mr_config_id=b"\x05" * 48,
        mr_owner=b"\x06" * 48,
        mr_owner_config=b"\x07" * 48,
    )
    verified = _VERIFIER.verify_with_collateral(quote, _COLLATERAL["tdx"], now=NOW)
    fields = dict(verified.fields)
    assert [fields[f"rtmr{i}"] for i in range(4)] == rtmrs
    assert (fields["mrconfigid"], fields["mrowner"], fields["mrownerconfig"]) == (
        b"\x05" * 48,
        b"\x06" * 48,
        b"\x07" * 48,
    )
    assert ("mr_servicetd" in fields) is (version == 5)
    from atls_dcap import parse_report_fields

    assert parse_report_fields(quote) == ("tdx", version, fields)

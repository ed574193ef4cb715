"""Claim mapping of all token shapes, on real recorded ITA tokens and synthetic v2 claims."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from atls_core import measurements
from atls_core.errors import MalformedEvidence
from atls_ita.claims import map_claims, normalise_tcb_status
from atls_ita.testing.tokens import unverified_claims
from atls_ita.validator import expected_report_data

REAL = "ita/tokens-real-no-jwks/"
TDX_V1 = REAL + "kbs_service_key_transfer_test_go_TDX_fe2cce24.jwt"
SGX_V1 = REAL + "kbs_docs_openapi_yml_SGX_d7ec7def.jwt"
SGX_V1_OLD_STATUS = REAL + "kbs_service_key_transfer_test_go_SGX_d7ec7def.jwt"
AMBER = REAL + "kbs_docs_openapi_yml_SGX_3c2418b5.jwt"
AMBER_TDXCLI = REAL + "amber_sgx_token_tdxcli_verify_test_0.jwt"


def _claims(vectors: Callable[[str], Path], name: str) -> dict[str, object]:
    return unverified_claims(vectors(name).read_text())


@pytest.mark.vectors
def test_real_tdx_v1_token_maps_every_tdx_claim(vectors: Callable[[str], Path]) -> None:
    claims = _claims(vectors, TDX_V1)
    mapped = map_claims(claims, tee="tdx")
    assert mapped.shape == "v1"
    assert mapped.tee == "tdx"
    assert set(mapped.measurements) == set(measurements.TDX)
    assert mapped.measurements["mrtd"] == claims["tdx_mrtd"]
    assert mapped.measurements["rtmr2"] == claims["tdx_rtmr2"]
    assert mapped.measurements["mrseam"] == claims["tdx_mrseam"]
    assert mapped.claims["td_attributes"] == claims["tdx_td_attributes"]
    assert mapped.claims["seamsvn"] == claims["tdx_seamsvn"]
    assert mapped.claims["xfam"] == claims["tdx_xfam"]
    assert mapped.tcb_status == "UpToDate"
    assert mapped.tcb_date == dt.datetime(2023, 8, 9, tzinfo=dt.UTC)
    assert mapped.advisory_ids == ()
    assert mapped.debug is False
    assert mapped.held_data is not None
    assert mapped.report_data is not None
    assert mapped.report_data.hex() == claims["tdx_report_data"]
    assert mapped.verifier_nonce is not None
    assert mapped.verifier_nonce.iat.startswith(b"2024-02-01")


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("name", "tee"), [(TDX_V1, "tdx"), (SGX_V1, "sgx"), (SGX_V1_OLD_STATUS, "sgx")]
)
def test_itas_report_data_rule_holds_on_real_tokens(
    vectors: Callable[[str], Path], name: str, tee: str
) -> None:
    """The binding rule the validator enforces is ITA's, proven on ITA's own tokens."""
    mapped = map_claims(_claims(vectors, name), tee=tee)
    assert mapped.held_data is not None
    assert mapped.verifier_nonce is not None
    expected = expected_report_data(tee, mapped.held_data, mapped.verifier_nonce.prefix)
    assert mapped.report_data == expected
    # and a single flipped bit of held data breaks it
    flipped = bytes([mapped.held_data[0] ^ 1]) + mapped.held_data[1:]
    assert expected_report_data(tee, flipped, mapped.verifier_nonce.prefix) != expected


@pytest.mark.vectors
def test_real_sgx_v1_token(vectors: Callable[[str], Path]) -> None:
    claims = _claims(vectors, SGX_V1)
    mapped = map_claims(claims, tee="sgx")
    assert (mapped.shape, mapped.tee) == ("v1", "sgx")
    assert mapped.measurements == {
        "mrenclave": claims["sgx_mrenclave"],
        "mrsigner": claims["sgx_mrsigner"],
    }
    assert mapped.claims["isv_prod_id"] == 0
    assert mapped.claims["isv_svn"] == 0
    assert mapped.tcb_status == "OutOfDate"
    assert "INTEL-SA-00586" in mapped.advisory_ids
    assert mapped.debug is False
    assert mapped.report_data is not None
    assert len(mapped.report_data) == 64


@pytest.mark.vectors
def test_older_uppercase_tcb_status_is_normalised(vectors: Callable[[str], Path]) -> None:
    mapped = map_claims(_claims(vectors, SGX_V1_OLD_STATUS), tee="sgx")
    assert mapped.tcb_status == "OutOfDate"


@pytest.mark.vectors
@pytest.mark.parametrize("name", [AMBER, AMBER_TDXCLI])
def test_amber_tokens_map_with_their_prefix(vectors: Callable[[str], Path], name: str) -> None:
    claims = _claims(vectors, name)
    mapped = map_claims(claims)
    assert (mapped.shape, mapped.tee) == ("amber", "sgx")
    assert mapped.measurements["mrenclave"] == claims["amber_sgx_mrenclave"]
    assert mapped.measurements["mrsigner"] == claims["amber_sgx_mrsigner"]
    assert mapped.debug is False
    assert mapped.held_data is not None
    assert mapped.verifier_nonce is None


@pytest.mark.vectors
def test_amber_ok_status_is_not_guessed_into_up_to_date(vectors: Callable[[str], Path]) -> None:
    mapped = map_claims(_claims(vectors, AMBER))
    assert mapped.tcb_status == "OK"
    assert mapped.policy_ids_matched == ("f436c30a-644e-4bb2-b32c-1f5bff7752f2",)


@pytest.mark.vectors
def test_tdx_validator_refuses_an_sgx_token(vectors: Callable[[str], Path]) -> None:
    with pytest.raises(MalformedEvidence) as info:
        map_claims(_claims(vectors, SGX_V1), tee="tdx")
    assert info.value.check == "ita.attester_type"


def _v2(**tdx: object) -> dict[str, object]:
    section: dict[str, object] = {
        "attester_type": "TDX",
        "attester_tcb_status": "UpToDate",
        "attester_held_data": "aGVsZA==",
        "tdx_mrtd": "AB" * 48,
        "tdx_report_data": "00" * 64,
        "tdx_is_debuggable": False,
    }
    section.update(tdx)
    return {
        "ver": "2.0.0",
        "policy_ids_matched": [{"id": "p-1", "version": "v1"}],
        "policy_ids_unmatched": [{"id": "p-2", "version": "v3"}],
        "tdx": section,
    }


def test_v2_nested_shape() -> None:
    mapped = map_claims(_v2(), tee="tdx")
    assert (mapped.shape, mapped.tee) == ("v2", "tdx")
    assert mapped.measurements == {"mrtd": "ab" * 48}
    assert mapped.held_data == b"held"
    assert mapped.policy_ids_matched == ("p-1",)
    assert mapped.policy_ids_unmatched == ("p-2",)
    assert mapped.debug is False


def test_v2_without_a_section_for_the_tee_is_refused() -> None:
    with pytest.raises(MalformedEvidence) as info:
        map_claims(_v2(), tee="sgx")
    assert info.value.check == "ita.attester_type"


@pytest.mark.parametrize(
    "extra",
    [
        {"tdx_td_attributes": "0100000000000000"},
        {"tdx_td_attributes_debug": True},
        {"dbgstat": "enabled"},
        {"tdx_is_debuggable": True},
    ],
)
def test_any_debug_signal_makes_it_debug(extra: dict[str, object]) -> None:
    assert map_claims(_v2(**extra), tee="tdx").debug is True


@pytest.mark.parametrize("attributes", ["0200000000000000", "8000000000000000"])
def test_any_tud_bit_of_td_attributes_means_debuggable(attributes: str) -> None:
    # Regression (R3 review): only TUD.DEBUG (bit 0) was read, while Intel treats a TD
    # with any TD-Under-Debug bit (0..7) as untrusted, as atls_tdx's quote parser does.
    assert map_claims(_v2(tdx_td_attributes=attributes), tee="tdx").debug is True


def test_no_debug_signal_means_unknown() -> None:
    claims = _v2()
    del claims["tdx"]["tdx_is_debuggable"]  # type: ignore[attr-defined]
    assert map_claims(claims, tee="tdx").debug is None


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        ({"tdx_mrtd": "not hex"}, "ita.claims.tdx_mrtd"),
        ({"tdx_mrtd": 5}, "ita.claims.tdx_mrtd"),
        ({"tdx_is_debuggable": "false"}, "ita.claims.tdx_is_debuggable"),
        ({"attester_held_data": "***"}, "ita.claims.attester_held_data"),
        ({"attester_advisory_ids": "INTEL-SA-1"}, "ita.claims.attester_advisory_ids"),
        ({"attester_type": "SGX"}, "ita.claims.attester_type"),
        ({"verifier_nonce": {"val": "AA=="}}, "ita.claims.verifier_nonce"),
        ({"dbgstat": "maybe"}, "ita.claims.dbgstat"),
    ],
)
def test_malformed_claims_are_refused_not_guessed(extra: dict[str, object], check: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        map_claims(_v2(**extra), tee="tdx")
    assert info.value.check == check


def test_unknown_token_shape_is_refused() -> None:
    with pytest.raises(MalformedEvidence):
        map_claims({"iss": "x", "sub": "y"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("UpToDate", "UpToDate"),
        ("UP_TO_DATE", "UpToDate"),
        ("OUT_OF_DATE", "OutOfDate"),
        ("SW_HARDENING_NEEDED", "SWHardeningNeeded"),
        ("OutOfDateConfigurationNeeded", "OutOfDateConfigurationNeeded"),
        ("OK", "OK"),
    ],
)
def test_tcb_status_names(given: str, expected: str) -> None:
    assert normalise_tcb_status(given) == expected

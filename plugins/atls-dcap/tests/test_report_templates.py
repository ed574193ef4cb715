"""A server's quotes differ in report data only: the verifier reads the rest of a report once.

``DcapVerifier`` keeps the fields dcap-qvl read from a report body, keyed on the quote's
header and body with the report data cut out; a later quote with the same bytes there takes
those fields and its own report data.  These tests interleave quotes that differ in one field
each (TDX 1.0 and 1.5 bodies, SGX) through one verifier and hold every answer to a fresh
verifier's, so a key that covered too little, or a cut in the wrong place, fails here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest

from atls_dcap import DcapSettings, DcapVerifier
from atls_dcap.collateral import Collateral
from atls_dcap.report import VerifiedQuote
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote
from atls_dcap.verifier import _TEMPLATES_SIZE

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)


def _verifier(pki: DcapTestPki) -> DcapVerifier:
    return DcapVerifier(
        DcapSettings.from_settings(
            {"root_ca": pki.root_ca_der, "allow_custom_root": True, "cache_dir": "none"}
        )
    )


def _data(label: str) -> bytes:
    return hashlib.sha512(label.encode()).digest()


def _seen(verified: VerifiedQuote) -> tuple[object, ...]:
    return verified.tee_type, verified.quote_version, list(verified.fields.items())


Maker = Callable[[DcapTestPki, bytes], bytes]
ONE_FIELD_APART: dict[str, tuple[str, dict[str, Maker]]] = {
    "tdx": (
        "tdx",
        {
            "base": lambda pki, rd: make_tdx_quote(pki, rd),
            "mrtd": lambda pki, rd: make_tdx_quote(pki, rd, mrtd=b"\x01" * 48),
            "rtmr3": lambda pki, rd: make_tdx_quote(
                pki, rd, rtmr=(bytes(48),) * 3 + (b"\x02" * 48,)
            ),
            "mrconfigid": lambda pki, rd: make_tdx_quote(pki, rd, mr_config_id=b"\x03" * 48),
            "td 1.5": lambda pki, rd: make_tdx_quote(pki, rd, version=5),
            "td 1.5 mrowner": lambda pki, rd: make_tdx_quote(
                pki, rd, version=5, mr_owner=b"\x04" * 48
            ),
        },
    ),
    "sgx": (
        "sgx",
        {
            "base": lambda pki, rd: make_sgx_quote(pki, rd),
            "mrenclave": lambda pki, rd: make_sgx_quote(pki, rd, mrenclave=b"\x05" * 32),
            "isv_svn": lambda pki, rd: make_sgx_quote(pki, rd, isv_svn=7),
            "config_id": lambda pki, rd: make_sgx_quote(pki, rd, config_id=b"\x06" * 64),
        },
    ),
}


@pytest.mark.parametrize("case", sorted(ONE_FIELD_APART))
def test_quotes_one_field_apart_get_their_own_fields(pki: DcapTestPki, case: str) -> None:
    tee, makers = ONE_FIELD_APART[case]
    collateral = Collateral.from_json(pki.collateral_json(tee, issue_date=ISSUED))
    shared = _verifier(pki)
    for round_number in range(3):
        for name, make in makers.items():
            quote = make(pki, _data(f"{name} {round_number}"))
            alone = _verifier(pki).verify_parsed(
                quote, Collateral.from_json(collateral.json_text), now=NOW
            )
            verified = shared.verify_parsed(quote, collateral, now=NOW)
            assert _seen(verified) == _seen(alone), name
            assert verified.report_data == _data(f"{name} {round_number}")
    assert len(shared._templates) == len(makers)  # the rounds took the kept fields


def test_templates_are_bounded(pki: DcapTestPki) -> None:
    collateral = Collateral.from_json(pki.collateral_json("tdx", issue_date=ISSUED))
    verifier = _verifier(pki)
    for index in range(_TEMPLATES_SIZE + 3):
        mrtd = index.to_bytes(48, "big")
        verified = verifier.verify_parsed(
            make_tdx_quote(pki, _data("b"), mrtd=mrtd), collateral, now=NOW
        )
        assert verified.fields["mrtd"] == mrtd
        assert len(verifier._templates) <= _TEMPLATES_SIZE

"""The PCS / PCCS client: the documents, their headers and bodies, deadlines and credentials.

Fetches go to FakePcs on 127.0.0.1 (as Intel PCS v4 or as a PCCS); what they assemble is
verified by dcap-qvl under the synthetic root.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from atls_core.errors import CollateralUnavailable
from atls_core.fetch import Response
from atls_dcap import pcs
from atls_dcap.collateral import Collateral
from atls_dcap.settings import DcapSettings
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote
from atls_dcap.verifier import DcapVerifier

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)
REPORT_DATA = hashlib.sha512(b"pcs tests").digest()


@pytest.fixture(scope="module")
def served(pki: DcapTestPki) -> str:
    return pki.collateral_json("tdx", issue_date=ISSUED)


@pytest.fixture
def pccs(served: str) -> Iterator[FakePcs]:
    with FakePcs(served) as server:
        yield server


def verifier(pki: DcapTestPki, **settings: Any) -> DcapVerifier:
    return DcapVerifier(
        DcapSettings.from_settings(
            {"root_ca": pki.root_ca_der, "allow_custom_root": True, "cache_dir": "none", **settings}
        )
    )


def fetched(url: str, pki: DcapTestPki, **kw: Any) -> dict[str, Any]:
    kw.setdefault("tee", "tdx")
    text = pcs.fetch_collateral(url, fmspc=pki.fmspc, ca=pki.ca, timeout=10, **kw)
    collateral: dict[str, Any] = json.loads(text)
    return collateral


# -- the documents -----------------------------------------------------------------------------


def test_pccs_documents_are_passed_on_exactly(pki: DcapTestPki, pccs: FakePcs, served: str) -> None:
    got = fetched(pccs.url, pki)
    assert got == json.loads(served)  # signed JSON byte for byte, CRLs, chains, signatures
    assert pccs.requests == {"pckcrl": 1, "tcb": 1, "qe_identity": 1, "rootcacrl": 1}
    paths = sorted(pccs.paths)
    assert f"/sgx/certification/v4/pckcrl?ca={pki.ca}&encoding=der" in paths
    assert f"/tdx/certification/v4/tcb?fmspc={pki.fmspc}" in paths
    assert "/tdx/certification/v4/qe/identity?update=standard" in paths
    assert "/sgx/certification/v4/rootcacrl" in paths
    quote = make_tdx_quote(pki, REPORT_DATA)
    parsed = Collateral.from_json(json.dumps(got))
    assert verifier(pki).verify_parsed(quote, parsed, now=NOW).tcb_status == "UpToDate"


def test_intel_pcs_shape_with_the_root_crl_at_its_distribution_point(
    pki: DcapTestPki, served: str
) -> None:
    with FakePcs(served, flavour="pcs") as intel:
        got = fetched(intel.url, pki, root_crl_url=intel.root_crl_url)
        assert got == json.loads(served)
        assert intel.requests == {"pckcrl": 1, "tcb": 1, "qe_identity": 1, "rootca.crl": 1}
        # Intel PCS has no rootcacrl endpoint: asking it there is an error, not a guess.
        with pytest.raises(CollateralUnavailable) as info:
            fetched(intel.url, pki)
        assert "root CA CRL" in str(info.value)
        assert "404" in str(info.value)


def test_sgx_collateral_comes_from_the_sgx_endpoints(pki: DcapTestPki) -> None:
    with FakePcs(pki.collateral_json("sgx", issue_date=ISSUED)) as server:
        got = fetched(server.url, pki, tee="sgx")
        assert json.loads(got["tcb_info"])["id"] == "SGX"
        assert all(path.startswith("/sgx/") for path in server.paths)
        quote = make_sgx_quote(pki, REPORT_DATA)
        verified = verifier(pki, collateral="pccs", pccs_url=server.url).verify(quote, now=NOW)
        assert (verified.tee_type, verified.tcb_status) == ("sgx", "UpToDate")
        with pytest.raises(CollateralUnavailable):  # TDX collateral is not served for SGX
            fetched(server.url, pki, tee="tdx")


def test_a_pccs_url_with_its_api_path_is_understood(pki: DcapTestPki, pccs: FakePcs) -> None:
    for suffix in ("/sgx/certification/v4", "/tdx/certification/v4/"):
        assert fetched(pccs.url + suffix, pki)["tcb_info"]


def test_the_deadline_bounds_the_whole_collateral_not_each_request(
    pki: DcapTestPki, pccs: FakePcs
) -> None:
    pccs.delay = 0.4  # each answer alone is well within the timeout, four are not
    with pytest.raises(CollateralUnavailable) as info:
        verifier(pki, collateral="pccs", pccs_url=pccs.url, collateral_timeout=1.0).verify(
            make_tdx_quote(pki, REPORT_DATA), now=NOW
        )
    assert info.value.check == "collateral.timeout"
    assert 2 <= pccs.total_requests < 4


# -- credentials -----------------------------------------------------------------------------


def test_pccs_credentials_are_sent_but_never_shown(pki: DcapTestPki, pccs: FakePcs) -> None:
    host = urllib.parse.urlsplit(pccs.url).netloc
    url = f"http://operator:s3cr%40t@{host}/?token=t0ken"
    check = verifier(pki, collateral="pccs", pccs_url=url)
    verified = check.verify(make_tdx_quote(pki, REPORT_DATA), now=NOW)
    assert verified.collateral_source == f"pccs:http://{host}/***"
    expected = "Basic " + base64.b64encode(b"operator:s3cr@t").decode()
    assert pccs.authorizations == [expected] * 4
    assert all("token=t0ken" in path for path in pccs.paths)
    pccs.fail_with = 503
    check.cache.clear_memory()
    with pytest.raises(CollateralUnavailable) as info:
        check.verify(make_tdx_quote(pki, REPORT_DATA), now=NOW + dt.timedelta(days=40))
    shown = f"{info.value} {info.value.to_dict()} {info.value!r}"
    assert "503" in shown
    for secret in ("operator", "s3cr", "t0ken"):
        assert secret not in shown
        assert secret not in verified.collateral_source
        assert secret not in repr(check.settings)


# -- answers that are not collateral ---------------------------------------------------------------


def _answer(body: bytes, **headers: str) -> Response:
    return Response(
        status=200, headers=MappingProxyType({k.lower(): v for k, v in headers.items()}), body=body
    )


def test_the_signed_text_is_cut_out_exactly() -> None:
    body = b' { "signature" : "AB01" ,\n "tcbInfo" :  {"b": [1, 2], "a": "\\u00e9"}  } '
    text, signature = pcs._signed_body(_answer(body), "tcbInfo", "TCB info")
    assert text == '{"b": [1, 2], "a": "\\u00e9"}'
    assert signature == "ab01"


@pytest.mark.parametrize(
    "body",
    [
        b'{"tcbInfo": {}, "tcbInfo": {}, "signature": "ab"}',  # which one was signed?
        b'{"tcbInfo": {}}',
        b'{"signature": "ab"}',
        b'{"tcbInfo": [], "signature": "ab"}',
        b'{"tcbInfo": {}, "signature": "xyz"}',
        b'{"tcbInfo": {}, "signature": 12}',
        b'{"tcbInfo": {}, "signature": "ab"} trailing',
        b'{"tcbInfo": {} "signature": "ab"}',
        b'["tcbInfo"]',
        b"\xff\xfe",
        b'{"tcbInfo": ' + b"[" * 100_000 + b', "signature": "ab"}',
        b"",
    ],
)
def test_malformed_signed_bodies_are_unavailable_collateral(body: bytes) -> None:
    with pytest.raises(CollateralUnavailable) as info:
        pcs._signed_body(_answer(body), "tcbInfo", "TCB info")
    assert info.value.check == "collateral.fetch"


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
            max_leaves=8,
        ),
        max_size=5,
    ),
    st.sampled_from([None, 1, 2]),
)
def test_member_spans_hold_exactly_each_value(value: dict[str, Any], indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    spans = pcs._members(text)
    assert set(spans) == set(value)
    for name, (start, end) in spans.items():
        assert json.loads(text[start:end]) == value[name]


def test_crls_are_read_as_der_pem_or_hex(pki: DcapTestPki, served: str) -> None:
    der = bytes.fromhex(json.loads(served)["pck_crl"])
    pem = x509.load_der_x509_crl(der).public_bytes(Encoding.PEM)
    for given_body in (der, pem, der.hex().encode(), der.hex().upper().encode() + b"\n"):
        assert pcs._crl_der(given_body, "PCK CRL") == der
    for bad in (
        b"",
        b"not a crl",
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        b"0a0b",
    ):
        with pytest.raises(CollateralUnavailable):
            pcs._crl_der(bad, "PCK CRL")


def test_issuer_chain_headers_are_required_and_url_decoded(pki: DcapTestPki) -> None:
    chain = pki.root_ca_pem
    encoded = urllib.parse.quote(chain)
    names = ("TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")
    assert pcs._chain(_answer(b"", **{"SGX-TCB-Info-Issuer-Chain": encoded}), names, "x") == chain
    with pytest.raises(CollateralUnavailable) as info:
        pcs._chain(_answer(b""), names, "TCB info")
    assert "TCB-Info-Issuer-Chain" in str(info.value)
    with pytest.raises(CollateralUnavailable):
        pcs._chain(_answer(b"", **{"TCB-Info-Issuer-Chain": "not%20a%20chain"}), names, "x")


def test_unexpected_platforms_never_reach_a_url() -> None:
    for bad in (
        {"tee": "sev", "fmspc": "00906ED50000", "ca": "platform"},
        {"tee": "tdx", "fmspc": "00906ED50000&x=1", "ca": "platform"},
        {"tee": "tdx", "fmspc": "00906ED50000", "ca": "../x"},
    ):
        with pytest.raises(ValueError, match="unexpected platform"):
            pcs.fetch_collateral("http://127.0.0.1:9", timeout=1, **bad)

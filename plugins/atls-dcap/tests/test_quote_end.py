"""Bytes after the end of a quote: zero padding is accepted, anything else refused.

dcap-qvl reads a quote up to the end its lengths declare and ignores the rest, which
nothing signs; every way into DcapVerifier (fetched collateral, given collateral,
parsed collateral) checks what follows before verifying.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Callable, Iterator

import pytest

from atls_core.errors import MalformedEvidence
from atls_dcap import DcapSettings, DcapVerifier, VerifiedQuote
from atls_dcap.collateral import Collateral
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote
from atls_dcap.verifier import check_quote_end

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)
REPORT_DATA = hashlib.sha512(b"quote end tests").digest()
_PKI = DcapTestPki.generate(seed=b"test_quote_end")

QUOTES = {
    "tdx-v4": ("tdx", make_tdx_quote(_PKI, REPORT_DATA)),
    "tdx-v5": ("tdx", make_tdx_quote(_PKI, REPORT_DATA, version=5)),
    "sgx-v3": ("sgx", make_sgx_quote(_PKI, REPORT_DATA)),
}

Verify = Callable[[bytes], VerifiedQuote]


@pytest.fixture(params=["fetched", "given", "parsed"])
def entry(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Verify]]:
    """One of DcapVerifier's ways in, for a TEE's synthetic collateral."""
    settings = {"root_ca": _PKI.root_ca_der, "allow_custom_root": True, "cache_dir": "none"}

    def make(tee: str) -> Verify:
        text = _PKI.collateral_json(tee, issue_date=ISSUED)
        if request.param == "given":
            verifier = DcapVerifier(DcapSettings.from_settings(settings))
            return lambda quote: verifier.verify_with_collateral(quote, text, now=NOW)
        if request.param == "parsed":
            verifier, collateral = (
                DcapVerifier(DcapSettings.from_settings(settings)),
                Collateral.from_json(text),
            )
            return lambda quote: verifier.verify_parsed(quote, collateral, now=NOW)
        pcs = FakePcs(text).start()
        servers.append(pcs)
        verifier = DcapVerifier(
            DcapSettings.from_settings({**settings, "collateral": "pccs", "pccs_url": pcs.url})
        )
        return lambda quote: verifier.verify(quote, now=NOW)

    servers: list[FakePcs] = []
    yield make
    for server in servers:
        server.stop()


@pytest.mark.parametrize("name", sorted(QUOTES))
def test_zero_padding_is_accepted_with_the_same_result(
    entry: Callable[[str], Verify], name: str
) -> None:
    tee, quote = QUOTES[name]
    verify = entry(tee)
    assert verify(quote + bytes(3000)) == verify(quote)


@pytest.mark.parametrize("name", sorted(QUOTES))
@pytest.mark.parametrize(
    "after",
    [
        pytest.param(lambda quote: quote, id="a second quote"),
        pytest.param(lambda _quote: b"\x01", id="one byte"),
        pytest.param(lambda _quote: bytes(100) + b"\xff" + bytes(100), id="a byte in padding"),
    ],
)
def test_anything_else_after_the_end_is_refused(
    entry: Callable[[str], Verify], name: str, after: Callable[[bytes], bytes]
) -> None:
    tee, quote = QUOTES[name]
    with pytest.raises(MalformedEvidence) as info:
        entry(tee)(quote + after(quote))
    assert info.value.check == "dcap.quote_format"


def test_a_v5_body_size_that_is_not_its_types_is_refused() -> None:
    """dcap-qvl sizes a v5 body by its type alone; Intel's verifier also checks the size."""
    quote = bytearray(QUOTES["tdx-v5"][1])
    struct.pack_into("<I", quote, 50, 584)
    with pytest.raises(MalformedEvidence) as info:
        check_quote_end(bytes(quote))
    assert info.value.check == "dcap.quote_format"


@pytest.mark.parametrize(("version", "tee_type"), [(2, 0), (3, 0x81), (4, 0x42), (6, 0)], ids=str)
def test_an_unknown_layout_is_refused_not_let_through_unchecked(
    version: int, tee_type: int
) -> None:
    quote = bytearray(QUOTES["sgx-v3"][1])
    struct.pack_into("<HHI", quote, 0, version, 2, tee_type)
    with pytest.raises(MalformedEvidence) as info:
        check_quote_end(bytes(quote))
    assert info.value.check == "dcap.quote_format"

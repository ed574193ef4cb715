"""Quotes given as hex text (files, dstack challenge answers) decode exactly; anything else
is left as bytes or refused, never half-decoded."""

from __future__ import annotations

import os

import pytest

from atls_core.errors import MalformedEvidence
from atls_tdx.tdx_common import quote_from_bytes

QUOTE = os.urandom(5006)


@pytest.mark.parametrize(
    "text",
    [
        QUOTE.hex().encode(),
        QUOTE.hex().upper().encode(),
        b"0x" + QUOTE.hex().encode(),
        b"0X" + QUOTE.hex().encode(),
        b"  \n" + QUOTE.hex()[:100].encode() + b"\n\t " + QUOTE.hex()[100:].encode() + b"\r\n",
    ],
)
def test_hex_text_decodes_to_the_quote(text: bytes) -> None:
    assert quote_from_bytes(text) == QUOTE


@pytest.mark.parametrize("text", [b"abc", b"0xabc", b" a b c "])
def test_an_odd_number_of_hex_digits_is_refused(text: bytes) -> None:
    with pytest.raises(MalformedEvidence, match="odd number of hex digits") as info:
        quote_from_bytes(text, name="quote.hex")
    assert info.value.check == "evidence.encoding"


@pytest.mark.parametrize(
    "data",
    [
        QUOTE,  # raw bytes
        b"not hex at all",
        QUOTE.hex().encode()[:-2] + b"zz",  # hex but for the last digits
        "ab\u0663\u0664".encode(),  # Arabic-Indic digits are not hex digits
        b"",
        b"   ",
        b"0x",
    ],
)
def test_anything_else_is_returned_as_given(data: bytes) -> None:
    assert quote_from_bytes(data) == data

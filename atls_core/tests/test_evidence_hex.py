"""Evidence files written as hex text: one reader for every plugin."""

from __future__ import annotations

import pytest

from atls_core.errors import MalformedEvidence
from atls_core.evidence import bytes_from_hex_text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"04000200", b"\x04\x00\x02\x00"),
        (b"  0x04 00\n02 00\n", b"\x04\x00\x02\x00"),
        (b"0XaB", b"\xab"),
        (b"\x04\x00\x02\x00", None),  # binary: the caller reads it as it is
        (b"0x", None),
        (b"", None),
        (b"04zz", None),
        (b"\xff\xfe", None),
        (b"040", None),  # odd, and no name given: read as binary
    ],
)
def test_hex_text_is_decoded_and_anything_else_is_left_to_the_caller(
    data: bytes, expected: bytes | None
) -> None:
    assert bytes_from_hex_text(data) == expected


def test_an_odd_count_of_hex_digits_is_refused_when_the_input_is_named() -> None:
    with pytest.raises(MalformedEvidence) as info:
        bytes_from_hex_text(b"0x040", odd_digits="quote")
    assert info.value.check == "evidence.encoding"
    assert info.value.reason == "quote: odd number of hex digits"
    assert bytes_from_hex_text(b"04zz0", odd_digits="quote") is None  # not hex at all

"""What a server sends is read by hand-written code: certificates and challenge answers.

Whatever the bytes, the readers return or raise :class:`MalformedEvidence` (the
client then refuses with a named check); any other exception would be a reader bug
an attacker can reach before a single signature is checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atls_core.certificate import PeerCertificate
from atls_core.challenge import ResponseReader
from atls_core.errors import MalformedEvidence
from atls_core.testing.certs import self_signed_certificate

CERTIFICATE = self_signed_certificate(
    ec.generate_private_key(ec.SECP256R1()),
    [("1.3.9999.255.1", b"E" * 300), ("1.3.9999.255.2", b"F" * 40)],
    common_name="fuzz.test",
    not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    not_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    serial=7,
    critical=("1.3.9999.255.1",),
    dns_names=("fuzz.test",),
)

ANSWERS = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"quote":"ab"}',
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
)
HTTP_BYTES = b"\r\n :;,0123456789abcdefHTTP/1.\x00\x80\xff"
DER_BYTES = (
    b"\x00\x01\x02\x04\x06\x17\x18\x1f\x30\x7f\x80\x81\x82\x83\x84\x85\xa0\xa3\xff0123456789Z"
)
"""Lengths, tags and the digits of validity times: where a DER reader's edge cases are."""


@st.composite
def mutated(draw: st.DrawFn, original: bytes, alphabet: bytes) -> bytes:
    """``original`` with one to four bytes replaced, runs deleted or bytes inserted."""
    data = bytearray(original)
    byte = st.sampled_from(alphabet) | st.integers(0, 255)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(("replace", "delete", "insert")))
        if edit == "replace" and position < len(data):
            data[position] = draw(byte)
        elif edit == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        else:
            data[position:position] = bytes(draw(st.lists(byte, min_size=1, max_size=4)))
    return bytes(data)


@settings(max_examples=1000, deadline=None)
@given(mutated(CERTIFICATE, DER_BYTES))
def test_a_mutated_certificate_is_read_or_refused_as_malformed(der: bytes) -> None:
    try:
        certificate = PeerCertificate.from_der(der)
    except MalformedEvidence:
        return
    assert certificate.der == der
    _ = certificate.spki_der, certificate.not_before, certificate.not_after
    _ = [extension.value for extension in certificate.extensions.values()]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_are_not_a_certificate(der: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        PeerCertificate.from_der(der)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ANSWERS).flatmap(lambda answer: mutated(answer, HTTP_BYTES)),
    st.sampled_from(("POST", "GET", "HEAD")),
    st.lists(st.integers(0, 200), max_size=3),
)
def test_a_mutated_challenge_answer_is_read_or_refused_as_malformed(
    wire: bytes, method: str, cuts: list[int]
) -> None:
    reader = ResponseReader(max_body_bytes=64, request_method=method)
    pieces = sorted({min(cut, len(wire)) for cut in cuts} | {0, len(wire)})
    try:
        for start, end in itertools.pairwise(pieces):
            reader.feed(wire[start:end])
        reader.eof()
    except MalformedEvidence:
        return
    assert reader.complete

"""The envelope round-trips, and no byte string makes a parser fail with anything but an atls error."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atls_core.errors import ATLSError, MalformedEvidence
from atls_core.testing.refusals import refused
from atls_snp.certs import parse_certificate, split_certificates
from atls_snp.crl import parse_crl
from atls_snp.envelope import decode_envelope, encode_envelope, parse_certificate_table
from atls_snp.report import REPORT_SIZE, parse_report
from atls_snp.testing import SyntheticSnp


def test_envelope_round_trip(milan: SyntheticSnp) -> None:
    report = milan.report()
    for certificates in ([], milan.chain()):
        assert decode_envelope(encode_envelope(report, certificates)) == (report, certificates)


@pytest.mark.parametrize(
    "data",
    [
        encode_envelope(b"r", [b"c"])[:-1],
        encode_envelope(b"r", [b"c"]) + b"\0",
        bytes.fromhex("3003020102"),  # version 2
        bytes.fromhex("300a02010104003003020101"),  # a certificate that is an INTEGER
        b"\x30\x84" + (70000).to_bytes(4, "big") + bytes(70000),
    ],
    ids=["truncated", "trailing", "version", "not-octets", "too-large"],
)
def test_malformed_envelopes_are_refused(data: bytes) -> None:
    with refused(MalformedEvidence, "snp.envelope"):
        decode_envelope(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_parsers_fail_only_with_atls_errors(data: bytes) -> None:
    for parse in (
        decode_envelope,
        split_certificates,
        parse_certificate_table,
        parse_certificate,
        parse_crl,
        parse_report,
    ):
        with contextlib.suppress(ATLSError):
            parse(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_certificates_fail_only_with_atls_errors(
    milan: SyntheticSnp, data: st.DataObject
) -> None:
    original = bytearray(milan.vcek.certificate)
    position = data.draw(st.integers(0, len(original) - 1))
    original[position] = data.draw(st.integers(0, 255))
    try:
        certificate = parse_certificate(bytes(original))
        _ = certificate.vek, certificate.public_key
    except ATLSError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=REPORT_SIZE, max_size=REPORT_SIZE))
def test_random_reports_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        report = parse_report(data)
        _ = report.policy_claim(), report.platform_info_claim(), report.cpuid_product
    except ATLSError:
        pass

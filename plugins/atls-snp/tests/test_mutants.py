"""Mutants of recorded SEV-SNP reports, appraised at the recording's time: none may pass or crash.

Every byte the firmware signs (0x000-0x29F) and the signature itself (0x2A0-0x32F) is bound:
a changed byte must be refused.  Only the reserved tail 0x330-0x49F is neither signed nor read;
mutants there must be accepted with the very same result, so a change that starts reading those
bytes (and would then trust unsigned data) is noticed here.  A refusal must be an atls error
naming its check; any other exception is a parser bug an attacker reaches before the signature.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence

import pytest

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.mutants import mutant_verdict
from atls_core.testing.vectors import Vector
from atls_snp.envelope import encode_envelope
from atls_snp.report import REPORT_SIZE, SIGNED_SIZE, parse_report
from atls_snp.validator import SnpReportValidator

pytestmark = pytest.mark.vectors

MILAN = ("snp/amd-roots/milan/ask.pem", "snp/amd-roots/milan/ark.pem")
RECORDINGS = {
    # name: (report, certificate files, recorded time)
    "virtee-milan-v2": (
        "snp/virtee-milan-v2-vcek/report.bin",
        ("snp/virtee-milan-v2-vcek/vcek.der", *MILAN),
        1683082314,
    ),
    "routex-turin-v5": (
        "snp/routex-turin-v5-vcek/report.bin",
        ("snp/routex-turin-v5-vcek/vcek-chain.pem",),
        1772054565,
    ),
    "aws-milan-vlek": (
        "snp/constellation-aws-milan-vlek/report_2023-11.bin",
        (
            "snp/constellation-aws-milan-vlek/vlek_2023-11.pem",
            "snp/amd-roots/milan/asvk.pem",
            MILAN[1],
        ),
        1700837388,
    ),
}
SIGNATURE_END = 0x330
"""R and S, 72 bytes each from 0x2A0; the report is reserved (zero, unsigned) from here on."""
HEADER_END = 0x50
"""version .. platform_info and the key-selection flags: every bit of these is tried."""
UNREAD = [(SIGNATURE_END, REPORT_SIZE, "reserved after the signature: not signed, not read")]


class Recording:
    def __init__(self, vectors: Vector, name: str) -> None:
        report, files, when = RECORDINGS[name]
        self.report = vectors(report).read_bytes()
        bundle = b"".join(vectors(file).read_bytes() + b"\n" for file in files)
        self.validator = SnpReportValidator({"ask": bundle, "kds": "never"})
        self.clock = FixedClock(dt.datetime.fromtimestamp(when, dt.UTC))
        self.policy = Policy(
            reference_values={"measurement": parse_report(self.report).measurement.hex()}
        )

    def appraise(self, data: bytes, *, name: str = "report.bin") -> AttestationResult:
        return appraise(
            self.validator,
            self.validator.evidence_from_file(data, name=name),
            binding=BindingContext.offline_context(),
            clock=self.clock,
            policy=self.policy,
        )

    def judge(
        self,
        mutants: Iterator[tuple[str, bytes]],
        *,
        original: bytes | None = None,
        name: str = "report.bin",
    ) -> list[str]:
        """The mutants that were accepted, refused without a check, or crashed, one line each."""
        baseline = self.appraise(self.report if original is None else original, name=name)
        assert baseline.accepted, baseline.to_json()
        found = []
        for label, data in mutants:
            verdict = mutant_verdict(lambda: self.appraise(data, name=name), baseline)  # noqa: B023
            if verdict != "refused":
                found.append(f"{label}: {verdict}")
        return found


def _flips(
    data: bytes, positions: Sequence[int], bits: Sequence[int]
) -> Iterator[tuple[str, bytes]]:
    for position in positions:
        for bit in bits:
            mutant = bytearray(data)
            mutant[position] ^= 1 << bit
            yield f"flip 0x{position:03x}.{bit}", bytes(mutant)


def _substitutions(
    data: bytes, positions: Sequence[int], rng: random.Random
) -> Iterator[tuple[str, bytes]]:
    for position in positions:
        value = rng.choice(
            [v for v in (0x00, 0xFF, rng.randrange(256)) if v != data[position]] or [1]
        )
        mutant = bytearray(data)
        mutant[position] = value
        yield f"set 0x{position:03x}={value:02x}", bytes(mutant)


def _unread(label: str) -> bool:
    position = int(label.split()[1].split(".")[0].split("=")[0], 16)
    return any(start <= position < end for start, end, _why in UNREAD)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_every_header_bit_and_sampled_signed_bytes_are_bound(vectors: Vector, name: str) -> None:
    recording = Recording(vectors, name)
    rng = random.Random(f"snp-signed-{name}")
    body = rng.sample(range(HEADER_END, SIGNED_SIZE), 120)
    signature = range(SIGNED_SIZE, SIGNATURE_END)

    def mutants() -> Iterator[tuple[str, bytes]]:
        yield from _flips(recording.report, range(HEADER_END), range(8))
        yield from _flips(recording.report, body, [rng.randrange(8)])
        yield from _substitutions(recording.report, body, rng)
        yield from _flips(recording.report, signature, [rng.randrange(8)])
        yield from _substitutions(recording.report, signature, rng)

    assert recording.judge(mutants()) == []


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_only_the_reserved_tail_is_unbound(vectors: Vector, name: str) -> None:
    """The listed unread bytes change nothing; if this fails, something started reading them."""
    recording = Recording(vectors, name)
    rng = random.Random(f"snp-tail-{name}")
    tail = rng.sample(range(SIGNATURE_END, REPORT_SIZE), 40)
    found = recording.judge(_substitutions(recording.report, tail, rng))
    assert all(_unread(line) for line in found)
    assert [line.split(": ", 1)[1] for line in found] == ["accepted"] * len(tail)


def _cuts(report: bytes) -> Iterator[tuple[str, bytes]]:
    for size in (
        0,
        1,
        4,
        0x30,
        HEADER_END,
        SIGNED_SIZE,
        SIGNED_SIZE + 72,
        SIGNATURE_END,
        REPORT_SIZE - 1,
    ):
        yield f"cut {size}", report[:size]
    for extra in (b"\0", b"\0" * 16, report):
        yield f"extend {len(extra)}", report + extra


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_truncated_and_extended_reports_are_refused(vectors: Vector, name: str) -> None:
    recording = Recording(vectors, name)
    assert recording.judge(_cuts(recording.report)) == []


def _tlv_heads(der: bytes, start: int = 0, end: int | None = None) -> Iterator[int]:
    """The positions of every tag and length byte in a DER encoding (not the contents)."""
    end = len(der) if end is None else end
    position = start
    while position < end:
        tag = der[position]
        length = der[position + 1]
        heads = 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[position + 2 : position + 2 + count], "big")
            heads += count
        yield from range(position, position + heads)
        if tag & 0x20:  # constructed: its parts have heads too
            yield from _tlv_heads(der, position + heads, position + heads + length)
        position += heads + length


def _certificates(vectors: Vector, name: str) -> list[bytes]:
    from atls_snp.certs import split_certificates

    _report, files, _when = RECORDINGS[name]
    return split_certificates(b"".join(vectors(file).read_bytes() + b"\n" for file in files))


@pytest.mark.parametrize("name", ["virtee-milan-v2", "aws-milan-vlek"])
def test_every_envelope_tag_and_length_is_bound(vectors: Vector, name: str) -> None:
    """The DER envelope (report plus chain) with each structural byte flipped, then cut at every
    element boundary: refused, never read past or around."""
    recording = Recording(vectors, name)
    recording.validator = SnpReportValidator({"kds": "never"})  # only the envelope's chain
    envelope = encode_envelope(recording.report, _certificates(vectors, name))
    heads = sorted(set(_tlv_heads(envelope)))
    rng = random.Random(f"snp-envelope-{name}")

    def mutants() -> Iterator[tuple[str, bytes]]:
        for position in heads:
            for bit in (0, 7, rng.randrange(1, 7)):
                mutant = bytearray(envelope)
                mutant[position] ^= 1 << bit
                yield f"envelope flip 0x{position:04x}.{bit}", bytes(mutant)
        for position in heads:
            yield f"envelope cut {position}", envelope[:position]

    assert recording.judge(mutants(), original=envelope, name="envelope.der") == []


@pytest.mark.parametrize("name", ["virtee-milan-v2", "aws-milan-vlek"])
def test_sampled_edits_of_the_carried_certificates_are_refused(vectors: Vector, name: str) -> None:
    """A changed byte of the VCEK/VLEK or its issuer (tbs, algorithm or signature) breaks the chain."""
    recording = Recording(vectors, name)
    recording.validator = SnpReportValidator({"kds": "never"})
    certificates = _certificates(vectors, name)
    rng = random.Random(f"snp-certs-{name}")

    def mutants() -> Iterator[tuple[str, bytes]]:
        for index in range(2):  # the endorsement key and its issuer; the ARK is pinned by value
            der = certificates[index]
            for position in sorted(rng.sample(range(len(der)), 60)):
                changed = bytearray(der)
                changed[position] ^= 1 << rng.randrange(8)
                chain = [*certificates[:index], bytes(changed), *certificates[index + 1 :]]
                label = f"certificate {index} flip 0x{position:03x}"
                yield label, encode_envelope(recording.report, chain)

    envelope = encode_envelope(recording.report, certificates)
    assert recording.judge(mutants(), original=envelope, name="envelope.der") == []

"""Mutants of recorded TDX quotes, appraised by ``tdx.dcap`` at the recording's time.

A changed byte of the header, the TD report, the quote signature, the attestation key, the QE
report, its signature, the QE authentication data or any length or type field must be refused with
a named check.  Bytes that nothing signs and nothing reads may be changed without effect; they are
listed in :data:`UNREAD` with the reason, and such a mutant must give the very same result:

* the signature-data length is not signed; a value that still covers the data read and leaves
  only zero bytes after it only moves where the padding starts;
* the copy of Intel's root certificate at the end of the PCK chain: the verifier uses its pinned
  root, never the quote's (and with it the low byte of the certification-data size, which only
  cuts into that copy);
* bytes between PEM blocks and whitespace inside them, which PEM decoding skips;
* zero padding after the signature data (some platforms add it); any other byte after the end is
  refused (``dcap.quote_format``).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.mutants import mutant_outcome, mutant_verdict, workload_facts
from atls_dcap.report import parse_report_fields
from atls_tdx.dcap_validator import TdxDcapValidator

pytestmark = pytest.mark.vectors

Vectors = Callable[[str], Path]
Mutant = tuple[str, bytes, frozenset[int]]
"""A label, the mutated quote, and the positions of the original it changed."""

RECORDINGS = {
    "dcap-sample": ("tdx/dcap-sample/quote.bin", "tdx/dcap-sample/collateral.json", 1750331763),
    "gcp": (
        "tdx/gcp-teekit-v4-00806f05/quote.bin",
        "tdx/gcp-teekit-v4-00806f05/collateral_2025-07.json",
        1754471202,
    ),
}
WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")


@attrs.frozen
class Layout:
    """Where the parts of a v4/v5 quote sit (v5 wraps the TD report in a type and size)."""

    body: tuple[int, int]
    signature_length: int
    signature_data: tuple[int, int]
    certification_header: int
    qe_report: int
    authentication_length: int
    pck_header: int
    pem: tuple[int, int]
    root: tuple[int, int]
    pem_blocks: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, quote: bytes) -> Layout:
        version = struct.unpack_from("<H", quote)[0]
        body_start = 48 if version == 4 else 54
        body_size = 584 if version == 4 else struct.unpack_from("<I", quote, 50)[0]
        length_at = body_start + body_size
        data = length_at + 4
        data_end = data + struct.unpack_from("<I", quote, length_at)[0]
        certification = data + 128
        qe_report = certification + 6
        authentication = qe_report + 384 + 64
        pck = authentication + 2 + struct.unpack_from("<H", quote, authentication)[0]
        pem_start = pck + 6
        pem_end = pem_start + struct.unpack_from("<I", quote, pck + 2)[0]
        blocks = []
        position = quote.find(b"-----BEGIN", pem_start)
        while 0 <= position < pem_end:
            end = quote.index(b"-----", quote.index(b"-----END", position) + 8) + 5
            blocks.append((position, end))
            position = quote.find(b"-----BEGIN", end)
        assert len(blocks) == 3, "PCK, platform CA, root"
        return cls(
            body=(0, length_at),
            signature_length=length_at,
            signature_data=(data, data_end),
            certification_header=certification,
            qe_report=qe_report,
            authentication_length=authentication,
            pck_header=pck,
            pem=(pem_start, pem_end),
            root=blocks[-1],
            pem_blocks=tuple(blocks),
        )

    def only_zeros_after_the_end(self, mutant: bytes) -> bool:
        """What follows the end ``mutant``'s signature-data length declares is zero padding."""
        declared = struct.unpack_from("<I", mutant, self.signature_length)[0]
        return not any(mutant[self.signature_data[0] + declared :])

    def unread(self, original: bytes, mutant: bytes, changed: frozenset[int]) -> str | None:
        """Why the changed bytes are not read, or None when they are."""
        if min(changed) >= self.root[0]:
            if not self.only_zeros_after_the_end(mutant):
                return None
            return "the quote's copy of the root, and zero padding after the end"
        if len(mutant) != len(original):
            return None
        if changed <= set(range(self.signature_length, self.signature_length + 4)):
            declared = struct.unpack_from("<I", mutant, self.signature_length)[0]
            if self.pem[1] - self.signature_data[0] <= declared <= len(mutant) - 4 - self.body[
                1
            ] and self.only_zeros_after_the_end(mutant):
                return "signature-data length still covering what is read, zeros after it"
        if changed <= set(range(self.pck_header + 2, self.pck_header + 6)):
            declared = struct.unpack_from("<I", mutant, self.pck_header + 2)[0]
            if self.root[0] < self.pck_header + 6 + declared <= len(mutant):
                return "certification-data size cutting only into the root's copy"
        if all(self.pem[0] <= p < self.pem[1] for p in changed):
            if all(not any(start <= p < end for start, end in self.pem_blocks) for p in changed):
                return "between PEM blocks"
            if all(original[p] in WHITESPACE and mutant[p] in WHITESPACE for p in changed):
                return "whitespace inside a PEM block"
        return None


class Recording:
    def __init__(self, vectors: Vectors, name: str) -> None:
        quote, collateral, when = RECORDINGS[name]
        self.quote = vectors(quote).read_bytes()
        self.validator = TdxDcapValidator(
            {"collateral_file": str(vectors(collateral)), "cache_dir": "none"}
        )
        self.clock = FixedClock.from_unix(when)
        mrtd = parse_report_fields(self.quote)[2]["mrtd"]
        assert isinstance(mrtd, bytes)
        self.policy = Policy(reference_values={"mrtd": mrtd.hex()})
        self.layout = Layout.of(self.quote)

    def appraise(self, data: bytes) -> AttestationResult:
        return self.validator.appraise(
            self.validator.evidence_from_file(data, name="quote.bin"),
            binding=BindingContext.offline_context(),
            clock=self.clock,
            policy=self.policy,
        )

    def findings(self, mutants: Iterator[Mutant]) -> list[str]:
        """Mutants accepted though a read byte changed, accepted with another result, refused
        without a check, or crashed: one line each."""
        baseline = self.appraise(self.quote)
        assert baseline.accepted, baseline.to_json()
        found = []
        for label, data, changed in mutants:
            verdict = mutant_verdict(lambda: self.appraise(data), baseline)  # noqa: B023
            if verdict == "refused":
                continue
            why = self.layout.unread(self.quote, data, changed)
            if why is None or verdict != "accepted":
                found.append(f"{label}: {verdict}" + (f" ({why})" if why else ""))
        return found


def _flip(data: bytes, position: int, bit: int) -> Mutant:
    mutant = bytearray(data)
    mutant[position] ^= 1 << bit
    return f"flip {position}.{bit}", bytes(mutant), frozenset({position})


def _set(data: bytes, position: int, value: int) -> Mutant:
    mutant = bytearray(data)
    mutant[position] = value
    return f"set {position}={value:02x}", bytes(mutant), frozenset({position})


def _mutants(quote: bytes, layout: Layout, rng: random.Random) -> Iterator[Mutant]:
    every_bit = [
        *range(48),  # header
        *range(layout.signature_length, layout.signature_length + 4),
        *range(layout.certification_header, layout.certification_header + 6),
        *range(layout.authentication_length, layout.authentication_length + 2),
        *range(layout.pck_header, layout.pck_header + 6),
    ]
    if struct.unpack_from("<H", quote)[0] == 5:  # the TD report's type and size
        every_bit += range(48, 54)
    every_byte = [
        *range(layout.signature_data[0], layout.certification_header),  # signature, key
        *range(layout.qe_report + 384, layout.authentication_length + 2),  # QE signature
        *range(layout.authentication_length + 2, layout.pck_header),  # authentication data
    ]
    sampled = [
        *rng.sample(range(48, layout.signature_length), 120),  # TD report
        *rng.sample(range(layout.qe_report, layout.qe_report + 384), 60),
        *rng.sample(range(*layout.pem), 200),  # PCK chain, PEM
    ]
    for position in every_bit:
        for bit in range(8):
            yield _flip(quote, position, bit)
    for position in every_byte:
        yield _flip(quote, position, rng.randrange(8))
    for position in sampled:
        yield _flip(quote, position, rng.randrange(8))
        value = rng.choice([v for v in (0, 0xFF, rng.randrange(256)) if v != quote[position]])
        yield _set(quote, position, value)


def _cuts(quote: bytes, layout: Layout) -> Iterator[Mutant]:
    boundaries = {
        0,
        1,
        2,
        47,
        48,
        layout.signature_length,
        layout.signature_data[0],
        layout.signature_data[0] + 64,
        layout.certification_header,
        layout.qe_report,
        layout.qe_report + 384,
        layout.authentication_length,
        layout.authentication_length + 2,
        layout.pck_header,
        layout.pem[0],
        *(end for _start, end in layout.pem_blocks[:-1]),
        layout.root[0] - 1,
    }
    for size in sorted(boundaries):
        yield f"cut {size}", quote[:size], frozenset(range(size, len(quote)))
    for extra in (b"\0", b"\x01" * 7, quote):
        yield f"extend {len(extra)}", quote + extra, frozenset({len(quote)})


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_no_mutant_of_a_signed_or_structural_byte_is_accepted(vectors: Vectors, name: str) -> None:
    recording = Recording(vectors, name)
    rng = random.Random(f"tdx-quote-{name}")
    assert recording.findings(_mutants(recording.quote, recording.layout, rng)) == []


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_cut_or_extended_quotes_are_refused_unless_only_padding_moved(
    vectors: Vectors, name: str
) -> None:
    recording = Recording(vectors, name)
    assert recording.findings(_cuts(recording.quote, recording.layout)) == []


def test_the_listed_unread_bytes_change_nothing(vectors: Vectors) -> None:
    """The exemptions above are real: each is accepted with the very same result."""
    recording = Recording(vectors, "dcap-sample")
    layout, quote = recording.layout, recording.quote
    baseline = workload_facts(recording.appraise(quote))
    root_byte = (layout.root[0] + layout.root[1]) // 2
    gap = layout.pem_blocks[0][1]  # the newline after the first block
    padded = quote + bytes(64)
    exempt = [
        _set(quote, root_byte, quote[root_byte] ^ 0x01),
        _set(quote, gap, ord("J")),
        ("zero padding", padded, frozenset(range(len(quote), len(padded)))),
    ]
    for mutant in exempt:
        label, data, changed = mutant
        assert layout.unread(quote, data, changed) is not None, label
        assert workload_facts(recording.appraise(data)) == baseline, label


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_non_zero_bytes_after_the_end_of_a_recorded_quote_are_refused(
    vectors: Vectors, name: str
) -> None:
    """dcap-qvl reads no further than the signature data: whatever follows is covered by
    nothing, so only zero padding (seen on real platforms) may be there."""
    recording = Recording(vectors, name)
    quote, end = recording.quote, recording.layout.signature_data[1]
    assert len(quote) > end, "both recordings come zero-padded"
    assert recording.appraise(quote + bytes(100)).accepted
    for label, data in [
        ("a second quote", quote + quote),
        ("one byte", quote + b"\x01"),
        ("the last padding byte", quote[:-1] + b"\x5a"),
        ("the first padding byte", quote[:end] + b"\x01" + quote[end + 1 :]),
        ("one byte in zero padding", quote + bytes(50) + b"\x80" + bytes(49)),
    ]:
        with pytest.raises(ATLSError) as info:
            recording.appraise(data)
        assert info.value.check == "dcap.quote_format", label


def test_the_no_tcb_level_v5_quote_stays_refused_under_mutation(vectors: Vectors) -> None:
    """A negative recording: every mutant is still refused, each with a named check."""
    folder = "tdx/dcap-sample-no-tcb-level"
    quote = vectors(f"{folder}/quote.bin").read_bytes()
    validator = TdxDcapValidator(
        {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
    )
    layout = Layout.of(quote)
    rng = random.Random("tdx-quote-v5")
    found = []
    mutants = [
        *_cuts(quote, layout),
        *(_flip(quote, p, b) for p in range(60) for b in (0, 7)),
        *(_flip(quote, p, rng.randrange(8)) for p in rng.sample(range(len(quote)), 150)),
    ]
    for label, data, _changed in mutants:
        word, _result = mutant_outcome(
            lambda: validator.appraise(
                validator.evidence_from_file(data, name="quote.bin"),  # noqa: B023
                binding=BindingContext.offline_context(),
                clock=FixedClock.from_unix(1771415931),
                policy=Policy(allow_any_workload=True),
            )
        )
        if word != "refused":
            found.append(f"{label}: {word}")
    assert found == []

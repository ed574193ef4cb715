"""Mutants of the recorded Gramine RA-TLS certificates, appraised at their recorded time and bound
to the certificate's key: none may pass unless it only changed a byte nothing signs or reads.

Inside the evidence (the SGX quote, and for TCG DICE the CBOR around it and the claims) every
header, length and type field, every signature byte and sampled body bytes are changed.  What may
change without effect (the same result) is listed in :meth:`Layout.unread`:

* the copy of Intel's root certificate at the end of the PCK chain (the pinned root is used),
  bytes between PEM blocks and whitespace inside them, and a certification-data size that only
  cuts into that copy;
* in the certificate around the evidence, anything but the key and the extension that carries the
  evidence: TLS proves possession of the key, and the certificate's names, times and
  self-signature are not evidence;
* with both extensions present, the legacy one (the TCG DICE extension decides, as in Gramine).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.mutants import mutant_verdict, workload_facts
from atls_gramine.ratls import encode_tcg_evidence, parse_tcg_evidence
from atls_gramine.specs import LEGACY_OID, TCG_OID
from atls_gramine.validator import GramineRatlsValidator, certificate_der_from_file

pytestmark = pytest.mark.vectors

Vector = Callable[..., Path]
KONVERA = "konvera-gramine-ratls-cert-00606a-outofdate"
CCC = "neg-ccc-gramine-cert-00606a-debug-enclave"
RECORDED_AT = FixedClock.from_unix(1757824605)
KONVERA_POLICY = Policy(
    accepted_tcb_statuses={"UpToDate", "OutOfDate"},
    accepted_advisory_ids=(
        "INTEL-SA-00828",
        "INTEL-SA-00837",
        "INTEL-SA-00657",
        "INTEL-SA-00767",
        "INTEL-SA-00960",
        "INTEL-SA-00615",
    ),
    reference_values={
        "mrenclave": "f94ccbe6a504676b2edbefdcb8781a512913f7d8864c6f88592a843d0f9d4a66"
    },
)
CCC_POLICY = Policy(
    accepted_tcb_statuses={"UpToDate", "OutOfDate"},
    accepted_advisory_ids=(
        "INTEL-SA-00586",
        "INTEL-SA-00614",
        "INTEL-SA-00615",
        "INTEL-SA-00657",
        "INTEL-SA-00730",
        "INTEL-SA-00738",
        "INTEL-SA-00767",
        "INTEL-SA-00828",
        "INTEL-SA-00837",
        "INTEL-SA-00960",
    ),
    reference_values={
        "mrsigner": "adc53501f21ced9b998e37a7a18e061c63e00315045fa57a49c18ef0a30d02ca"
    },
    allow_debug=True,  # the recording is a debug enclave; the mutants are what is tested here
)
WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")


@attrs.frozen
class Layout:
    """Where the parts of an SGX v3 quote sit."""

    signature_length: int
    authentication_length: int
    pck_header: int
    pem: tuple[int, int]
    blocks: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, quote: bytes) -> Layout:
        assert struct.unpack_from("<H", quote)[0] == 3
        authentication = 436 + 64 + 64 + 384 + 64
        pck = authentication + 2 + struct.unpack_from("<H", quote, authentication)[0]
        pem = (pck + 6, pck + 6 + struct.unpack_from("<I", quote, pck + 2)[0])
        blocks = []
        position = quote.find(b"-----BEGIN", pem[0])
        while 0 <= position < pem[1]:
            end = quote.index(b"-----", quote.index(b"-----END", position) + 8) + 5
            blocks.append((position, end))
            position = quote.find(b"-----BEGIN", end)
        assert len(blocks) == 3, "PCK, platform CA, root"
        return cls(432, authentication, pck, pem, tuple(blocks))

    def unread(self, original: bytes, mutant: bytes, changed: frozenset[int]) -> str | None:
        """Why the changed quote bytes are not read, or None when they are."""
        root = self.blocks[-1]
        if min(changed) >= root[0]:
            return "the quote's copy of the root, and what follows the chain"
        if len(mutant) != len(original):
            return None
        if changed <= set(range(self.pck_header + 2, self.pck_header + 6)):
            declared = struct.unpack_from("<I", mutant, self.pck_header + 2)[0]
            if root[0] < self.pck_header + 6 + declared <= len(mutant):
                return "certification-data size cutting only into the root's copy"
        if all(self.pem[0] <= p < self.pem[1] for p in changed):
            if not any(start <= p < end for start, end in self.blocks for p in changed):
                return "between PEM blocks"
            if all(original[p] in WHITESPACE and mutant[p] in WHITESPACE for p in changed):
                return "whitespace inside a PEM block"
        return None


Mutant = tuple[str, bytes, frozenset[int]]


def _flip(data: bytes, position: int, bit: int) -> Mutant:
    mutant = bytearray(data)
    mutant[position] ^= 1 << bit
    return f"flip {position}.{bit}", bytes(mutant), frozenset({position})


def _set(data: bytes, position: int, rng: random.Random) -> Mutant:
    value = rng.choice([v for v in (0, 0xFF, rng.randrange(256)) if v != data[position]])
    mutant = bytearray(data)
    mutant[position] = value
    return f"set {position}={value:02x}", bytes(mutant), frozenset({position})


def _quote_mutants(quote: bytes, layout: Layout, rng: random.Random) -> Iterator[Mutant]:
    every_bit = [
        *range(48),  # header
        *range(layout.signature_length, layout.signature_length + 4),
        *range(layout.authentication_length, layout.authentication_length + 2),
        *range(layout.pck_header, layout.pck_header + 6),
    ]
    for position in every_bit:
        for bit in range(8):
            yield _flip(quote, position, bit)
    for position in range(436, 436 + 128):  # ISV report signature, attestation key
        yield _flip(quote, position, rng.randrange(8))
    for position in range(436 + 128 + 384, layout.pck_header):  # QE signature, authentication
        yield _flip(quote, position, rng.randrange(8))
    sampled = [
        *rng.sample(range(48, 432), 80),  # ISV enclave report
        *rng.sample(range(436 + 128, 436 + 128 + 384), 40),  # QE report
        *rng.sample(range(*layout.pem), 120),
    ]
    for position in sampled:
        yield _flip(quote, position, rng.randrange(8))
        yield _set(quote, position, rng)
    boundaries = (0, 2, 48, 432, 436, 500, 564, 948, 1012, 1014, layout.pck_header, layout.pem[0])
    for size in (*boundaries, *(end for _start, end in layout.blocks[:-1])):
        yield f"cut {size}", quote[:size], frozenset(range(size, len(quote) + 1))
    for extra in (b"\0", b"\x01" * 5):
        yield f"extend {len(extra)}", quote + extra, frozenset({len(quote)})


class Recording:
    def __init__(self, vector: Vector, folder: str) -> None:
        if folder == KONVERA:
            der = vector("gramine", folder, "tlscert.der").read_bytes()
            self.policy = KONVERA_POLICY
        else:
            der = certificate_der_from_file(
                vector("gramine", folder, "gramine-cert.pem").read_bytes()
            )
            self.policy = CCC_POLICY
        self.certificate = PeerCertificate.from_der(der)
        collateral = vector("gramine", folder, "collateral_sgx_00606A_2025-08.json")
        self.validator = GramineRatlsValidator(
            {"collateral_file": str(collateral), "cache_dir": "none"}
        )
        self.evidence = self.validator.evidence_from_certificate(self.certificate)
        self.baseline = self.appraise(self.evidence)
        assert self.baseline.accepted, self.baseline.to_json()

    def appraise(
        self, evidence: Evidence, certificate: PeerCertificate | None = None
    ) -> AttestationResult:
        certificate = certificate or self.certificate
        return self.validator.appraise(
            evidence,
            binding=BindingContext(spki_der=certificate.spki_der, certificate_der=certificate.der),
            clock=RECORDED_AT,
            policy=self.policy,
        )

    def verdict(self, run: Callable[[], AttestationResult]) -> str:
        """``accepted`` (with the baseline's very facts), ``refused``, or a finding."""
        return mutant_verdict(run, self.baseline)


def test_konvera_quote_mutants_are_refused_unless_unread(vector: Vector) -> None:
    """The legacy extension is the raw quote: every mutant of it, bound to the certificate."""
    recorded = Recording(vector, KONVERA)
    quote = recorded.evidence.data
    layout = Layout.of(quote)
    found = []
    for label, data, changed in _quote_mutants(quote, layout, random.Random("gramine-konvera")):
        verdict = recorded.verdict(
            lambda: recorded.appraise(attrs.evolve(recorded.evidence, data=data))  # noqa: B023
        )
        unread = layout.unread(quote, data, changed)
        if verdict != "refused" and not (verdict == "accepted" and unread is not None):
            found.append(f"{label}: {verdict}")
    assert found == []


def test_ccc_tcg_evidence_mutants_are_refused_unless_unread(vector: Vector) -> None:
    """The TCG DICE extension: its CBOR head, every byte of the claims, and the quote inside."""
    recorded = Recording(vector, CCC)
    tcg = parse_tcg_evidence(recorded.evidence.data)
    encoded = recorded.evidence.data
    quote_at = encoded.index(tcg.quote)
    claims_at = encoded.index(tcg.claims, quote_at + len(tcg.quote))
    layout = Layout.of(tcg.quote)
    rng = random.Random("gramine-ccc")
    mutants: list[tuple[str, bytes, str | None]] = []
    for position in [*range(quote_at), *range(quote_at + len(tcg.quote), claims_at)]:
        for bit in range(8):  # tag, array and string heads
            label, data, _ = _flip(encoded, position, bit)
            mutants.append((f"cbor {label}", data, None))
    for position in range(claims_at, len(encoded)):
        label, data, _ = _flip(encoded, position, rng.randrange(8))
        mutants.append((f"claims {label}", data, None))
    for size in (0, 1, 3, quote_at, quote_at + 100, claims_at, len(encoded) - 1):
        mutants.append((f"cut {size}", encoded[:size], None))
    mutants.append(("extend", encoded + b"\0", None))
    for label, quote, changed in _quote_mutants(tcg.quote, layout, rng):
        unread = layout.unread(tcg.quote, quote, changed)
        mutants.append((f"quote {label}", encode_tcg_evidence(quote, tcg.claims), unread))
    found = []
    for label, data, unread in mutants:
        verdict = recorded.verdict(
            lambda: recorded.appraise(attrs.evolve(recorded.evidence, data=data))  # noqa: B023
        )
        if verdict != "refused" and not (verdict == "accepted" and unread is not None):
            found.append(f"{label}: {verdict}")
    assert found == []


def _element(der: bytes, position: int) -> tuple[int, int, int]:
    """(start of the contents, end, header length) of the DER element starting at ``position``."""
    length = der[position + 1]
    head = 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[position + 2 : position + 2 + count], "big")
        head += count
    return position + head, position + head + length, head


def _heads(der: bytes, start: int, end: int) -> Iterator[int]:
    """Every tag and length byte of the DER elements between ``start`` and ``end``."""
    while start < end:
        contents, stop, head = _element(der, start)
        yield from range(start, start + head)
        if der[start] & 0x20:
            yield from _heads(der, contents, stop)
        start = stop


@pytest.mark.parametrize("folder", [KONVERA, CCC])
def test_certificate_mutants_are_refused_unless_outside_key_and_evidence(
    vector: Vector, folder: str
) -> None:
    """The whole certificate through the public path (parse, extract, appraise, bind to the
    mutated certificate's key): every DER head flipped, sampled bytes elsewhere."""
    recorded = Recording(vector, folder)
    der = recorded.certificate.der
    spki = der.index(recorded.certificate.spki_der)
    bound = [(spki, spki + len(recorded.certificate.spki_der))]
    carrier = recorded.certificate.extension(TCG_OID if folder == CCC else LEGACY_OID)
    assert carrier is not None
    carrier_at = der.index(carrier)
    bound.append((carrier_at, carrier_at + len(carrier)))
    quote = parse_tcg_evidence(carrier).quote if folder == CCC else carrier
    quote_at = carrier_at + carrier.index(quote)
    layout = Layout.of(quote)
    rng = random.Random(f"gramine-certificate-{folder}")
    positions = sorted(set(_heads(der, 0, len(der))) | set(rng.sample(range(len(der)), 300)))
    found = []
    for position in positions:
        label, data, _ = _flip(der, position, rng.randrange(8))

        def run(data: bytes = data) -> AttestationResult:
            certificate = PeerCertificate.from_der(data)
            return recorded.appraise(
                recorded.validator.evidence_from_certificate(certificate), certificate
            )

        verdict = recorded.verdict(run)
        if verdict == "refused":
            continue
        inside = any(start <= position < end for start, end in bound)
        unread = not inside
        if quote_at <= position < quote_at + len(quote):
            changed = data[quote_at : quote_at + len(quote)]
            unread = layout.unread(quote, changed, frozenset({position - quote_at})) is not None
        if verdict != "accepted" or not unread:
            found.append(f"{label}{' (key or evidence)' if inside else ''}: {verdict}")
    assert found == []


def test_the_listed_unread_certificate_bytes_change_nothing(vector: Vector) -> None:
    """The exemptions are real: the subject name, the self-signature and, beside a TCG DICE
    extension, the legacy quote can change and the result stays the same."""
    recorded = Recording(vector, CCC)
    der = recorded.certificate.der
    legacy = recorded.certificate.extension(LEGACY_OID)
    assert legacy is not None
    for position in (der.index(b"RATLS"), len(der) - 2, der.index(legacy) + 100):
        _label, data, _ = _flip(der, position, 0)
        certificate = PeerCertificate.from_der(data)
        result = recorded.appraise(
            recorded.validator.evidence_from_certificate(certificate), certificate
        )
        assert result.accepted, position
        assert workload_facts(result) == workload_facts(recorded.baseline), position

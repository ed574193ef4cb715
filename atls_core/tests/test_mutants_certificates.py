"""Mutants of real recorded certificates through the tolerant certificate reader.

The reader takes the key a binding is checked against and the extensions evidence comes from, so
it must never disagree with a strict X.509 parser about either: for every mutant (each tag and
length byte flipped in every way, sampled bytes elsewhere, cuts at element boundaries) that both
``cryptography`` and :class:`PeerCertificate` accept, the SubjectPublicKeyInfo and every extension
value must be the same.  The reader may accept more than ``cryptography`` (it is tolerant by
design: Gramine's certificates, serial number 0), but it may only ever fail with
:class:`MalformedEvidence`, and what it returns must be slices of the bytes it was given.
"""

from __future__ import annotations

import base64
import json
import random
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence

pytestmark = pytest.mark.vectors

Vectors = Callable[..., Path]
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


def _x5c(path: Path) -> bytes:
    return base64.b64decode(json.loads(path.read_text())["keys"][0]["x5c"][0])


RECORDED: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    "AMD ARK (RSA-PSS)": ("snp/amd-roots/milan/ark.pem", _pem),
    "AMD VCEK (serial 0)": ("snp/virtee-milan-v2-vcek/vcek.der", Path.read_bytes),
    "Gramine RA-TLS (explicit NULL)": (
        "gramine/konvera-gramine-ratls-cert-00606a-outofdate/tlscert.der",
        Path.read_bytes,
    ),
    "MAA signing certificate (SGX quote extension)": (
        "azure/azsdk-py-1.0.0-sgx-enclave-2021-07-01/"
        "jwks_recorded_for_sharedwus.wus.attest.azure.net.json",
        _x5c,
    ),
    "ITA Go client test signer": ("ita/neg-test-signed-goclient/go_test_jwks.json", _x5c),
}


def _heads(der: bytes, start: int, end: int) -> Iterator[int]:
    """Positions of every tag and length byte of the DER elements between ``start`` and ``end``."""
    while start < end:
        length, head = der[start + 1], 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[start + 2 : start + 2 + count], "big")
            head += count
        yield from range(start, start + head)
        if der[start] & 0x20:
            yield from _heads(der, start + head, start + head + length)
        start += head + length


def _mutants(der: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    heads = sorted(set(_heads(der, 0, len(der))))
    for position in heads:
        for bit in range(8):
            mutant = bytearray(der)
            mutant[position] ^= 1 << bit
            yield f"flip {position}.{bit}", bytes(mutant)
        for value in (0x00, 0x80, 0x81, 0x84, 0xFF):
            if der[position] != value:
                mutant = bytearray(der)
                mutant[position] = value
                yield f"set {position}={value:02x}", bytes(mutant)
        yield f"cut {position}", der[:position]
    for position in rng.sample(range(len(der)), min(len(der), 300)):
        mutant = bytearray(der)
        mutant[position] ^= 1 << rng.randrange(8)
        yield f"flip {position}", bytes(mutant)
    for extra in (b"\x00", b"\x30\x00", der):
        yield f"extend {len(extra)}", der + extra


def _strict(der: bytes) -> x509.Certificate | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # serial number 0: still read, for the comparison
            certificate = x509.load_der_x509_certificate(der)
            certificate.public_key()
            list(certificate.extensions)
    except (ValueError, UnsupportedAlgorithm):
        return None
    return certificate


def _disagreement(ours: PeerCertificate, strict: x509.Certificate) -> str | None:
    try:
        key = serialization.load_der_public_key(ours.spki_der).public_bytes(*SPKI)
    except (ValueError, UnsupportedAlgorithm):
        return "a key the strict parser read and ours did not"
    if key != strict.public_key().public_bytes(*SPKI):
        return "another key"
    theirs = {e.oid.dotted_string: e for e in strict.extensions}
    if set(theirs) != set(ours.extensions):
        return f"other extensions {sorted(set(theirs) ^ set(ours.extensions))}"
    for oid, extension in theirs.items():
        value = extension.value
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
        if raw != ours.extensions[oid].value or extension.critical != ours.extensions[oid].critical:
            return f"another value of {oid}"
    return None


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_reader_agrees_with_a_strict_parser_on_every_mutant_both_accept(
    vectors: Vectors, name: str
) -> None:
    path, load = RECORDED[name]
    der = load(vectors(path))
    original = PeerCertificate.from_der(der)
    found = []
    both = 0
    for label, mutant in _mutants(der, random.Random(name)):
        try:
            ours = PeerCertificate.from_der(mutant)
        except MalformedEvidence as error:
            if not error.check:
                found.append(f"{label}: refused without a check")
            continue
        except Exception as error:  # a bare exception is the finding
            found.append(f"{label}: crashed {type(error).__name__}: {error}")
            continue
        slices = [ours.spki_der, *(e.value for e in ours.extensions.values())]
        if ours.der != mutant or not all(part in mutant for part in slices):
            found.append(f"{label}: read bytes that are not the certificate's")
        strict = _strict(mutant)
        if strict is None:
            continue
        both += 1
        problem = _disagreement(ours, strict)
        if problem is not None:
            found.append(f"{label}: {problem}")
    assert found == []
    if _strict(der) is not None:  # cryptography cannot read Gramine's certificates at all
        assert _disagreement(original, _strict(der)) is None  # type: ignore[arg-type]
        assert both > 0

"""AMD's SEV-SNP certificates, read without ``cryptography``'s X.509 parser.

VCEK and VLEK certificates have serial number 0 (RFC 5280 wants it positive):
``cryptography`` loads them with a deprecation warning today and has said it
will refuse them.  :func:`parse_certificate` reads every certificate of the
chain with our own strict DER walker instead -- the same code path for ARK,
ASK/ASVK and VCEK/VLEK -- and hands ``cryptography`` only the
SubjectPublicKeyInfo and the signature to verify.  Nothing is relaxed: the
signature algorithm must be RSASSA-PSS with SHA-384, MGF1-SHA-384 and a
48-byte salt (what AMD's PKI uses throughout), the inner and outer algorithm
identifiers must agree, and the whole input must be one DER certificate.

Parsed certificates are cached by their DER bytes: a long-running client sees
the same few AMD certificates again and again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from atls_core.certificate import read_tlv
from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_snp import der, oids

__all__ = [
    "PSS_SHA384",
    "AmdCertificate",
    "SignedDer",
    "VekExtensions",
    "parse_certificate",
    "parse_pss_parameters",
    "split_certificates",
    "split_pem",
    "verify_pss",
]

RSASSA_PSS = "1.2.840.113549.1.1.10"
SHA384 = "2.16.840.1.101.3.4.2.2"
MGF1 = "1.2.840.113549.1.1.8"
COMMON_NAME = "2.5.4.3"
PSS_SALT = 48

PSS_SHA384 = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=PSS_SALT)
"""The only signature padding AMD's SEV-SNP PKI uses (certificates and CRLs)."""

_CHECK = "snp.certificate"
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_MAX_CERTIFICATES = 16


def _hash_algorithm(data: bytes, element: der.Tlv) -> str:
    """The OID of an AlgorithmIdentifier whose parameters are absent or NULL."""
    parts = der.children(data, element, check=_CHECK)
    if element[0] != der.SEQUENCE or not 1 <= len(parts) <= 2:
        raise MalformedEvidence("bad hash AlgorithmIdentifier", check=_CHECK)
    if len(parts) == 2 and (parts[1][0] != der.NULL or parts[1][3] != parts[1][2]):
        raise MalformedEvidence("hash parameters must be absent or NULL", check=_CHECK)
    return der.oid(data, parts[0], check=_CHECK)


def parse_pss_parameters(algorithm: bytes) -> None:
    """Refuse any AlgorithmIdentifier but RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48."""
    top = der.one(algorithm, check=_CHECK, tag=der.SEQUENCE)
    parts = der.children(algorithm, top, check=_CHECK)
    if len(parts) != 2 or der.oid(algorithm, parts[0], check=_CHECK) != RSASSA_PSS:
        raise UntrustedChain(
            "AMD certificates are signed with RSASSA-PSS; this one is not",
            check="snp.chain.algorithm",
        )
    if parts[1][0] != der.SEQUENCE:
        raise MalformedEvidence("bad RSASSA-PSS parameters", check=_CHECK)
    found: dict[int, der.Tlv] = {}
    for item in der.children(algorithm, parts[1], check=_CHECK):
        if item[0] not in (der.CONTEXT_0, der.CONTEXT_1, der.CONTEXT_2, der.CONTEXT_3):
            raise MalformedEvidence("bad RSASSA-PSS parameters", check=_CHECK)
        inner = der.children(algorithm, item, check=_CHECK)
        if len(inner) != 1 or item[0] in found:
            raise MalformedEvidence("bad RSASSA-PSS parameters", check=_CHECK)
        found[item[0]] = inner[0]
    wanted = "RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48"
    ok = der.CONTEXT_0 in found and der.CONTEXT_1 in found and der.CONTEXT_2 in found
    if ok:
        ok = _hash_algorithm(algorithm, found[der.CONTEXT_0]) == SHA384
        mgf = der.children(algorithm, found[der.CONTEXT_1], check=_CHECK)
        ok = ok and len(mgf) == 2 and der.oid(algorithm, mgf[0], check=_CHECK) == MGF1
        ok = ok and _hash_algorithm(algorithm, mgf[1]) == SHA384
        ok = ok and der.integer(algorithm, found[der.CONTEXT_2], check=_CHECK) == PSS_SALT
        if der.CONTEXT_3 in found:
            ok = ok and der.integer(algorithm, found[der.CONTEXT_3], check=_CHECK) == 1
    if not ok:
        raise UntrustedChain(
            "unexpected RSASSA-PSS parameters", check="snp.chain.algorithm", expected=wanted
        )


def verify_pss(public_key: Any, signature: bytes, message: bytes) -> bool:
    """RSASSA-PSS/SHA-384 with an RSA key; False for any other key or a bad signature."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(signature, message, PSS_SHA384, hashes.SHA384())
    except InvalidSignature:
        return False
    return True


def _common_name(data: bytes, name: der.Tlv) -> str:
    found = ""
    for rdn in der.children(data, name, check=_CHECK):
        if rdn[0] != der.SET:
            raise MalformedEvidence("bad distinguished name", check=_CHECK)
        for attribute in der.children(data, rdn, check=_CHECK):
            parts = der.children(data, attribute, check=_CHECK)
            if attribute[0] != der.SEQUENCE or len(parts) != 2:
                raise MalformedEvidence("bad distinguished name", check=_CHECK)
            if der.oid(data, parts[0], check=_CHECK) == COMMON_NAME:
                found = der.text(data, parts[1], check=_CHECK)
    return found


@attrs.frozen
class VekExtensions:
    """What AMD writes into a VCEK or VLEK about the key."""

    product_name: str | None
    spls: Mapping[str, int]
    """``bootloader``, ``tee``, ``snp``, ``microcode`` and (Turin) ``fmc``, as present."""
    hw_id: bytes | None
    csp_id: str | None


_SPL_OIDS = {
    oids.BL_SPL: "bootloader",
    oids.TEE_SPL: "tee",
    oids.SNP_SPL: "snp",
    oids.UCODE_SPL: "microcode",
    oids.FMC_SPL: "fmc",
}


@attrs.frozen(kw_only=True)
class SignedDer:
    """What certificates and CRLs share: the encoding, the signed part, the signer's name."""

    der: bytes = attrs.field(repr=False)
    digest: bytes = attrs.field(repr=lambda d: d.hex()[:16])
    """SHA-256 of the DER encoding: how roots are pinned and links cached."""
    tbs: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    issuer: bytes = attrs.field(repr=False)
    """The issuer's distinguished name, DER."""


@attrs.frozen(kw_only=True)
class AmdCertificate(SignedDer):
    """One certificate of an SEV-SNP chain, with exactly the fields the chain needs."""

    serial: int
    subject: bytes = attrs.field(repr=False)
    issuer_cn: str
    subject_cn: str
    not_before: dt.datetime
    not_after: dt.datetime
    spki: bytes = attrs.field(repr=False)
    extensions: Mapping[str, bytes] = attrs.field(repr=False)

    @functools.cached_property
    def public_key(self) -> Any:
        try:
            return serialization.load_der_public_key(self.spki)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise MalformedEvidence(
                f"the public key of {self.subject_cn or 'a certificate'} cannot be read",
                check=_CHECK,
            ) from None

    @property
    def is_p384(self) -> bool:
        key = self.public_key
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after

    def signed_by(self, issuer: AmdCertificate) -> bool:
        """The issuer's name matches and its key made this certificate's PSS signature."""
        return self.issuer == issuer.subject and verify_pss(
            issuer.public_key, self.signature, self.tbs
        )

    @functools.cached_property
    def vek(self) -> VekExtensions:
        """AMD's extensions (meaningful on VCEKs and VLEKs)."""
        spls: dict[str, int] = {}
        for oid, name in _SPL_OIDS.items():
            value = self.extensions.get(oid)
            if value is not None:
                spls[name] = _ext_integer(value, name)
        product = self.extensions.get(oids.PRODUCT_NAME)
        csp = self.extensions.get(oids.CSP_ID)
        return VekExtensions(
            product_name=None if product is None else _ext_text(product, "productName"),
            spls=MappingProxyType(spls),
            hw_id=self.extensions.get(oids.HW_ID),
            csp_id=None if csp is None else _ext_text(csp, "cspId"),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "subject": self.subject_cn,
            "serial": self.serial,
            "not_after": self.not_after.isoformat(),
            "sha256": self.digest.hex(),
        }


def _ext_integer(value: bytes, name: str) -> int:
    element = der.one(value, check=f"snp.vek.{name}", tag=der.INTEGER)
    return der.integer(value, element, check=f"snp.vek.{name}")


def _ext_text(value: bytes, name: str) -> str:
    element = der.one(value, check=f"snp.vek.{name}")
    return der.text(value, element, check=f"snp.vek.{name}")


def _extensions(data: bytes, block: der.Tlv) -> dict[str, bytes]:
    outer = der.children(data, block, check=_CHECK)
    if len(outer) != 1 or outer[0][0] != der.SEQUENCE:
        raise MalformedEvidence("bad extensions block", check=_CHECK)
    found: dict[str, bytes] = {}
    for extension in der.children(data, outer[0], check=_CHECK):
        parts = der.children(data, extension, check=_CHECK)
        if extension[0] != der.SEQUENCE or len(parts) not in (2, 3):
            raise MalformedEvidence("bad extension", check=_CHECK)
        oid = der.oid(data, parts[0], check=_CHECK)
        if len(parts) == 3 and parts[1][0] != der.BOOLEAN:
            raise MalformedEvidence("bad extension", check=_CHECK)
        if parts[-1][0] != der.OCTET_STRING or oid in found:
            raise MalformedEvidence("bad or duplicate extension", check=_CHECK, actual=oid)
        found[oid] = der.content(data, parts[-1])
    return found


@attrs.frozen
class Signed:
    """A signed DER structure's parts: certificates and CRLs are both built this way."""

    tbs: bytes
    """The signed bytes (the whole to-be-signed element)."""
    algorithm: bytes
    """The signature algorithm element (RSASSA-PSS, its parameters checked)."""
    signature: bytes
    fields: list[der.Tlv]
    """The to-be-signed element's children."""


def split_signed(data: bytes, *, what: str, check: str) -> Signed:
    """``SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }`` taken apart."""
    top = der.one(data, check=check, tag=der.SEQUENCE)
    parts = der.children(data, top, check=check)
    if len(parts) != 3 or parts[0][0] != der.SEQUENCE or parts[2][0] != der.BIT_STRING:
        raise MalformedEvidence(f"not {what}", check=check)
    algorithm = der.whole(data, parts[1])
    parse_pss_parameters(algorithm)
    bits = der.content(data, parts[2])
    if not bits or bits[0] != 0:
        raise MalformedEvidence("bad signature BIT STRING", check=check)
    return Signed(
        tbs=der.whole(data, parts[0]),
        algorithm=algorithm,
        signature=bits[1:],
        fields=der.children(data, parts[0], check=check),
    )


@functools.lru_cache(maxsize=256)
def parse_certificate(data: bytes) -> AmdCertificate:
    """Read one DER certificate (serial 0 allowed; nothing else relaxed)."""
    data = bytes(data)
    signed = split_signed(data, what="an X.509 certificate", check=_CHECK)
    outer_algorithm = signed.algorithm
    fields = signed.fields
    if not fields or fields[0][0] != der.CONTEXT_0:
        raise MalformedEvidence("not an X.509 v3 certificate", check=_CHECK)
    fields = fields[1:]
    if len(fields) < 6 or fields[3][0] != der.SEQUENCE:
        raise MalformedEvidence("tbsCertificate is too short", check=_CHECK)
    serial, inner_algorithm, issuer, validity, subject, spki = fields[:6]
    if der.whole(data, inner_algorithm) != outer_algorithm:
        raise MalformedEvidence("inner and outer signature algorithms differ", check=_CHECK)
    times = der.children(data, validity, check=_CHECK)
    if len(times) != 2:
        raise MalformedEvidence("bad validity", check=_CHECK)
    extensions: dict[str, bytes] = {}
    for field in fields[6:]:
        if field[0] == der.CONTEXT_3:
            extensions = _extensions(data, field)
    return AmdCertificate(
        der=data,
        digest=hashlib.sha256(data).digest(),
        tbs=signed.tbs,
        signature=signed.signature,
        serial=der.integer(data, serial, check=_CHECK),
        issuer=der.whole(data, issuer),
        subject=der.whole(data, subject),
        issuer_cn=_common_name(data, issuer),
        subject_cn=_common_name(data, subject),
        not_before=der.time(data, times[0], check=_CHECK),
        not_after=der.time(data, times[1], check=_CHECK),
        spki=der.whole(data, spki),
        extensions=MappingProxyType(extensions),
    )


def split_pem(data: bytes, *, label: bytes, check: str) -> list[bytes]:
    """The decoded ``-----BEGIN <label>-----`` blocks of ``data`` (other blocks are skipped)."""
    import base64
    import binascii

    found: list[bytes] = []
    for match in _PEM.finditer(data):
        if match.group(1) != label:
            continue
        try:
            found.append(base64.b64decode(b"".join(match.group(2).split()), validate=True))
        except (binascii.Error, ValueError):
            raise MalformedEvidence("a PEM block is not valid base64", check=check) from None
    return found


def split_certificates(data: bytes, *, check: str = "snp.certificates") -> list[bytes]:
    """DER certificates from PEM text, concatenated DER, or both mixed.

    dstack carries SEV-SNP certificates as a list of blobs whose encoding it
    does not fix; configuration files are PEM or DER.  Anything that is
    neither PEM nor a DER SEQUENCE is refused rather than skipped.
    """
    found: list[bytes] = []
    position = 0
    while position < len(data):
        if data[position : position + 1].isspace():
            position += 1
            continue
        if data[position] != der.SEQUENCE:
            # PEM, possibly after a line of text (OpenSSL's "subject=", comments).
            start = data.find(b"-----BEGIN", position)
            between = data[position : len(data) if start < 0 else start]
            if not between.isascii() or any(c < 0x20 and c not in b"\t\r\n" for c in between):
                raise MalformedEvidence(
                    "certificates must be PEM or DER", check=check, actual=between[:8]
                )
            if start < 0:
                break
            match = _PEM.match(data, start)
            if match is None:
                raise MalformedEvidence("unterminated PEM block", check=check)
            found.extend(split_pem(match.group(0), label=b"CERTIFICATE", check=check))
            position = match.end()
        else:
            try:
                element = read_tlv(data, position)
            except MalformedEvidence:
                raise MalformedEvidence("truncated DER certificate", check=check) from None
            found.append(data[position : element[3]])
            position = element[3]
        if len(found) > _MAX_CERTIFICATES:
            raise MalformedEvidence(
                "too many certificates", check=check, expected=f"<= {_MAX_CERTIFICATES}"
            )
    return found

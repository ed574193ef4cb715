"""A synthetic, AMD-shaped SEV-SNP PKI for tests: ARK -> ASK/ASVK -> VCEK/VLEK, and CRLs.

Built the way AMD's are: RSA roots and intermediates signing with RSASSA-PSS /
SHA-384 / MGF1-SHA-384 / salt 48, AMD's subject names, P-384 endorsement keys
in certificates with **serial number 0** and AMD's extensions (TCB SPLs, hwID,
productName, cspId), written with our own DER writer because ``cryptography``
will not build a certificate with serial 0.  Keys are RSA-2048 rather than
AMD's 4096 to keep tests fast (nothing checks the size: the root is pinned).

Nothing here is AMD's: the names look like AMD's, the keys are ours.  A
validator trusts this PKI only when configuration names its ARK explicitly
(``test_ark``, a tests-only setting).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from atls_snp import der, oids
from atls_snp.certs import PSS_SHA384
from atls_snp.roots import Product, SigningKey

__all__ = [
    "NOT_AFTER",
    "NOT_BEFORE",
    "Endorsement",
    "SnpTestPki",
    "pss_algorithm",
    "shared_pki",
]

NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2049, 1, 1, tzinfo=dt.UTC)
VEK_LIFETIME = dt.timedelta(days=7 * 365)

_SHA384_ID = der.tlv(
    der.SEQUENCE, der.encode_oid("2.16.840.1.101.3.4.2.2") + der.tlv(der.NULL, b"")
)


def pss_algorithm() -> bytes:
    """AlgorithmIdentifier RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48 / trailer 1, as AMD's."""
    mgf1 = der.tlv(der.SEQUENCE, der.encode_oid("1.2.840.113549.1.1.8") + _SHA384_ID)
    params = der.tlv(
        der.SEQUENCE,
        der.tlv(der.CONTEXT_0, _SHA384_ID)
        + der.tlv(der.CONTEXT_1, mgf1)
        + der.tlv(der.CONTEXT_2, der.encode_integer(48))
        + der.tlv(der.CONTEXT_3, der.encode_integer(1)),
    )
    return der.tlv(der.SEQUENCE, der.encode_oid("1.2.840.113549.1.1.10") + params)


def amd_name(common_name: str) -> bytes:
    """AMD's distinguished names: OU, C, L, ST, O, CN, in that order."""
    attributes = (
        ("2.5.4.11", der.UTF8_STRING, "Engineering"),
        ("2.5.4.6", der.PRINTABLE_STRING, "US"),
        ("2.5.4.7", der.UTF8_STRING, "Santa Clara"),
        ("2.5.4.8", der.UTF8_STRING, "CA"),
        ("2.5.4.10", der.UTF8_STRING, "Advanced Micro Devices"),
        ("2.5.4.3", der.UTF8_STRING, common_name),
    )
    return der.tlv(
        der.SEQUENCE,
        b"".join(
            der.tlv(der.SET, der.tlv(der.SEQUENCE, der.encode_oid(oid) + der.tlv(tag, v.encode())))
            for oid, tag, v in attributes
        ),
    )


def _extension(oid: str, value: bytes, *, critical: bool = False) -> bytes:
    flag = der.tlv(der.BOOLEAN, b"\xff") if critical else b""
    return der.tlv(der.SEQUENCE, der.encode_oid(oid) + flag + der.tlv(der.OCTET_STRING, value))


def _ca_extensions(path_length: int | None) -> list[bytes]:
    constraints = der.tlv(der.BOOLEAN, b"\xff")
    if path_length is not None:
        constraints += der.encode_integer(path_length)
    key_usage = der.tlv(der.BIT_STRING, b"\x01\x06")  # keyCertSign, cRLSign
    return [
        _extension("2.5.29.19", der.tlv(der.SEQUENCE, constraints), critical=True),
        _extension("2.5.29.15", key_usage, critical=True),
    ]


def _spki(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_certificate(
    *,
    signer: rsa.RSAPrivateKey,
    serial: int,
    issuer: bytes,
    subject: bytes,
    spki: bytes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    extensions: Sequence[bytes],
) -> bytes:
    """An X.509 v3 certificate signed with RSASSA-PSS/SHA-384 (serial 0 allowed)."""
    algorithm = pss_algorithm()
    validity = der.tlv(der.SEQUENCE, der.encode_time(not_before) + der.encode_time(not_after))
    fields = (
        der.tlv(der.CONTEXT_0, der.encode_integer(2))
        + der.encode_integer(serial)
        + algorithm
        + issuer
        + validity
        + subject
        + spki
    )
    if extensions:
        fields += der.tlv(der.CONTEXT_3, der.tlv(der.SEQUENCE, b"".join(extensions)))
    tbs = der.tlv(der.SEQUENCE, fields)
    signature = signer.sign(tbs, PSS_SHA384, hashes.SHA384())
    return der.tlv(der.SEQUENCE, tbs + algorithm + der.tlv(der.BIT_STRING, b"\0" + signature))


def tcb_extensions(product: Product, tcb: Mapping[str, int]) -> list[bytes]:
    """AMD's SPL extensions for a TCB (fmcSPL from Turin on)."""
    found = [
        _extension(oids.BL_SPL, der.encode_integer(tcb["bootloader"])),
        _extension(oids.TEE_SPL, der.encode_integer(tcb["tee"])),
        _extension(oids.SNP_SPL, der.encode_integer(tcb["snp"])),
        _extension(oids.UCODE_SPL, der.encode_integer(tcb["microcode"])),
    ]
    if product.turin_layout:
        found.append(_extension(oids.FMC_SPL, der.encode_integer(tcb.get("fmc", 0))))
    return found


@attrs.frozen
class Endorsement:
    """A VCEK or VLEK: the P-384 key a synthetic chip signs reports with, and its certificate."""

    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    certificate: bytes = attrs.field(repr=False)
    signing_key: SigningKey
    tcb: Mapping[str, int]
    chip_id: bytes = attrs.field(repr=lambda b: b.hex()[:16])


@attrs.frozen
class SnpTestPki:
    """One product's synthetic ARK, ASK and ASVK."""

    product: Product
    ark_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    ask_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    asvk_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    ark: bytes = attrs.field(repr=False)
    ask: bytes = attrs.field(repr=False)
    asvk: bytes = attrs.field(repr=False)

    @classmethod
    def generate(cls, product: Product = Product.MILAN, *, key_size: int = 2048) -> SnpTestPki:
        ark_key, ask_key, asvk_key = (
            rsa.generate_private_key(public_exponent=65537, key_size=key_size) for _ in range(3)
        )
        ark_name = amd_name(product.ark_name)

        def intermediate(key: rsa.RSAPrivateKey, name: str, serial: int) -> bytes:
            return sign_certificate(
                signer=ark_key,
                serial=serial,
                issuer=ark_name,
                subject=amd_name(name),
                spki=_spki(key.public_key()),
                not_before=NOT_BEFORE,
                not_after=NOT_AFTER,
                extensions=_ca_extensions(0),
            )

        ark = sign_certificate(
            signer=ark_key,
            serial=0x10000,
            issuer=ark_name,
            subject=ark_name,
            spki=_spki(ark_key.public_key()),
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
            extensions=_ca_extensions(None),
        )
        return cls(
            product=product,
            ark_key=ark_key,
            ask_key=ask_key,
            asvk_key=asvk_key,
            ark=ark,
            ask=intermediate(ask_key, product.ask_name, 0x10001),
            asvk=intermediate(asvk_key, product.asvk_name, 0x10101),
        )

    @property
    def ark_sha256(self) -> bytes:
        return hashlib.sha256(self.ark).digest()

    def ark_pem(self) -> bytes:
        return _pem(self.ark)

    def vcek(
        self,
        *,
        chip_id: bytes,
        tcb: Mapping[str, int],
        not_before: dt.datetime = NOT_BEFORE,
        not_after: dt.datetime | None = None,
        product_name: str | None = None,
        hw_id: bytes | None = None,
        curve: ec.EllipticCurve | None = None,
    ) -> Endorsement:
        """A chip's VCEK at ``tcb``; the hwID is the chip ID (its first 8 bytes on Turin).

        ``curve`` replaces AMD's P-384, for a VCEK that must be refused."""
        if hw_id is None:
            hw_id = chip_id[:8] if self.product.turin_layout else chip_id
        name = product_name or (
            f"{self.product.value}-B0" if self.product is Product.MILAN else self.product.value
        )
        identity = _extension(oids.HW_ID, hw_id)
        window = (not_before, not_after or not_before + VEK_LIFETIME)
        return self._endorsement(SigningKey.VCEK, name, tcb, identity, window, chip_id, curve)

    def vlek(
        self,
        *,
        tcb: Mapping[str, int],
        not_before: dt.datetime = NOT_BEFORE,
        not_after: dt.datetime | None = None,
        csp_id: str = "cc-test.example",
    ) -> Endorsement:
        """A VLEK (one year, no hwID, a cloud provider's cspId); its reports carry CHIP_ID 0."""
        identity = _extension(oids.CSP_ID, der.tlv(der.IA5_STRING, csp_id.encode()))
        window = (not_before, not_after or not_before + dt.timedelta(days=365))
        return self._endorsement(
            SigningKey.VLEK, self.product.value, tcb, identity, window, bytes(64)
        )

    def _endorsement(
        self,
        signing: SigningKey,
        product_name: str,
        tcb: Mapping[str, int],
        identity: bytes,
        window: tuple[dt.datetime, dt.datetime],
        chip_id: bytes,
        curve: ec.EllipticCurve | None = None,
    ) -> Endorsement:
        """A VCEK or VLEK, signed by the ASK or ASVK: AMD's extensions, then ``identity``."""
        key = ec.generate_private_key(curve or ec.SECP384R1())
        extensions = [
            _extension(oids.STRUCT_VERSION, der.encode_integer(1)),
            _extension(oids.PRODUCT_NAME, der.tlv(der.IA5_STRING, product_name.encode())),
            *tcb_extensions(self.product, tcb),
            identity,
        ]
        certificate = sign_certificate(
            signer=self.ask_key if signing is SigningKey.VCEK else self.asvk_key,
            serial=0,
            issuer=amd_name(signing.intermediate_name(self.product)),
            subject=amd_name(signing.certificate_name),
            spki=_spki(key.public_key()),
            not_before=window[0],
            not_after=window[1],
            extensions=extensions,
        )
        return Endorsement(key, certificate, signing, dict(tcb), chip_id)

    def cert_chain_pem(self, signing: SigningKey = SigningKey.VCEK) -> bytes:
        """What the key distribution service's ``cert_chain`` answers: intermediate, then ARK."""
        intermediate = self.ask if signing is SigningKey.VCEK else self.asvk
        return _pem(intermediate) + _pem(self.ark)

    def crl(
        self,
        *,
        revoked: Mapping[int, dt.datetime] | None = None,
        this_update: dt.datetime = NOT_BEFORE,
        next_update: dt.datetime | None = NOT_AFTER,
        signer: rsa.RSAPrivateKey | None = None,
    ) -> bytes:
        """The ARK's CRL (DER), listing ``revoked`` serials; ``signer`` forges it."""
        algorithm = pss_algorithm()
        fields = der.encode_integer(1) + algorithm + amd_name(self.product.ark_name)
        fields += der.encode_time(this_update)
        if next_update is not None:
            fields += der.encode_time(next_update)
        if revoked:
            fields += der.tlv(
                der.SEQUENCE,
                b"".join(
                    der.tlv(der.SEQUENCE, der.encode_integer(serial) + der.encode_time(when))
                    for serial, when in revoked.items()
                ),
            )
        tbs = der.tlv(der.SEQUENCE, fields)
        signature = (signer or self.ark_key).sign(tbs, PSS_SHA384, hashes.SHA384())
        return der.tlv(der.SEQUENCE, tbs + algorithm + der.tlv(der.BIT_STRING, b"\0" + signature))


def _pem(data: bytes) -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


@functools.cache
def shared_pki(product: Product = Product.MILAN) -> SnpTestPki:
    """One synthetic PKI per product per process (RSA key generation is the slow part)."""
    return SnpTestPki.generate(product)

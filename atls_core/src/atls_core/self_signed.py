"""Self-signed certificates carrying evidence (or anything else) in raw extensions.

Attested TLS certificates are ordinary X.509 certificates whose evidence
travels in an extension the TLS stack does not know: issuers that hand a
token to the client in one (Azure ACI) and tests that need such certificates,
or hostile variants of them, without a TEE build them here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

__all__ = ["private_key_pem", "self_signed_certificate"]


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM: the key file a TLS server loads with its certificate."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def self_signed_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    extensions: Iterable[tuple[str, bytes]] = (),
    *,
    common_name: str = "atls test",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
    critical: Collection[str] = (),
    dns_names: Iterable[str] = (),
) -> bytes:
    """DER of a certificate ``key`` signs for itself, carrying raw extension values.

    ``extensions`` are (dotted OID, value) pairs, critical when their OID is in
    ``critical``; ``dns_names`` make a subjectAltName.  Valid from an hour ago
    for a day unless the window is given.
    """
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=1))
    )
    names = [x509.DNSName(dns_name) for dns_name in dns_names]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value),
            critical=oid in critical,
        )
    edwards = isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey))
    certificate = builder.sign(key, None if edwards else hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.DER)

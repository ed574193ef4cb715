"""A throw-away token-signing PKI shaped like Intel Trust Authority's.

root CA -> signing CA -> token-signing certificates (one per algorithm), with
CRL distribution points (signing CA and leaves) and CRLs signed by their
issuers.  TEST ONLY: the keys live in this process.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from atls_core.testing.certs import CA_USES, key_usage

__all__ = ["StandInPki", "TokenSigner"]

_DAY = dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "atls stand-in (TEST ONLY)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _b64url_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@attrs.frozen(kw_only=True)
class TokenSigner:
    alg: str
    kid: str
    key: rsa.RSAPrivateKey = attrs.field(repr=False)
    certificate: x509.Certificate = attrs.field(repr=False)


@attrs.define(kw_only=True)
class StandInPki:
    root_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    root: x509.Certificate = attrs.field(repr=False)
    ca_key: rsa.RSAPrivateKey = attrs.field(repr=False)
    ca: x509.Certificate = attrs.field(repr=False)
    signers: dict[str, TokenSigner] = attrs.field(repr=False)
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def generate(
        cls,
        *,
        crl_base_url: str | None = None,
        algorithms: Iterable[str] = ("PS384", "RS256"),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        root_name: str = "Stand-in Trust Authority Root CA",
        leaf_bits: int = 2048,
    ) -> StandInPki:
        """``crl_base_url``: where ``/crl/root.crl`` and ``/crl/signing-ca.crl`` are served."""
        start = not_before or dt.datetime.now(dt.UTC) - _DAY
        end = not_after or start + 365 * _DAY
        root_key = _key()
        root = _builder(
            _name(root_name), _name(root_name), root_key, (start, end + 365 * _DAY), ca_path=1
        ).sign(root_key, hashes.SHA384())
        ca_key = _key()
        ca_name = _name("Stand-in Trust Authority Signing CA")
        ca_builder = _builder(ca_name, root.subject, ca_key, (start, end + 180 * _DAY), ca_path=0)
        if crl_base_url:
            ca_builder = ca_builder.add_extension(_cdp(crl_base_url + "/crl/root.crl"), False)
        ca = ca_builder.sign(root_key, hashes.SHA384())
        signers = {}
        for alg in algorithms:
            key = _key(leaf_bits)
            name = _name(f"Stand-in Trust Authority Token Signing ({alg})")
            builder = _builder(name, ca.subject, key, (start, end), ca_path=None)
            if crl_base_url:
                builder = builder.add_extension(_cdp(crl_base_url + "/crl/signing-ca.crl"), False)
            cert = builder.sign(ca_key, hashes.SHA384())
            kid = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
            signers[alg] = TokenSigner(alg=alg, kid=kid, key=key, certificate=cert)
        return cls(
            root_key=root_key,
            root=root,
            ca_key=ca_key,
            ca=ca,
            signers=signers,
            not_before=start,
            not_after=end,
        )

    # -- published forms -----------------------------------------------------

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def jwk(self, alg: str, *, include_root: bool = True) -> dict[str, object]:
        signer = self.signers[alg]
        numbers = signer.key.public_key().public_numbers()
        chain = [signer.certificate, self.ca] + ([self.root] if include_root else [])
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": alg,
            "kid": signer.kid,
            "n": _b64url_int(numbers.n),
            "e": _b64url_int(numbers.e),
            "x5c": [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain
            ],
        }

    def jwks(self) -> dict[str, object]:
        return {"keys": [self.jwk(alg) for alg in self.signers]}

    def issue(
        self,
        common_name: str,
        *,
        issuer: tuple[rsa.RSAPrivateKey, x509.Certificate],
        ca_path: int | None = None,
    ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """A new key and certificate signed by ``issuer`` (key, certificate): a CA of path
        length ``ca_path``, or a token-signing leaf when it is ``None``.  For the chains a
        real ITA never publishes (a leaf under a leaf, one CA too many), which tests refuse."""
        key = _key()
        window = (self.not_before, self.not_after)
        builder = _builder(_name(common_name), issuer[1].subject, key, window, ca_path=ca_path)
        return key, builder.sign(issuer[0], hashes.SHA384())

    def crl(
        self,
        which: str,
        *,
        revoked: Iterable[int] = (),
        now: dt.datetime | None = None,
        lifetime: dt.timedelta = 7 * _DAY,
        key: rsa.RSAPrivateKey | None = None,
    ) -> bytes:
        """DER CRL of ``root`` (revoking signing CAs) or ``signing-ca`` (revoking leaves).

        Its nextUpdate is ``now + lifetime``; ``key`` signs it instead of its issuer
        (a forged CRL: right issuer name, wrong signature).
        """
        issuer_key, issuer = (
            (self.root_key, self.root) if which == "root" else (self.ca_key, self.ca)
        )
        when = now or dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(when - dt.timedelta(hours=1))
            .next_update(when + lifetime)
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when - dt.timedelta(hours=1))
                .build()
            )
        signed = builder.sign(key or issuer_key, hashes.SHA384())
        return signed.public_bytes(serialization.Encoding.DER)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    window: tuple[dt.datetime, dt.datetime],
    *,
    ca_path: int | None,
) -> x509.CertificateBuilder:
    """A certificate of the stand-in chain: a CA (``ca_path`` is its path length) or a
    token-signing leaf (``None``)."""
    ca = ca_path is not None
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=ca_path), critical=True)
        .add_extension(key_usage(*CA_USES) if ca else key_usage("digital_signature"), critical=True)
    )


def _cdp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )

"""Is this JWK an Intel Trust Authority signing key?  Its ``x5c`` must say so.

A key from the configured JWKS is used only if its ``x5c`` chain leads, by
signatures checked here, to a root the configuration names (atls-ita ships no
root; see the README), the chain's certificates are valid at the appraisal
time, and the JWK's RSA numbers are the leaf certificate's.  Nothing in the
chain is trusted because of its name: Intel's own client picks the root out of
the token's chain by a CN substring; here the anchor is compared byte for byte
or must have signed the last certificate of the chain.

Optional CRL checking (:class:`CrlCache`) fetches each CA's CRL from the URL in
the certificate, within one deadline (:func:`atls_core.fetch.fetch`, no
redirects), and keeps it until its ``nextUpdate``.  Concurrent misses for one
URL share a fetch and no lock is held while it runs.

Why the chain is walked here and not by ``cryptography.x509.verification`` (which
the core uses for Web PKI, ``atls_core.tls``): tried on the Intel development chain
that Intel's Go client ships (recorded evidence ``ita/neg-test-signed-goclient``)
and on the stand-in's, the library's client policy refuses both (no
subjectAltName in the signing certificate; no authorityKeyIdentifier in the
stand-in's) and accepts both once the leaf policy is ``ExtensionPolicy.permit_all()``.
It is still not used: it reports one ``VerificationError`` text, whereas each
refusal here names its rule (``ita.x5c.ca``, ``ita.x5c.path_length``, ...) and an
expired certificate is ``StaleEvidence``, not an untrusted chain; its CA rules are
the Web PKI's, and no production ITA chain is recorded to show they pass; and the
leaf rules and the CRLs would stay here anyway.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from atls_core.errors import (
    CollateralUnavailable,
    ConfigurationError,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.fetch import SingleFlight, fetch
from atls_core.jose import jwk_public_key
from atls_core.rollback import NewestSeen

__all__ = [
    "MAX_CHAIN",
    "MIN_RSA_BITS",
    "ChainTrust",
    "CrlCache",
    "VerifiedChain",
    "check_jwk_matches",
    "load_roots",
    "parse_x5c",
]

MAX_CHAIN = 10
"""Longest ``x5c`` accepted (Intel's client uses the same bound)."""
MIN_RSA_BITS = 2048
_MAX_CRL_BYTES = 4 << 20
_MAX_CRLS = 64
"""CRLs kept (one per CA of the configured chains: a handful)."""
_Extension = TypeVar("_Extension", bound=x509.ExtensionType)
_DER = Encoding.DER


def load_roots(
    path: str | Path, *, where: str = "settings.root_ca"
) -> tuple[x509.Certificate, ...]:
    """Read trust anchors from a PEM (one or more certificates) or DER file."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{where}: cannot read {file}: {exc.strerror}", check="config.settings"
        ) from None
    try:
        if b"-----BEGIN" in data:
            roots = tuple(x509.load_pem_x509_certificates(data))
        else:
            roots = (x509.load_der_x509_certificate(data),)
    except ValueError:
        raise ConfigurationError(
            f"{where}: {file} is not a PEM or DER certificate", check="config.settings"
        ) from None
    if not roots:
        raise ConfigurationError(f"{where}: {file} holds no certificate", check="config.settings")
    return roots


def _extension(cert: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _path_length(cert: x509.Certificate) -> int | None:
    constraints = _extension(cert, x509.BasicConstraints)
    return None if constraints is None else constraints.path_length


def _may_sign_certificates(cert: x509.Certificate) -> bool:
    """No KeyUsage extension: any use is allowed."""
    usage = _extension(cert, x509.KeyUsage)
    return usage is None or usage.key_cert_sign


def _may_sign_data(cert: x509.Certificate) -> bool:
    usage = _extension(cert, x509.KeyUsage)
    return usage is None or usage.digital_signature


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_validity(cert: x509.Certificate, now: dt.datetime, role: str) -> None:
    if now < cert.not_valid_before_utc:
        raise StaleEvidence(
            f"the {role} certificate is not valid yet",
            check="ita.x5c.validity",
            expected=f"after {cert.not_valid_before_utc.isoformat()}",
            actual=now.isoformat(),
        )
    if now > cert.not_valid_after_utc:
        raise StaleEvidence(
            f"the {role} certificate has expired",
            check="ita.x5c.validity",
            expected=f"before {cert.not_valid_after_utc.isoformat()}",
            actual=now.isoformat(),
        )


def parse_x5c(jwk: Mapping[str, Any]) -> list[x509.Certificate]:
    """The JWK's ``x5c`` (standard base64 DER, leaf first) as certificates."""
    chain = jwk.get("x5c")
    if not isinstance(chain, list) or not chain:
        raise UntrustedChain(
            "the signing key carries no x5c certificate chain",
            check="ita.x5c",
            actual=jwk.get("kid"),
        )
    if len(chain) > MAX_CHAIN:
        raise UntrustedChain(
            "the x5c chain is too long",
            check="ita.x5c",
            expected=f"<= {MAX_CHAIN}",
            actual=len(chain),
        )
    certs = []
    for index, item in enumerate(chain):
        try:
            if not isinstance(item, str):
                raise TypeError
            certs.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
        except (TypeError, ValueError, binascii.Error):
            raise UntrustedChain(
                f"x5c[{index}] is not a base64 DER certificate", check="ita.x5c"
            ) from None
    return certs


class CrlCache:
    """CRLs by URL, each fetched within ``timeout`` seconds, kept until their ``nextUpdate``."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._crls: dict[str, x509.CertificateRevocationList] = {}
        """Only CRLs whose signature was checked, oldest first."""
        self._newest: NewestSeen[str, dt.datetime] = NewestSeen(
            what="CRL", check="ita.crl.rollback", max_keys=_MAX_CRLS
        )
        """The latest ``lastUpdate`` of a checked CRL per URL: an older one is a rollback."""
        self._lock = threading.Lock()  # guards _crls and fetches; never held during a fetch
        self._flights: SingleFlight[str, x509.CertificateRevocationList] = SingleFlight()
        self.fetches = 0

    def check(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> dt.datetime:
        """Raise unless ``issuer``'s CRL (from ``cert``'s distribution point) clears ``cert``.

        Returns the CRL's ``nextUpdate``: the verdict holds until then.
        """
        urls = self._urls(cert)
        crl = self._crl(urls[0], now)
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise UntrustedChain(
                "the CRL is not signed by the certificate's issuer",
                check="ita.crl.signature",
                actual=urls[0],
            )
        self._keep_newest(urls[0], crl)
        next_update = crl.next_update_utc
        if next_update is None or now > next_update:
            raise StaleEvidence(
                "the CRL is past its next update",
                check="ita.crl.next_update",
                expected=f"before {next_update.isoformat() if next_update else '?'}",
                actual=now.isoformat(),
            )
        if now < crl.last_update_utc:
            raise StaleEvidence(
                "the CRL is not valid yet", check="ita.crl.last_update", actual=now.isoformat()
            )
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise UntrustedChain(
                "a token-signing certificate is revoked",
                check="ita.crl.revoked",
                actual=f"{_name(cert)} serial {cert.serial_number:x}",
            )
        return next_update

    @staticmethod
    def _urls(cert: x509.Certificate) -> list[str]:
        points: list[x509.DistributionPoint] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            points = list(cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value)
        urls = [
            name.value
            for point in points
            for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)
            and urllib.parse.urlsplit(name.value).scheme in ("http", "https")
        ]
        if not urls:
            raise UntrustedChain(
                "CRL checking is on but the certificate names no CRL distribution point",
                check="ita.crl.url",
                actual=_name(cert),
            )
        return urls

    def _crl(self, url: str, now: dt.datetime) -> x509.CertificateRevocationList:
        with self._lock:
            cached = self._crls.get(url)
        if cached is not None and (cached.next_update_utc or now) > now:
            return cached
        return self._flights.run(url, lambda: self._fetch(url))

    def _keep_newest(self, url: str, crl: x509.CertificateRevocationList) -> None:
        """Cache ``crl``, once its issuer's signature is checked, unless it is older than
        one already seen there.

        A forged CRL (distribution points are plain http) names its own next update:
        kept, it would refuse every appraisal until then, not the one that read it.
        Whoever answers that fetch can also replay a genuine older CRL, still before its
        next update, from before a revocation: refused.
        """
        with self._lock:  # the bar and the CRL kept change together: never an older one kept
            self._newest.note(url, crl.last_update_utc)
            self._crls.pop(url, None)
            self._crls[url] = crl
            while len(self._crls) > _MAX_CRLS:
                del self._crls[next(iter(self._crls))]

    def _fetch(self, url: str) -> x509.CertificateRevocationList:
        with self._lock:
            self.fetches += 1
        body = fetch(
            url,
            timeout=self._timeout,
            expect=(200,),
            max_bytes=_MAX_CRL_BYTES,
            name="CRL",
            check="ita.crl.fetch",
        ).body
        try:
            if body.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_crl(body)
            return x509.load_der_x509_crl(body)
        except ValueError:
            raise CollateralUnavailable(
                f"CRL unavailable: {url} did not return a CRL", check="ita.crl.fetch"
            ) from None


@attrs.frozen(kw_only=True)
class VerifiedChain:
    """A chain that led to a configured root; the verdict holds in its window."""

    leaf: x509.Certificate
    anchor: x509.Certificate
    valid_from: dt.datetime
    valid_until: dt.datetime
    """Earliest certificate notAfter or CRL nextUpdate."""

    def covers(self, now: dt.datetime) -> bool:
        return self.valid_from <= now <= self.valid_until


class ChainTrust:
    """The configured ITA roots, and an optional CRL cache."""

    def __init__(self, roots: Sequence[x509.Certificate], *, crls: CrlCache | None = None) -> None:
        if not roots:
            raise ConfigurationError("no ITA root configured", check="config.settings")
        self.roots = tuple(roots)
        self._root_ders = {r.public_bytes(_DER) for r in self.roots}
        self.crls = crls

    def verify(self, chain: Sequence[x509.Certificate], *, now: dt.datetime) -> VerifiedChain:
        """Walk ``chain`` (leaf first) to a configured root at time ``now``."""
        leaf = chain[0]
        path: list[x509.Certificate] = []
        anchor: x509.Certificate | None = None
        for index, cert in enumerate(chain):
            if cert.public_bytes(_DER) in self._root_ders:
                anchor = cert
                break
            path.append(cert)
            parent = next((r for r in self.roots if _issued_by(cert, r)), None)
            if parent is not None:
                anchor = parent
                break
            if index + 1 >= len(chain):
                break
            issuer = chain[index + 1]
            if not _issued_by(cert, issuer):
                raise UntrustedChain(
                    f"x5c[{index}] is not signed by x5c[{index + 1}]",
                    check="ita.x5c.signature",
                    expected=_name(issuer),
                    actual=cert.issuer.rfc4514_string(),
                )
            if not _is_ca(issuer) or not _may_sign_certificates(issuer):
                raise UntrustedChain(
                    f"x5c[{index + 1}] is not a CA certificate",
                    check="ita.x5c.ca",
                    actual=_name(issuer),
                )
        if anchor is None:
            raise UntrustedChain(
                "the signing key's x5c chain does not lead to the configured ITA root",
                check="ita.x5c.root",
                expected=[_name(r) for r in self.roots],
                actual=[_name(c) for c in chain],
            )
        if not path:
            raise UntrustedChain(
                "the signing key is a root certificate itself", check="ita.x5c.leaf"
            )
        if not _is_ca(anchor) or not _may_sign_certificates(anchor):
            raise UntrustedChain(
                "the configured root is not a CA certificate",
                check="ita.x5c.root",
                actual=_name(anchor),
            )
        if _is_ca(leaf) or not _may_sign_data(leaf):
            raise UntrustedChain(
                "the signing certificate is not an end-entity signing certificate",
                check="ita.x5c.leaf",
                actual=_name(leaf),
            )
        for depth, ca in enumerate([*path[1:], anchor]):
            limit = _path_length(ca)
            if limit is not None and depth > limit:
                raise UntrustedChain(
                    "the x5c chain is longer than a CA allows (pathLenConstraint)",
                    check="ita.x5c.path_length",
                    expected=f"<= {limit} intermediate(s) below {_name(ca)}",
                    actual=depth,
                )
        for index, cert in enumerate(path):
            _check_validity(cert, now, "token-signing" if index == 0 else "intermediate CA")
        _check_validity(anchor, now, "root CA")
        everything = [*path, anchor]
        valid_from = max(c.not_valid_before_utc for c in everything)
        valid_until = min(c.not_valid_after_utc for c in everything)
        if self.crls is not None:
            issuers = [*path[1:], anchor]
            for cert, issuer in zip(path, issuers, strict=True):
                valid_until = min(valid_until, self.crls.check(cert, issuer, now))
        return VerifiedChain(
            leaf=leaf, anchor=anchor, valid_from=valid_from, valid_until=valid_until
        )


def check_jwk_matches(jwk: Mapping[str, Any], leaf: x509.Certificate) -> rsa.RSAPublicKey:
    """The JWK must be the leaf certificate's RSA key; return that key."""
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise UntrustedChain(
            "the signing certificate does not hold an RSA key", check="ita.key.type"
        )
    if key.key_size < MIN_RSA_BITS:
        raise UntrustedChain(
            "the signing key is too small",
            check="ita.key.size",
            expected=f">= {MIN_RSA_BITS}",
            actual=key.key_size,
        )
    published = jwk_public_key(jwk, check="ita.key.jwk", error=UntrustedChain)
    if not isinstance(published, rsa.RSAPublicKey) or (
        published.public_numbers() != key.public_numbers()
    ):
        raise UntrustedChain("the JWK is not the key of its x5c certificate", check="ita.key.jwk")
    return key

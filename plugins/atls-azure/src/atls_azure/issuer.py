"""Server side for ACI: an MAA token for this certificate's key and nonce.

The confidential-container SKR sidecar (``mcr.microsoft.com/aci/skr``) exposes
``POST /attest/maa`` with ``{"maa_endpoint": host, "runtime_data": b64}`` and
answers ``{"token": JWT}``; MAA puts SHA-256(runtime data) in
``x-ms-sevsnpvm-reportdata`` and the parsed runtime data in ``x-ms-runtime``.
The runtime data is the compact JSON ``{"publicKey": b64(SPKI), "nonce":
b64(nonce)}`` that opaque-systems' Go issuer produced, so SHA-256 of it is
exactly the core ``azure-aci`` report data.  The token travels raw in
certificate extension ``1.3.9999.2.1.2`` of a per-connection certificate.

:class:`AciIssuer` is an :class:`atls_core.interfaces.KeyBoundIssuer`: the
core's ``mint_certificate``/``AttestedCertificates`` hand it the fresh key's
SPKI and the client's nonce (:meth:`AciIssuer.issue_for_key`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from atls_azure import specs
from atls_azure.settings import AciIssuerSettings
from atls_core.errors import CollateralUnavailable
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.fetch import fetch
from atls_core.interfaces import IssuerSpec, Settings
from atls_core.self_signed import self_signed_certificate
from atls_core.settings import load

__all__ = ["AciIssuer", "aci_runtime_data"]

_MAX_RESPONSE = 256 * 1024

CertificateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def aci_runtime_data(spki_der: bytes, nonce: bytes) -> bytes:
    """The runtime data whose SHA-256 MAA reports (same bytes as the core scheme hashes)."""
    return json.dumps(
        {
            "publicKey": base64.b64encode(spki_der).decode(),
            "nonce": base64.b64encode(nonce).decode(),
        },
        separators=(",", ":"),
    ).encode()


class AciIssuer:
    """Obtains tokens from the SKR sidecar and mints the pyatls-compatible certificate."""

    spec: IssuerSpec = specs.ACI_ISSUER_SPEC

    def __init__(self, settings: Settings) -> None:
        read = load(AciIssuerSettings, settings)
        self._maa_endpoint = read.maa_endpoint
        self._sidecar = read.sidecar_url.rstrip("/")
        self._timeout = read.timeout

    def token_for(self, spki_der: bytes, nonce: bytes) -> str:
        """A token from the sidecar; ``timeout`` bounds the whole request, no redirects."""
        body = json.dumps(
            {
                "maa_endpoint": self._maa_endpoint,
                "runtime_data": base64.b64encode(aci_runtime_data(spki_der, nonce)).decode(),
            }
        ).encode()
        raw = fetch(
            f"{self._sidecar}/attest/maa",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=body,
            timeout=self._timeout,
            expect=(200,),
            max_bytes=_MAX_RESPONSE,
            name="the SKR sidecar",
            check="azure.sidecar",
        ).body
        try:
            token = json.loads(raw)["token"]
        except (ValueError, KeyError, TypeError):
            raise CollateralUnavailable(
                "the SKR sidecar answered without a token", check="azure.sidecar"
            ) from None
        if not isinstance(token, str) or token.count(".") != 2:
            raise CollateralUnavailable("the SKR sidecar answered a non-JWT", check="azure.sidecar")
        return token

    def issue_for_key(self, spki_der: bytes, nonce: bytes | None) -> Evidence:
        """Evidence for one certificate: the TLS key's SPKI and the client's nonce.

        Without a nonce (the static certificate) the runtime data carries an
        empty one, as pyatls's server did; ``azure.aci`` validators require
        a nonce, so only per-connection certificates are accepted by clients.
        """
        return Evidence(
            media_type=specs.MEDIA_TYPE,
            data=self.token_for(spki_der, nonce or b"").encode(),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=specs.ACI_OID),
        )

    def certificate_for(
        self,
        private_key: CertificateKey,
        nonce: bytes,
        *,
        common_name: str = "atls-aci",
        lifetime: dt.timedelta = dt.timedelta(hours=1),
        now: dt.datetime | None = None,
    ) -> bytes:
        """A self-signed certificate (DER) carrying the token, for one connection."""
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        token = self.token_for(spki, nonce)
        return certificate_with_token(
            private_key, token, common_name=common_name, lifetime=lifetime, now=now
        )


def certificate_with_token(
    private_key: CertificateKey,
    token: str,
    *,
    oid: str = specs.ACI_OID,
    common_name: str = "atls-aci",
    lifetime: dt.timedelta = dt.timedelta(hours=1),
    now: dt.datetime | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    now = now or dt.datetime.now(dt.UTC)
    return self_signed_certificate(
        private_key,
        [(oid, token.encode()), *(extra or {}).items()],
        common_name=common_name,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + lifetime,
    )

"""ACI server side on top of ``atls_core.server``: per-connection certificates.

The core mints certificates from ``issuer.issue(report_data)``; MAA instead
hashes the runtime data itself, so ACI evidence must be made from the fresh
key's SPKI and the nonce (:meth:`AciIssuer.issue_for`).  This subclass does
that and also accepts the seed's SNI form (base64 of the nonce).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_azure.aci import nonce_from_server_name
from atls_azure.issuer import AciIssuer
from atls_core.binding import decode_sni, encode_sni
from atls_core.server import AttestedCertificate, AttestedCertificates, mint_certificate

__all__ = ["AciCertificates"]


class AciCertificates(AttestedCertificates):
    """Static and per-connection certificates carrying an MAA token from the SKR sidecar."""

    issuer: AciIssuer

    def __init__(self, issuer: AciIssuer, **kwargs: Any) -> None:
        super().__init__(issuer, **kwargs)

    def mint(self, nonce: bytes) -> AttestedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return mint_certificate(
            self.issuer,
            nonce=nonce,
            hostnames=self.hostnames,
            key_type="p256",
            lifetime=self.lifetime,
            signer=self.signer,
            private_key=key,
            evidence=self.issuer.issue_for(spki, nonce),
        )

    def sni_callback(self, connection: Any, server_name: str | None, _ctx: Any) -> int | None:
        nonce = nonce_from_server_name(server_name)
        if nonce is not None and decode_sni(server_name)[0] is None:
            server_name = encode_sni(nonce, "")  # the seed's base64 form, normalised
        return super().sni_callback(connection, server_name, _ctx)

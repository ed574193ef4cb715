"""Certificates as tests and stand-ins make them by hand.

:func:`self_signed_certificate` (from :mod:`atls_core.self_signed`, where issuers
find it too) makes attested-looking certificates, or hostile variants of them,
without a TEE; :func:`key_usage` gives the test PKIs' CAs and signers exactly
the uses they need.
"""

from __future__ import annotations

from cryptography import x509

from atls_core.self_signed import self_signed_certificate

__all__ = ["CA_USES", "key_usage", "self_signed_certificate"]

_USES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
CA_USES = ("key_cert_sign", "crl_sign")
"""What a CA certificate's key may do: sign certificates and CRLs."""


def key_usage(*uses: str) -> x509.KeyUsage:
    """A KeyUsage extension granting exactly ``uses`` (``x509.KeyUsage``'s argument names)."""
    unknown = set(uses) - set(_USES)
    if unknown:
        raise ValueError(f"unknown key uses {sorted(unknown)}; known: {_USES}")
    return x509.KeyUsage(
        **{use: use in uses for use in _USES}, encipher_only=False, decipher_only=False
    )

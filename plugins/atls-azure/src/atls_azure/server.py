"""ACI server side: the core's attested certificates, plus pyatls's SNI form.

:class:`~atls_azure.issuer.AciIssuer` is a key-bound issuer, so
``atls_core.server.AttestedCertificates(AciIssuer(...))`` already mints
per-connection certificates carrying an MAA token for the fresh key and the
client's nonce.  :class:`AciCertificates` only adds what the core cannot
know: opaque-systems atls-python clients sent ``base64(nonce)`` as the whole
server name instead of atls's ``atls-<base32>.<host>`` label.
"""

from __future__ import annotations

from typing import Any

from atls_azure.aci import nonce_from_server_name
from atls_azure.issuer import AciIssuer
from atls_core.server import AttestedCertificates

__all__ = ["AciCertificates"]


class AciCertificates(AttestedCertificates):
    """``AttestedCertificates`` for an :class:`AciIssuer` that also accept pyatls clients' SNI."""

    def __init__(self, issuer: AciIssuer, **kwargs: Any) -> None:
        kwargs.setdefault("nonce_from_sni", nonce_from_server_name)
        super().__init__(issuer, **kwargs)

"""A server that answers as ACI servers written for pyatls did, on 127.0.0.1 (tests only).

It reads the client's nonce only in pyatls's SNI form (the whole server name
is ``base64(nonce)``, newlines ignored as Go's decoder ignores them), asks the
stand-in MAA (:mod:`atls_azure.testing.maa`) for a token over the runtime data
``{"publicKey": b64(SPKI), "nonce": b64(nonce)}`` and presents a certificate
carrying that token in extension ``1.3.9999.2.1.2``.  The runtime data is
written out here from pyatls's description, not taken from atls-azure's
issuer, so a test against this server checks the wire form rather than our
code against itself.  A server name it cannot read gets its start-up
certificate (a token for an empty nonce).
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_azure.issuer import certificate_with_token
from atls_azure.testing.maa import StandInMaa
from atls_core.server import AttestedCertificate
from atls_core.testing.loopback import HTTPSServer

if TYPE_CHECKING:
    from atls_pyatls.azure import AciValidator

__all__ = ["PyatlsStyleServer", "aci_validator_for", "pyatls_nonce", "pyatls_runtime_data"]


def pyatls_nonce(server_name: str | None) -> bytes | None:
    """The nonce in a pyatls client's server name, or ``None`` if it is not base64."""
    try:
        return base64.b64decode(
            (server_name or "").replace("\r", "").replace("\n", ""), validate=True
        )
    except (binascii.Error, ValueError):
        return None


def pyatls_runtime_data(spki_der: bytes, nonce: bytes) -> bytes:
    """The runtime data pyatls's validator re-derives: compact JSON, standard base64."""
    document = {
        "publicKey": base64.b64encode(spki_der).decode(),
        "nonce": base64.b64encode(nonce).decode(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


class PyatlsStyleServer:
    """An HTTPS server (``atls_core.testing.loopback.HTTPSServer``) with pyatls's server side.

    ``token_claims`` overrides claims of every token (e.g. another hostdata);
    ``server_names`` lists the server names clients sent, in order.
    """

    def __init__(self, maa: StandInMaa, **token_claims: Any) -> None:
        self.maa = maa
        self.token_claims = token_claims
        self.server_names: list[str | None] = []
        context = self._certificate(b"").server_context()
        context.sni_callback = self._sni
        self.https = HTTPSServer(context)

    def _certificate(self, nonce: bytes) -> AttestedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        token = self.maa.aci_token(pyatls_runtime_data(spki, nonce), **self.token_claims)
        der = certificate_with_token(key, token)
        return AttestedCertificate(
            private_key=key, certificate=x509.load_der_x509_certificate(der), evidence=None
        )

    def _sni(self, connection: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: Any) -> None:
        self.server_names.append(name)
        nonce = pyatls_nonce(name)
        if nonce is not None:
            connection.context = self._certificate(nonce).server_context()

    @property
    def port(self) -> int:
        return self.https.port

    def __enter__(self) -> PyatlsStyleServer:
        self.https.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.https.stop()


def aci_validator_for(
    maa: StandInMaa, policies: Sequence[str] | None = None, **settings: Any
) -> AciValidator:
    """pyatls's ``AciValidator`` trusting ``maa`` (http on loopback: a tests-only setting,
    so ``allow_insecure``); without policies pyatls's SecurityWarning is expected and muted."""
    from atls_azure.aci import SecurityWarning
    from atls_pyatls.azure import AciValidator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return AciValidator(
            policies=policies,
            jkus=[f"{maa.url}/certs"],
            settings={"allow_http_loopback": True, **settings},
            allow_insecure=True,
        )

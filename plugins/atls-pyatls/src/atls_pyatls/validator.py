"""pyatls's ``Validator`` base class, kept for imports and ``isinstance``.

In pyatls a validator answered ``validate(document, public_key, nonce) ->
bool`` and that bool decided the connection.  Here the core's appraisal
decides (binding, pinning, TCB, debug, freshness) and records why, so
:class:`~atls_pyatls.context.ATLSContext` takes only the validators this
distribution provides and atls validators; a subclass written for pyatls is
refused with a message that says how to port it.
"""

from __future__ import annotations

import abc

from cryptography.x509 import ObjectIdentifier

__all__ = ["Validator", "dotted"]


def dotted(oid: ObjectIdentifier | str) -> str:
    """An OID as pyatls's callers pass it (``ObjectIdentifier``) or as text."""
    return oid.dotted_string if isinstance(oid, ObjectIdentifier) else str(oid)


class Validator(abc.ABC):
    """Appraises the attestation document of one certificate extension."""

    @staticmethod
    @abc.abstractmethod
    def accepts(oid: ObjectIdentifier) -> bool:
        """Whether this validator reads the extension ``oid``."""

    @abc.abstractmethod
    def validate(self, document: bytes, public_key: bytes, nonce: bytes) -> bool:
        """Whether ``document`` proves a trustworthy peer holding ``public_key`` for ``nonce``."""

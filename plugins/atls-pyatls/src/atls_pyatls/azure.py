"""pyatls's Azure validators: ``AciValidator`` on atls-azure's ``azure.aci``.

``AciValidator(policies=[rego], jkus=[".../certs"])`` builds the ``azure.aci``
validator of atls-azure (:class:`atls_azure.aci.AciValidator`): ``policies``
become the ``cce_policies`` allow-list (hostdata = SHA-256 of the Rego text),
``jkus`` the trusted MAA instances (keys come from each instance's published
key set, never from the token's ``jku``), and the client sends its nonce the
way pyatls servers read it (setting ``wire = "pyatls"``).  Without policies
any container policy passes, as in pyatls, but with a ``SecurityWarning`` and
results of status ``warning``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.x509 import ObjectIdentifier

from atls_azure import aci, specs
from atls_core.binding import BindingContext
from atls_core.errors import ATLSError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_pyatls.validator import Validator, dotted

__all__ = ["DEFAULT_SETTINGS", "PUBLIC_JKUS", "AciValidator", "CvmValidator"]

PUBLIC_JKUS: list[str] = [f"{instance}/certs" for instance in aci.PUBLIC_INSTANCES]
"""The shared public MAA instances trusted when ``jkus`` is not given (pyatls's list)."""

DEFAULT_SETTINGS: Mapping[str, Any] = {"wire": "pyatls"}
"""``azure.aci`` settings under the ones a caller passes: pyatls servers' SNI form."""


class AciValidator(aci.AciValidator, Validator):
    """An ACI container's MAA token, appraised by ``azure.aci``; pyatls's constructor.

    Keyword-only arguments are atls's: ``hostdata`` (allowed hostdata hashes),
    ``policy`` (a full :class:`~atls_core.policy.Policy`) and ``settings``
    (``azure.aci`` settings over :data:`DEFAULT_SETTINGS`; ``{"wire": "atls"}``
    for a server that reads atls's SNI form), and ``allow_insecure`` (tests-only
    settings such as ``allow_http_loopback``, as configuration's
    ``atls.allow_insecure_test_validators``).
    """

    # Read at each build: code written for pyatls edits these module-level lists.
    def _default_settings(self) -> Mapping[str, Any]:
        return DEFAULT_SETTINGS

    def _default_jkus(self) -> Sequence[str]:
        return PUBLIC_JKUS

    # -- pyatls's names ---------------------------------------------------------

    @staticmethod
    def accepts(oid: ObjectIdentifier) -> bool:
        return dotted(oid) == specs.ACI_OID

    def validate(self, document: bytes, public_key: bytes, nonce: bytes) -> bool:
        """The full appraisal of one token for ``public_key`` (SPKI, DER) and ``nonce``.

        ``False`` for anything the appraisal refuses; use ``ATLSContext`` or
        :meth:`appraise` to learn why.
        """
        evidence = Evidence(
            media_type=specs.MEDIA_TYPE,
            data=document,
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=specs.ACI_OID),
        )
        try:
            result = self.appraise(
                evidence, binding=BindingContext(spki_der=public_key, nonce=nonce)
            )
        except ATLSError:
            return False
        return result.accepted

    @property
    def policies(self) -> list[str] | None:
        value = self.policy.option("cce_policies")
        return list(value) if value is not None else None

    @policies.setter
    def policies(self, policies: Sequence[str] | None) -> None:
        """Rebuild with other CCE policies; contexts holding this validator use them next."""
        self._select(policies)

    @property
    def jkus(self) -> list[str]:
        """The key-set URLs of the trusted MAA instances."""
        return [f"{issuer}/certs" for issuer in sorted(self.validator.trust.issuers)]

    @jkus.setter
    def jkus(self, jkus: Sequence[str] | None) -> None:
        self._given_jkus = list(jkus) if jkus is not None else None
        self._select(self.policies)


class CvmValidator(Validator):
    """pyatls's placeholder for Azure confidential VMs: it validated nothing, nor does this.

    pyatls raised ``NotImplementedError`` whenever a certificate carried its
    extension; in an :class:`~atls_pyatls.context.ATLSContext` such a
    certificate is refused (check ``pyatls.cvm``) unless another listed
    validator accepts it.  For confidential VMs use atls-azure's ``azure.cvm``
    validator, pinned by VM ID.
    """

    @staticmethod
    def accepts(oid: ObjectIdentifier) -> bool:
        return dotted(oid) == specs.CVM_OID

    def validate(self, document: bytes, public_key: bytes, nonce: bytes) -> bool:
        raise NotImplementedError(
            "pyatls's CvmValidator validates nothing; use atls-azure's azure.cvm validator"
        )

"""``AciValidator``: the opaque-systems atls-python constructor, our appraisal.

Seed code wrote ``AciValidator(policies=[rego_text], jkus=[".../certs"])``.
The same call builds an ``azure.aci`` validator here, with the seed's holes
closed: the ``jku`` list becomes the set of trusted MAA *instances* (keys are
fetched from their published ``jwks_uri``, never from the token), the header
``alg`` is ignored in favour of RS256, keys are cached, and the result is a
full :class:`~atls_core.result.AttestationResult` instead of ``True/False``.

``policies=None`` kept the seed's "any CCE policy, with a warning": here it
still works but warns (Python ``SecurityWarning`` at construction and a
result warning) because without a policy allow-list any container on ACI
would pass.  ``jkus=None`` trusts the shared public MAA instances the seed
listed.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from atls_azure.validators import AciTokenValidator
from atls_core import binding as b
from atls_core.clock import Clock, SystemClock
from atls_core.errors import ConfigurationError
from atls_core.evidence import Evidence
from atls_core.policy import Policy
from atls_core.result import AttestationResult

__all__ = ["PUBLIC_INSTANCES", "AciValidator", "SecurityWarning", "nonce_from_server_name"]

PUBLIC_INSTANCES = (
    "https://sharedcus.cus.attest.azure.net",
    "https://sharedeus.eus.attest.azure.net",
    "https://sharedeus2.eus2.attest.azure.net",
    "https://shareduks.uks.attest.azure.net",
)
"""The shared MAA instances atls-python trusted by default."""


class SecurityWarning(UserWarning):
    """A configuration that is accepted but weaker than it should be."""


def _instance_of_jku(jku: str) -> str:
    parts = urllib.parse.urlsplit(jku)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError("a jku must be a URL", check="config.settings", actual=jku)
    return f"{parts.scheme}://{parts.netloc}"


class AciValidator(AciTokenValidator):
    """``azure.aci`` with the seed's constructor; also carries its own policy.

    It has the shape of a ``SelectedValidator`` (``.validator``, ``.policy``,
    ``.pki``, ``.spec``, ``.appraise(..., host=)``), so it can be passed as
    ``ATLSContext(validator=AciValidator(...))``.
    """

    pki = False

    def __init__(
        self,
        policies: Sequence[str] | None = None,
        jkus: Sequence[str] | None = None,
        *,
        hostdata: Sequence[str] | None = None,
        policy: Policy | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        merged: dict[str, Any] = dict(settings or {})
        if "instances" not in merged and "keys" not in merged and "keys_file" not in merged:
            sources = jkus if jkus is not None else PUBLIC_INSTANCES
            merged["instances"] = sorted({_instance_of_jku(j) for j in sources})
        super().__init__(merged)
        options: dict[str, Any] = dict(policy.options) if policy is not None else {}
        if policies is not None:
            options["cce_policies"] = list(policies)
        if hostdata is not None:
            options["hostdata"] = list(hostdata)
        if (
            policies is None
            and hostdata is None
            and "hostdata" not in (policy.reference_values if policy is not None else {})
            and not options.get("cce_policies")
            and not options.get("hostdata")
        ):
            warnings.warn(
                "AciValidator without policies accepts any confidential-container policy",
                SecurityWarning,
                stacklevel=2,
            )
            options["allow_any_workload"] = True
        self.policy = attrs.evolve(policy or Policy(), options=options)

    @property
    def validator(self) -> AciValidator:
        """``SelectedValidator``-shaped access (``.validator``, ``.policy``)."""
        return self

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: b.BindingContext,
        clock: Clock | None = None,
        policy: Policy | None = None,
        host: str | None = None,
    ) -> AttestationResult:
        return super().appraise(
            evidence,
            binding=binding,
            clock=clock or SystemClock(),
            policy=policy or self.policy,
        )

    # -- the seed's names ---------------------------------------------------------

    @property
    def policies(self) -> list[str] | None:
        value = self.policy.option("cce_policies")
        return list(value) if value is not None else None

    @property
    def jkus(self) -> list[str]:
        return [f"{issuer}/certs" for issuer in sorted(self.trust.issuers)]


def nonce_from_server_name(server_name: str | None) -> bytes | None:
    """The client's nonce from SNI, in our form or the seed's.

    Ours: ``atls-<base32>.<host>`` (:func:`atls_core.binding.decode_sni`).  The
    seed sent ``base64.encodebytes(nonce)`` as the whole server name.
    """
    nonce, _host = b.decode_sni(server_name)
    if nonce is not None or not server_name:
        return nonce
    text = server_name.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == b.NONCE_SIZE else None

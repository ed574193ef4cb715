"""``AciValidator``: the opaque-systems atls-python constructor, our appraisal.

pyatls code wrote ``AciValidator(policies=[rego_text], jkus=[".../certs"])``.
The same call builds an ``azure.aci`` validator here, with pyatls's holes
closed: the ``jku`` list becomes the set of trusted MAA *instances* (keys are
fetched from their published ``jwks_uri``, never from the token), the header
``alg`` is ignored in favour of RS256, keys are cached, and the result is a
full :class:`~atls_core.result.AttestationResult` instead of ``True/False``.

``policies=None`` kept pyatls's "any CCE policy, with a warning": here it
still works but warns (Python ``SecurityWarning`` at construction, and the
policy says ``allow_any_workload`` so results are ``warning`` with
``workload.unpinned``) because without a policy allow-list any container on
ACI would pass.  ``jkus=None`` trusts the shared public MAA instances pyatls
listed.
"""

from __future__ import annotations

import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs

from atls_azure import specs
from atls_azure.validators import AciTokenValidator
from atls_core import binding as b
from atls_core.clock import Clock
from atls_core.errors import ConfigurationError
from atls_core.evidence import Evidence
from atls_core.interfaces import ValidatorSpec, refuse_unknown_names
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import select_validator

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


class AciValidator:
    """``azure.aci`` with pyatls's constructor, carrying its own policy.

    It is a selected validator (:class:`~atls_core.selection.AppraiserLike`):
    :func:`~atls_core.selection.select_validator` builds the ``azure.aci``
    validator (so unknown settings and policy options are refused as for any
    configuration, and appraisals reach the plugins' observers), and
    :meth:`appraise` is the core's appraisal.  Pass it as
    ``ATLSContext(validator=AciValidator(...))``.  A server written for
    opaque-systems atls-python reads the nonce only in that client's SNI form:
    pass ``settings={"wire": "pyatls"}`` (the ``atls-pyatls`` distribution's
    ``atls`` module does so by default).  ``allow_insecure`` is configuration's
    ``atls.allow_insecure_test_validators``: tests-only settings such as
    ``allow_http_loopback`` (a stand-in MAA) are refused without it.
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
        allow_insecure: bool = False,
    ) -> None:
        self._hostdata = hostdata
        self._policy = policy
        self._settings = {**self._default_settings(), **(settings or {})}
        self._allow_insecure = allow_insecure
        self._given_jkus = jkus
        self._select(policies)

    def _default_settings(self) -> Mapping[str, Any]:
        """Settings under the ones a caller passes (atls-pyatls: its servers' SNI form)."""
        return {}

    def _default_jkus(self) -> Sequence[str]:
        """What ``jkus=None`` trusts: the shared public instances."""
        return PUBLIC_INSTANCES

    def _select(self, policies: Sequence[str] | None) -> None:
        """(Re)build the ``azure.aci`` validator for ``policies`` and the arguments given;
        called by ``__init__`` or a setter, so the warning names their caller."""
        merged: dict[str, Any] = dict(self._settings)
        if "instances" not in merged and "keys" not in merged and "keys_file" not in merged:
            sources = self._given_jkus if self._given_jkus is not None else self._default_jkus()
            merged["instances"] = sorted({_instance_of_jku(j) for j in sources})
        base = self._policy or Policy()
        options: dict[str, Any] = dict(base.options)
        if policies is not None:
            options["cce_policies"] = list(policies)
        if self._hostdata is not None:
            options["hostdata"] = list(self._hostdata)
        base = attrs.evolve(base, options=options)
        # The core's pinning rule, asked before any connection.
        if not specs.ACI_SPEC.pins_in(base) and not base.allow_any_workload:
            warnings.warn(
                "AciValidator without policies accepts any confidential-container policy",
                SecurityWarning,
                stacklevel=3,
            )
            base = attrs.evolve(base, allow_any_workload=True)
        self._selected = select_validator(
            specs.ACI_SPEC.id,
            policy=base,
            settings=merged,
            allow_insecure=self._allow_insecure,
            where="AciValidator",
        )

    @property
    def spec(self) -> ValidatorSpec:
        return self._selected.spec

    @property
    def validator(self) -> AciTokenValidator:
        """The ``azure.aci`` validator (transport: the token from the certificate)."""
        return cast(AciTokenValidator, self._selected.validator)

    @property
    def policy(self) -> Policy:
        return self._selected.policy

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: b.BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
        policy: Policy | None = None,
    ) -> AttestationResult:
        """The core's appraisal under this validator's policy (or ``policy``, if given)."""
        selected = self._selected
        if policy is not None:
            where = "AciValidator.appraise(policy=)"
            spec = selected.spec
            refuse_unknown_names("policy options", policy.options, spec.policy_options, where=where)
            refuse_unknown_names(
                "reference values", policy.reference_values, spec.measurements, where=where
            )
            selected = attrs.evolve(selected, policy=policy)
        return selected.appraise(evidence, binding=binding, clock=clock, host=host)

    # -- pyatls's names ---------------------------------------------------------

    @property
    def policies(self) -> list[str] | None:
        value = self.policy.option("cce_policies")
        return list(value) if value is not None else None

    @property
    def jkus(self) -> list[str]:
        return [f"{issuer}/certs" for issuer in sorted(self.validator.trust.issuers)]


def nonce_from_server_name(server_name: str | None) -> bytes | None:
    """The client's nonce from SNI, in atls's form or pyatls's
    (:func:`atls_core.binding.nonce_in_sni` with every form)."""
    return b.nonce_in_sni(server_name)

"""From configuration to a ready validator: the only place validators are built.

Checks here make configuration mistakes loud before any connection: unknown
settings, policy options or reference-value names, and the simulated TEE
selected without ``allow_insecure_test_validators``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext
from atls_core.clock import Clock, SystemClock
from atls_core.config import ATLSConfig, HostRule
from atls_core.errors import ConfigurationError
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator, ValidatorSpec, refuse_unknown_names
from atls_core.policy import COMMON_KEYS, Policy
from atls_core.result import AttestationResult

if TYPE_CHECKING:  # the registry (importlib.metadata, packaging) loads when a validator is chosen
    from atls_core.registry import PluginInfo, PluginManager

__all__ = [
    "AppraiserLike",
    "SelectedValidator",
    "check_against_spec",
    "manager_for",
    "select_validator",
    "validator_for_host",
    "validator_for_rule",
]


@runtime_checkable
class AppraiserLike(Protocol):
    """What the TLS and HTTP integrations need from a validator: :class:`SelectedValidator`'s shape.

    ``ATLSContext(validator=)``, ``ATLSAdapter(validator=)``, ``HTTPAConnection``
    and the httpx builders accept any object of this shape, e.g. a plugin's
    compatibility class that carries its own policy (``atls_azure.AciValidator``).
    ``validator`` supplies the transport (evidence from the certificate, the
    challenge); ``appraise`` decides, with ``policy`` already applied.
    """

    @property
    def spec(self) -> ValidatorSpec: ...

    @property
    def validator(self) -> Validator: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def pki(self) -> bool: ...

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> AttestationResult: ...


@attrs.frozen(kw_only=True)
class SelectedValidator:
    """A validator with the policy configuration gave it, ready to appraise."""

    validator: Validator
    policy: Policy
    plugin: PluginInfo
    manager: PluginManager = attrs.field(repr=False)
    pki: bool = False
    test_knobs: tuple[str, ...] = ()
    """Tests-only settings in force (see ``ValidatorSpec.test_settings``)."""
    allow_insecure: bool = False
    """Configuration allows insecure test validators (hand-overs inherit it)."""

    @property
    def spec(self) -> ValidatorSpec:
        return self.validator.spec

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> AttestationResult:
        result = appraise(
            self.validator,
            evidence,
            binding=binding,
            clock=clock or SystemClock(),
            policy=self.policy,
            plugin=self.plugin,
            host=host,
            manager=self.manager,
            test_knobs=self.test_knobs,
            allow_insecure=self.allow_insecure,
        )
        self.manager.notify(result, host)
        return result


def _refuse_wrong_sizes(spec: ValidatorSpec, policy: Policy, *, where: str) -> None:
    """A reference value for a fixed-size digest must be that many bytes (the policy has
    checked it is hex): a digit too many or too few would pin what no evidence shows."""
    sizes = dict(spec.measurement_sizes)
    for name, reference in policy.reference_values.items():
        size = sizes.get(name)
        if size is None:
            continue
        for value in sorted(reference.accepted):
            if len(value) != 2 * size:
                raise ConfigurationError(
                    f"{where}.{name}: {value!r} is not {size} bytes of hex ({2 * size} "
                    f"digits; it has {len(value)})",
                    check="config.reference_values",
                    expected=f"{2 * size} hex digits",
                    actual=value,
                )


def check_against_spec(
    spec: ValidatorSpec,
    *,
    settings: Mapping[str, Any],
    policy: Policy | None,
    allow_insecure: bool,
    where: str,
) -> tuple[str, ...]:
    """Refuse what configuration may not ask of ``spec``; return the tests-only settings in force.

    The one check behind :func:`select_validator`, ``ATLSConfig.check`` and
    ``Appraisal.hand_over``: an insecure validator or a tests-only setting needs
    ``allow_insecure``; settings, policy options and reference values must be
    names the spec declares (``policy=None``: no policy to check).
    """
    if spec.insecure and not allow_insecure:
        raise ConfigurationError(
            f"{where}: {spec.id} is an insecure test validator; it is refused unless "
            "configuration sets atls.allow_insecure_test_validators = true (or, in code, "
            "allow_insecure=True; on the command line, --allow-insecure)",
            check="config.insecure",
        )
    refuse_unknown_names("settings", settings, spec.settings, where=f"{where}.settings")
    if policy is not None:
        refuse_unknown_names(
            "policy options",
            policy.options,
            spec.policy_options,
            where=f"{where}.policy",
            common=COMMON_KEYS,
        )
        refuse_unknown_names(
            "reference values",
            policy.reference_values,
            spec.measurements,
            where=f"{where}.policy.reference_values",
        )
        _refuse_wrong_sizes(spec, policy, where=f"{where}.policy.reference_values")
    knobs = tuple(
        name for name in spec.test_settings if settings.get(name) not in (None, False, "", ())
    )
    if knobs and not allow_insecure:
        raise ConfigurationError(
            f"{where}.settings: {list(knobs)} are for tests only; they are refused unless "
            "configuration sets atls.allow_insecure_test_validators = true (or, in code, "
            "allow_insecure=True; on the command line, --allow-insecure)",
            check="config.test_settings",
            actual=list(knobs),
        )
    return knobs


def select_validator(
    validator_id: str,
    *,
    policy: Policy | None = None,
    settings: Mapping[str, Any] | None = None,
    allow_insecure: bool = False,
    manager: PluginManager | None = None,
    where: str = "configuration",
    pki: bool = False,
) -> SelectedValidator:
    from atls_core.registry import default_manager

    manager = manager or default_manager()
    policy = policy or Policy()
    settings = settings or {}
    spec, factory, plugin = manager.validator_factory(validator_id)
    knobs = check_against_spec(
        spec, settings=settings, policy=policy, allow_insecure=allow_insecure, where=where
    )
    try:  # a setting's value or a policy option refused: name the host rule, as above
        validator = factory(settings)
        check_policy = getattr(validator, "check_policy", None)  # ValidatorBase.check_policy
        if callable(check_policy):
            check_policy(policy)
    except ConfigurationError as error:
        raise error.in_configuration(where) from None
    return SelectedValidator(
        validator=validator,
        policy=policy,
        plugin=plugin,
        manager=manager,
        pki=pki,
        test_knobs=knobs,
        allow_insecure=allow_insecure,
    )


def manager_for(config: ATLSConfig, manager: PluginManager | None = None) -> PluginManager:
    """``manager`` (default: the installed plugins), refusing also ``config``'s disabled plugins.

    A validator finds the validators it hands evidence over to (dstack's SEV-SNP
    evidence goes to ``snp.report``) through the manager it was selected with.
    That manager must refuse what ``atls.disable_plugins`` names, or a server,
    by choosing its evidence, could make the client load and run a plugin the
    operator disabled.
    """
    from atls_core.registry import default_manager

    return (manager or default_manager()).refusing(config.disable_plugins)


def validator_for_rule(
    config: ATLSConfig, rule: HostRule, *, manager: PluginManager | None = None
) -> SelectedValidator:
    """The validator one host rule of ``config`` describes, built now.

    Its manager (so every appraisal it runs) honours ``config.disable_plugins`` (:func:`manager_for`), for
    the rule's own validator and for any validator it hands evidence over to.
    """
    if rule.validator.partition(".")[0] in config.disable_plugins:
        raise ConfigurationError(
            f"{rule.where}: plugin of {rule.validator} is disabled by atls.disable_plugins",
            check="config.disabled",
        )
    return select_validator(
        rule.validator,
        policy=rule.policy,
        settings=rule.settings,
        allow_insecure=config.allow_insecure_test_validators,
        manager=manager_for(config, manager),
        where=rule.where,
        pki=rule.pki,
    )


def validator_for_host(
    config: ATLSConfig, host: str, *, manager: PluginManager | None = None
) -> SelectedValidator:
    return validator_for_rule(config, config.rule_for(host), manager=manager)

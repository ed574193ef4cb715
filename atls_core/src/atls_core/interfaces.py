"""The contracts between the core and its plugins.

A plugin registers :class:`ValidatorSpec` + a factory (and/or
:class:`IssuerSpec` + a factory).  Factories receive the validator's
*settings* from configuration (secrets already resolved to
:class:`atls_core.secret.Secret`) and return an object that satisfies
:class:`Validator` / :class:`Issuer`.

A validator does one thing the core cannot: :meth:`Validator.verify` checks
its evidence's signatures and chains, records what it verified on the
:class:`~atls_core.appraisal.Appraisal` (through setters) and returns the
verified :class:`ReportData`.  Everything else -- the media type, the binding
to the TLS key and nonce with a scheme the spec declares, the common policy
(pinning, TCB, debug, freshness) and the result -- is the core's
(:func:`atls_core.appraisal.appraise`), so no plugin can skip it.
:class:`ValidatorBase` gives the transport methods safe defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from atls_core.errors import ConfigurationError, MalformedEvidence, did_you_mean
from atls_core.evidence import Evidence, Transport
from atls_core.lazy import lazy_exports

if TYPE_CHECKING:
    from atls_core._exchange import ChallengeRequest, ChallengeResponse, ReportData
    from atls_core.appraisal import Appraisal
    from atls_core.binding import BindingContext
    from atls_core.certificate import PeerCertificate
    from atls_core.clock import Clock
    from atls_core.policy import Policy
    from atls_core.result import AttestationResult

__all__ = [
    "BINDING_SCHEME_NAMES",
    "SNI_FORMS",
    "ChallengeRequest",
    "ChallengeResponse",
    "CliOption",
    "Issuer",
    "IssuerFactory",
    "IssuerSpec",
    "KeyBoundIssuer",
    "ReportData",
    "Settings",
    "Validator",
    "ValidatorBase",
    "ValidatorFactory",
    "ValidatorSpec",
    "refuse_unknown_names",
]

Settings = Mapping[str, Any]
"""Validator/issuer settings from configuration (``[hosts."x".settings]``)."""

BINDING_SCHEME_NAMES = (
    "atls-v1",
    "challenge-v1",
    "dstack-ratls-cert",
    "gramine-legacy",
    "gramine-tcg",
    "azure-aci",
    "maa-held-data",
)
"""The binding schemes a spec may name, as :data:`atls_core.binding.SCHEMES` computes them.

The names are the contract the registry checks every spec against, so listing plugins
need not import the computations (hashing, JSON); a test holds both to the same names."""

SNI_FORMS = ("atls-label", "base64-line")
"""How a client's nonce can travel in the server name (:attr:`ValidatorSpec.sni_form`;
:mod:`atls_core.binding` encodes them).  ``atls-label`` is atls's own; ``base64-line``
exists only because servers written for opaque-systems' atls-python read nothing else."""

# Built on first use: `atls plugins` imports this module for the specs and needs none of them.
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(("ChallengeRequest", "ChallengeResponse", "ReportData"), "atls_core._exchange"),
    globals(),
)


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


def refuse_unknown_names(
    kind: str,
    given: Mapping[str, Any],
    allowed: tuple[str, ...],
    *,
    where: str,
    common: tuple[str, ...] = (),
) -> None:
    """Refuse names a spec does not declare: a typo must never be silently ignored.

    ``kind`` is ``settings``, ``policy options`` or ``reference values``; the
    error's check is ``config.<kind>``.  ``common`` names keys valid everywhere
    (the common policy keys), listed in the error so a mistyped one is obvious.
    """
    unknown = sorted(set(given) - set(allowed), key=str)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown {kind} {unknown}" + did_you_mean(unknown[0], (*allowed, *common)),
            check=f"config.{kind.replace(' ', '_')}",
            expected=sorted({*allowed, *common}),
            actual=unknown,
        )


def _options(value: Any) -> tuple[CliOption, ...]:
    return tuple(value)


def _sizes(value: Mapping[str, int] | Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(name), int(size)) for name, size in pairs))


@attrs.frozen(kw_only=True)
class CliOption:
    """An extra input for ``atls verify-evidence`` that maps to a setting.

    ``atls verify-evidence --collateral FILE`` with
    ``CliOption(flag="--collateral", setting="collateral_file", metavar="FILE")``
    passes ``{"collateral_file": "FILE"}`` to the validator factory.
    """

    flag: str
    setting: str
    help: str
    metavar: str = "VALUE"
    multiple: bool = False
    kind: str = attrs.field(default="text")
    """``text``, ``number`` or ``integer``: the command line converts the value, so a
    numeric setting gets a number (settings refuse numbers written as text)."""

    @kind.validator
    def _check_kind(self, _attribute: Any, value: str) -> None:
        if value not in ("text", "number", "integer"):
            raise ValueError(f"CliOption.kind must be text, number or integer, not {value!r}")


@attrs.frozen(kw_only=True)
class ValidatorSpec:
    """What a validator is and how its evidence travels; no code, only facts."""

    id: str
    """``<plugin>.<name>``: the prefix is the plugin's entry-point name."""
    media_types: tuple[str, ...] = attrs.field(converter=_tuple)
    binding_schemes: tuple[str, ...] = attrs.field(converter=_tuple)
    """Names in :data:`BINDING_SCHEME_NAMES` this validator's report data may use;
    the first is the default.  The core refuses a binding with any other scheme."""
    transport: Transport
    tee_type: str
    """``tdx``, ``sgx``, ``sev-snp``, ``simulated``..."""
    oids: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Certificate extension OIDs this validator reads (as parsed from the wire)."""
    scheme_version: int = 1
    description: str = ""
    measurements: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Names usable in ``policy.reference_values``; others are refused."""
    measurement_sizes: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=_sizes)
    """``{name: bytes}`` for the measurements that are digests of a fixed size (a mapping
    or pairs): a reference value of another length is refused with the configuration
    that holds it, instead of refusing every connection later."""
    workload_identity: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Measurements that identify the workload (MRTD, MRENCLAVE, compose hash...).

    The core's pinning rule: a policy must pin at least one of them (an
    enforced reference value) or set one of :attr:`pinning_options`, else the
    appraisal is refused unless the policy says ``allow_any_workload``.  Empty
    means "nothing here can be pinned": such a validator always needs
    ``allow_any_workload``."""
    pinning_options: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Policy options that pin the workload as well as a reference value does
    (e.g. dstack's ``app_compose``); must also be in :attr:`policy_options`."""
    policy_options: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Validator-specific policy keys; others are refused."""
    settings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Setting keys the factory understands; others are refused."""
    cli_options: tuple[CliOption, ...] = attrs.field(default=(), converter=_options)
    """Extra ``atls verify-evidence`` inputs, each mapping to one of :attr:`settings`."""
    test_settings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Tests-only settings among :attr:`settings` (a custom root, http on loopback...):
    refused unless configuration allows insecure test validators, and any result
    appraised with one in force is at best ``warning``, saying which."""
    insecure: bool = False
    """A test validator: refused unless configuration allows insecure validators."""
    sni_form: str = attrs.field(default="atls-label")
    """How a certificate-transport client sends its nonce in SNI: a name in
    :data:`SNI_FORMS`.  Another form than the default is for
    servers that read only that one (a validator instance may set it from its
    settings)."""

    @binding_schemes.validator
    def _check_schemes(self, _attribute: Any, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError(f"validator {self.id} declares no binding scheme")

    @sni_form.validator
    def _check_sni_form(self, _attribute: Any, value: str) -> None:
        if value not in SNI_FORMS:
            raise ValueError(f"validator {self.id}: unknown sni_form {value!r}, not in {SNI_FORMS}")

    @property
    def binding_scheme(self) -> str:
        """The default (first declared) binding scheme."""
        return self.binding_schemes[0]

    @property
    def ways_to_pin(self) -> tuple[str, ...]:
        """What a policy sets to pin this validator's workload: ``reference_values.<name>``
        for each :attr:`workload_identity` measurement, then each pinning option."""
        return (
            *(f"reference_values.{name}" for name in self.workload_identity),
            *self.pinning_options,
        )

    def pins_in(self, policy: Policy) -> tuple[str, ...]:
        """The workload pins ``policy`` sets for this validator (the core's pinning rule):
        identity measurements with an enforced reference value that does not accept the
        all-zero "not set" value, then pinning options set."""
        references, options = policy.reference_values, policy.options
        pins = []  # a loop, not generators: every appraisal asks
        for name in self.workload_identity:
            reference = references.get(name)
            if reference is not None and reference.enforce and not reference.admits_unset:
                pins.append(name)
        for option in self.pinning_options:
            if options.get(option) is not None:
                pins.append(option)
        return tuple(pins)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["transport"] = self.transport.value
        data["binding_scheme"] = self.binding_scheme
        return data


@attrs.frozen(kw_only=True)
class IssuerSpec:
    """A server-side evidence producer and the validator that appraises it."""

    id: str
    validator_id: str
    binding_scheme: str
    media_type: str
    transport: Transport
    oid: str | None = None
    """Extension OID for certificate-borne evidence."""
    description: str = ""
    settings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    insecure: bool = False


@runtime_checkable
class Validator(Protocol):
    """Verifies one kind of evidence; the core does the rest of the appraisal."""

    @property
    def spec(self) -> ValidatorSpec: ...

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        """Check signatures and chains, record facts, return the verified report data.

        Raise a specific :class:`~atls_core.errors.ATLSError` when the evidence is
        not genuine; record policy-relevant facts with the appraisal's setters
        (``measure``, ``claim``, ``set_tcb``, ``set_debug``...) and checks with
        ``require``/``fail``/``warn``.  ``appraisal.context`` is the connection
        being appraised, for checks beyond the report data (a key the evidence
        names must be the TLS key...).
        """
        ...

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        """The core's appraisal of ``evidence`` with this validator (see ValidatorBase)."""
        ...

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        """Certificate transport: pick this validator's evidence out of the leaf."""
        ...

    def challenge(self, nonce: bytes) -> ChallengeRequest:
        """Challenge transport: the request to send for this nonce."""
        ...

    def evidence_from_challenge(self, response: ChallengeResponse) -> Evidence:
        """Challenge transport: parse the server's answer."""
        ...

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        """Offline appraisal: read evidence from a file's bytes."""
        ...


class ValidatorBase:
    """Defaults for everything but :meth:`verify`.

    Subclasses set ``spec`` and implement ``verify`` plus whatever their
    transport needs.  The defaults refuse rather than guess.  ``appraise`` is
    the core's skeleton and is not meant to be overridden: the registry, the
    TLS layer and the CLI call :func:`atls_core.appraisal.appraise` directly.
    """

    spec: ValidatorSpec

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        raise NotImplementedError(f"{type(self).__name__} does not implement verify()")

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        from atls_core.appraisal import appraise

        return appraise(self, evidence, binding=binding, clock=clock, policy=policy)

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        from atls_core.evidence import EvidenceSource

        for oid in self.spec.oids:
            value = certificate.extension(oid)
            if value is not None:
                return Evidence(
                    media_type=self.spec.media_types[0],
                    data=value,
                    source=EvidenceSource(transport=Transport.CERTIFICATE, oid=oid),
                )
        raise MalformedEvidence(
            "the server certificate carries no evidence extension",
            check="evidence.extension",
            expected=list(self.spec.oids),
            actual=sorted(certificate.extensions),
        )

    def challenge(self, nonce: bytes) -> ChallengeRequest:
        raise ConfigurationError(
            f"{self.spec.id} does not fetch evidence by challenge", check="transport"
        )

    def evidence_from_challenge(self, response: ChallengeResponse) -> Evidence:
        raise ConfigurationError(
            f"{self.spec.id} does not fetch evidence by challenge", check="transport"
        )

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        from atls_core.evidence import EvidenceSource

        return Evidence(
            media_type=self.spec.media_types[0],
            data=data,
            source=EvidenceSource(transport=Transport.FILE, location=name),
        )

    # -- optional: configuration checks and inspection ------------------------

    def check_policy(self, policy: Policy) -> None:
        """Refuse, when configuration is loaded, a policy this validator could never apply.

        The core calls it once a validator is built for a policy
        (:func:`atls_core.selection.select_validator`, hence ``ATLSContext(config)``
        and ``atls config check``), so a policy option with an unusable value is a
        :class:`~atls_core.errors.ConfigurationError` there rather than a refusal
        at the first connection.  Names are checked by the core already; this is
        for values.  Default: nothing to check.
        """

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """Decode ``evidence`` for a person, WITHOUT verifying or appraising anything.

        Used by ``atls inspect``, the first thing to run when a server is refused:
        it shows what the evidence *claims* so the operator can see which value
        differs from the policy.  Return JSON-ready data (``bytes`` are shown as
        hex): by convention ``format`` (what was decoded), ``measurements``
        (``{name: hex}`` for the names of :attr:`ValidatorSpec.measurements`) and
        any other sections.  Raise :class:`~atls_core.errors.MalformedEvidence`
        when ``evidence`` is not this validator's format.  Must not need trust
        settings or the network.  Default: not supported.
        """
        raise ConfigurationError(
            f"{self.spec.id} cannot describe evidence", check="inspect.unsupported"
        )


@runtime_checkable
class Issuer(Protocol):
    """Server side: report data in, evidence out."""

    @property
    def spec(self) -> IssuerSpec: ...

    def issue(self, report_data: bytes) -> Evidence: ...


@runtime_checkable
class KeyBoundIssuer(Protocol):
    """Server side, for services that compute the report data themselves.

    Microsoft Azure Attestation (and services like it) take the *runtime data*
    (the TLS key and the client's nonce) and hash it into the report data
    on their own, so such an issuer cannot start from precomputed report
    data.  ``atls_core.server`` calls :meth:`issue_for_key` instead of
    :meth:`Issuer.issue` whenever an issuer has it.
    """

    @property
    def spec(self) -> IssuerSpec: ...

    def issue_for_key(self, spki_der: bytes, nonce: bytes | None) -> Evidence:
        """Evidence binding the certificate key ``spki_der`` (DER SubjectPublicKeyInfo).

        ``nonce`` is the client's nonce for a per-connection certificate and
        ``None`` for a static (key-only) one.
        """
        ...


ValidatorFactory = Callable[[Settings], Validator]
IssuerFactory = Callable[[Settings], Issuer | KeyBoundIssuer]

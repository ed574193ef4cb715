"""The contracts between the core and its plugins.

A plugin registers :class:`ValidatorSpec` + a factory (and/or
:class:`IssuerSpec` + a factory).  Factories receive the validator's
*settings* from configuration (secrets already resolved to
:class:`atls_core.config.Secret`) and return an object that satisfies
:class:`Validator` / :class:`Issuer`.  :class:`ValidatorBase` gives the
optional methods safe defaults so a plugin implements only what its
transport needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, Transport

if TYPE_CHECKING:
    from atls_core.binding import BindingContext
    from atls_core.certificate import PeerCertificate
    from atls_core.clock import Clock
    from atls_core.policy import Policy
    from atls_core.result import AttestationResult

__all__ = [
    "ChallengeRequest",
    "ChallengeResponse",
    "CliOption",
    "Issuer",
    "IssuerFactory",
    "IssuerSpec",
    "KeyBoundIssuer",
    "Settings",
    "Validator",
    "ValidatorBase",
    "ValidatorFactory",
    "ValidatorSpec",
    "refuse_unknown_names",
]

Settings = Mapping[str, Any]
"""Validator/issuer settings from configuration (``[hosts."x".settings]``)."""


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


def refuse_unknown_names(
    kind: str, given: Mapping[str, Any], allowed: tuple[str, ...], *, where: str
) -> None:
    """Refuse names a spec does not declare: a typo must never be silently ignored.

    ``kind`` is ``settings``, ``policy options`` or ``reference values``; the
    error's check is ``config.<kind>``.
    """
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown {kind} {unknown}",
            check=f"config.{kind.replace(' ', '_')}",
            expected=sorted(allowed),
            actual=unknown,
        )


@attrs.frozen(kw_only=True)
class ValidatorSpec:
    """What a validator is and how its evidence travels; no code, only facts."""

    id: str
    """``<plugin>.<name>``: the prefix is the plugin's entry-point name."""
    media_types: tuple[str, ...] = attrs.field(converter=_tuple)
    binding_scheme: str
    """Name of a scheme in :data:`atls_core.binding.SCHEMES`."""
    transport: Transport
    tee_type: str
    """``tdx``, ``sgx``, ``sev-snp``, ``simulated``..."""
    oids: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Certificate extension OIDs this validator reads (as parsed from the wire)."""
    scheme_version: int = 1
    plugin_version: str = "0"
    description: str = ""
    measurements: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Names usable in ``policy.reference_values``; others are refused."""
    policy_options: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Validator-specific policy keys; others are refused."""
    settings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Setting keys the factory understands; others are refused."""
    insecure: bool = False
    """A test validator: refused unless configuration allows insecure validators."""

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["transport"] = self.transport.value
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
    plugin_version: str = "0"
    description: str = ""
    settings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    insecure: bool = False


def _frozen_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class ChallengeRequest:
    """An HTTP request the core sends over the just-appraised-to-be connection."""

    method: str = "POST"
    path: str
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_headers)
    body: bytes = b""
    max_response_bytes: int = 4 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ChallengeResponse:
    status: int
    headers: Mapping[str, str] = attrs.field(converter=_frozen_headers)
    body: bytes


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


@runtime_checkable
class Validator(Protocol):
    """Turns evidence + binding context + clock + policy into a result or an error."""

    @property
    def spec(self) -> ValidatorSpec: ...

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult: ...

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
    """Defaults for the optional parts of :class:`Validator`.

    Subclasses set ``spec`` and implement ``appraise`` plus whatever their
    transport needs.  The defaults refuse rather than guess.
    """

    spec: ValidatorSpec

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        raise NotImplementedError

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

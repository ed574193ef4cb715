"""``ATLSContext([validators])``: pyatls's list of validators on atls's TLS context.

The context is atls-core's :class:`~atls_core.tls.ATLSContext` (appraisal
before the first application byte, TLS 1.2+, no renegotiation, a fresh nonce
per connection); only the way it is built is pyatls's.  A list of several
validators becomes one :class:`ValidatorList`, which decides exactly as
pyatls's ``ATLSContext`` did:

* the validators are tried in list order; a validator is tried when the
  server's certificate carries an extension it reads (pyatls's ``accepts``);
* the first one that accepts decides, and its result is the connection's;
* if none accepts, the connection is refused with the outcome of the first
  one tried (its refused result, or the error it raised);
* if the certificate carries no extension any of them reads, it is refused
  with check ``evidence.extension``.

So two ``AciValidator`` with different policies accept a container that either
policy allows, as in pyatls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from atls_azure import specs as azure_specs
from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import Clock
from atls_core.errors import ATLSError, ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Validator as CoreValidator
from atls_core.interfaces import ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.tls import AppraisalCache
from atls_core.tls import ATLSContext as CoreATLSContext
from atls_pyatls.azure import CvmValidator
from atls_pyatls.validator import Validator

__all__ = ["CERTIFICATE_MEDIA_TYPE", "ATLSContext", "ValidatorList"]

CERTIFICATE_MEDIA_TYPE = "application/pkix-cert"
"""What a :class:`ValidatorList` appraises: the whole leaf certificate (DER)."""

Member = AppraiserLike | CvmValidator


def _member(item: object) -> Member:
    if isinstance(item, CvmValidator | AppraiserLike):
        return item
    if isinstance(item, Validator):
        raise ConfigurationError(
            "a validator written for pyatls (accepts/validate returning a bool) cannot decide "
            "an atls connection: port it to an atls validator (atls_core.interfaces."
            "ValidatorBase.verify returns the report data the core binds and appraises)",
            check="pyatls.validator",
            actual=type(item).__name__,
        )
    raise ConfigurationError(
        "ATLSContext takes a list of validators",
        check="pyatls.validator",
        actual=type(item).__name__,
    )


def _members(value: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(value)


def _oids(member: Member) -> tuple[str, ...]:
    return (azure_specs.CVM_OID,) if isinstance(member, CvmValidator) else member.spec.oids


class _WholeCertificate(ValidatorBase):
    """The list's transport: the leaf goes on whole, each member picks its own evidence."""

    def __init__(self, spec: ValidatorSpec) -> None:
        self.spec = spec

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        return Evidence(
            media_type=CERTIFICATE_MEDIA_TYPE,
            data=certificate.der,
            source=EvidenceSource(transport=Transport.CERTIFICATE),
        )


@attrs.frozen
class ValidatorList:
    """Several validators for one connection, tried in order (see the module docstring).

    All of them must read certificate-borne evidence, send the nonce in the
    same SNI form and agree on ``pki``: the server name is chosen before the
    certificate is seen.
    """

    members: tuple[Member, ...] = attrs.field(converter=_members)

    def __attrs_post_init__(self) -> None:
        appraisers = self._appraisers
        if not appraisers:
            raise ConfigurationError(
                "ATLSContext needs a validator that can appraise (CvmValidator cannot)",
                check="pyatls.validators",
            )
        for name, values in (
            ("transport", {a.spec.transport for a in appraisers}),
            ("sni_form", {a.spec.sni_form for a in appraisers}),
            ("pki", {a.pki for a in appraisers}),
        ):
            if len(values) > 1:
                raise ConfigurationError(
                    f"validators in one ATLSContext must agree on {name}",
                    check="pyatls.validators",
                    actual=sorted(str(v) for v in values),
                )
        if appraisers[0].spec.transport is not Transport.CERTIFICATE:
            raise ConfigurationError(
                "only validators of certificate-borne evidence can be tried in order",
                check="pyatls.validators",
                actual=appraisers[0].spec.id,
            )

    @property
    def _appraisers(self) -> list[AppraiserLike]:
        return [m for m in self.members if not isinstance(m, CvmValidator)]

    # -- AppraiserLike ------------------------------------------------------------

    @property
    def spec(self) -> ValidatorSpec:
        """The first appraiser's spec: its transport and SNI form are the list's."""
        return self._appraisers[0].spec

    @property
    def validator(self) -> CoreValidator:
        return _WholeCertificate(self.spec)

    @property
    def policy(self) -> Policy:
        return self._appraisers[0].policy

    @property
    def pki(self) -> bool:
        return self._appraisers[0].pki

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> AttestationResult:
        if evidence.media_type != CERTIFICATE_MEDIA_TYPE:
            raise ConfigurationError(
                "a validator list appraises the server's whole certificate",
                check="pyatls.validators",
                expected=CERTIFICATE_MEDIA_TYPE,
                actual=evidence.media_type,
            )
        certificate = PeerCertificate.from_der(evidence.data)
        first: AttestationResult | ATLSError | None = None
        for member in self.members:
            if not any(certificate.extension(oid) is not None for oid in _oids(member)):
                continue
            outcome = self._try(member, certificate, binding=binding, clock=clock, host=host)
            if isinstance(outcome, AttestationResult) and outcome.accepted:
                return outcome
            first = first if first is not None else outcome
        if first is None:
            raise MalformedEvidence(
                "the server certificate carries no extension a listed validator reads",
                check="evidence.extension",
                expected=sorted({oid for m in self.members for oid in _oids(m)}),
                actual=sorted(certificate.extensions),
            )
        if isinstance(first, ATLSError):
            raise first
        return first

    @staticmethod
    def _try(
        member: Member, certificate: PeerCertificate, **context: Any
    ) -> AttestationResult | ATLSError:
        if isinstance(member, CvmValidator):
            return ConfigurationError(
                "pyatls's CvmValidator validates nothing; use atls-azure's azure.cvm validator "
                "pinned by VM ID",
                check="pyatls.cvm",
            )
        try:
            return member.appraise(
                member.validator.evidence_from_certificate(certificate), **context
            )
        except ATLSError as error:
            return error


class ATLSContext(CoreATLSContext):
    """pyatls's ``ATLSContext(validators)``: an atls client context.

    ``validators`` holds :class:`~atls_pyatls.azure.AciValidator`,
    :class:`~atls_pyatls.azure.CvmValidator` or any atls validator
    (``atls_core.selection.select_validator(...)``, ``atls_azure.aci.AciValidator``).
    Unlike pyatls, one context serves any number of connections (each gets its
    own nonce), ``nonce=`` is refused, and no verdict is cached.
    """

    def __init__(self, validators: Sequence[object], nonce: bytes | None = None) -> None:
        if nonce is not None:
            raise ConfigurationError(
                "atls draws a fresh nonce for every connection; a fixed nonce would let "
                "one connection's evidence answer the next",
                check="pyatls.nonce",
            )
        if isinstance(validators, str | bytes) or not isinstance(validators, Sequence):
            raise ConfigurationError(
                "ATLSContext takes a list of validators",
                check="pyatls.validators",
                actual=type(validators).__name__,
            )
        members = [_member(item) for item in validators]
        if not members:
            raise ConfigurationError(
                "At least one validator is necessary", check="pyatls.validators"
            )
        only = members[0]
        selected: AppraiserLike = (
            only
            if len(members) == 1 and not isinstance(only, CvmValidator)
            else ValidatorList(members)
        )
        # pyatls appraised every handshake; so does this context (no key-only verdict cache).
        super().__init__(validator=selected, cache=AppraisalCache(max_entries=0))
        self._validators = tuple(validators)

    @property
    def validators(self) -> list[object]:
        """The validators, in the order they are tried."""
        return list(self._validators)

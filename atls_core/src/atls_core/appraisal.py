"""The appraisal skeleton: the core's, for every validator.

:func:`appraise` is the only way evidence becomes a result.  It checks the
media type, gives the plugin's :meth:`~atls_core.interfaces.Validator.verify`
a fresh :class:`Appraisal` to record facts on, binds the report data that
``verify`` returns to the TLS key and nonce with a scheme the spec declares
(:mod:`atls_core.binding`), applies the one common policy and builds the
EAR-shaped result.  A plugin cannot skip the binding or the policy: it never
sees the result before the core has finished it.

The common policy (:meth:`Appraisal.finish`): the binding, TCB status and
advisories, debug, reference values, **the pinning rule** (a policy must pin
one of the workload-identity measurements the spec declares, or say
``allow_any_workload``), freshness and maximum age.  The status starts at
``none``; ``affirming`` needs a binding, a TCB verdict (or a stated reason for
none) and no failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from atls_core import result as r
from atls_core._version import __version__ as core_version
from atls_core.binding import Binding, BindingContext, Freshness, bind
from atls_core.clock import Clock
from atls_core.errors import ATLSError, StaleEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import ReportData, Validator, ValidatorSpec
from atls_core.policy import TCB_STATUSES, Policy, is_unset

if TYPE_CHECKING:
    from atls_core.registry import PluginInfo, PluginManager

__all__ = ["Appraisal", "appraise"]

log = logging.getLogger("atls.appraisal")
if not logging.getLogger("atls").handlers:
    # a library stays silent until the application configures logging (see the README)
    logging.getLogger("atls").addHandler(logging.NullHandler())


def _hex(value: object) -> str | None:
    """A measurement's value as lowercase hex; ``None`` for what is neither bytes nor text."""
    if type(value) is bytes:  # nearly every measurement: skip the checks below
        return value.hex()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text[2:] if text.startswith("0x") else text


@functools.lru_cache(maxsize=64)
def _names(declared: tuple[str, ...]) -> frozenset[str]:
    """A spec's measurement names as a set, once per spec (``measure`` runs ~20 times each)."""
    return frozenset(declared)


def _aware(when: object) -> bool:
    """Whether ``when`` is a datetime with a timezone, comparable to ``Appraisal.now``."""
    if type(when) is dt.datetime and when.tzinfo is dt.UTC:  # nearly every call
        return True
    return isinstance(when, dt.datetime) and when.utcoffset() is not None


class _Ranks(dict[int, int]):
    """AR4SI claim value -> the rank of its status tier, remembered for the first 256
    values: every vector write compares two, and the result takes the worst."""

    def __missing__(self, value: int) -> int:
        rank = r.Status.of_claim(value).rank
        if len(self) < 256:
            self[value] = rank
        return rank


_RANKS = _Ranks()
_claim_rank = _RANKS.__getitem__


_BY_RANK = {status.rank: status for status in r.Status}


@functools.lru_cache(maxsize=64)
def _verifier(validator: str, plugin_version: str) -> r.Verifier:
    """Who appraised: one frozen record shared by every result of a validator."""
    return r.Verifier(
        validator=validator,
        plugin=validator.split(".", 1)[0],
        plugin_version=plugin_version,
        core_version=core_version,
    )


@functools.lru_cache(maxsize=64)
def _distribution_of(module: str) -> tuple[str, str]:
    """(distribution, version) that installs top-level ``module``, from metadata."""
    import importlib.metadata as md

    for name in md.packages_distributions().get(module, ()):
        try:
            return name, md.version(name)
        except md.PackageNotFoundError:
            continue
    # Editable installs do not list their top-level modules; their entry points do.
    for ep in md.entry_points(group="atls"):
        if ep.value.partition(".")[0].partition(":")[0] == module and ep.dist is not None:
            return ep.dist.metadata["Name"], ep.dist.version
    return module, "unknown"


def appraise(
    validator: Validator,
    evidence: Evidence,
    *,
    binding: BindingContext,
    clock: Clock,
    policy: Policy,
    plugin: PluginInfo | None = None,
    host: str | None = None,
    manager: PluginManager | None = None,
    test_knobs: Sequence[str] = (),
    allow_insecure: bool = False,
) -> r.AttestationResult:
    """Appraise ``evidence`` with ``validator``: the one skeleton (see the module docstring).

    Returns the finished result (accepted or not) or raises the specific
    :class:`~atls_core.errors.ATLSError` of evidence that is not genuine or not
    bound.  Logs one record per appraisal on ``atls.appraisal``.  ``manager``
    finds the validators :meth:`Appraisal.hand_over` names (default: the
    installed plugins); ``test_knobs`` names tests-only settings in force,
    which cap the result at ``warning`` and are recorded in its claims.
    """
    spec = validator.spec
    try:
        evidence.require_media_type(*spec.media_types)
        if plugin is not None:
            version = plugin.version
        else:
            version = _distribution_of(type(validator).__module__.partition(".")[0])[1]
        appraisal = Appraisal(
            spec=spec, policy=policy, evidence=evidence, clock=clock, context=binding
        )
        appraisal._plugin_version = version
        appraisal._manager = manager
        appraisal._allow_insecure = allow_insecure
        if test_knobs:
            appraisal.claim("test_knobs", sorted(test_knobs))
            appraisal.warn(
                "insecure.test_knob",
                "tests-only settings are in force (" + ", ".join(sorted(test_knobs)) + "): "
                "this result must never protect real secrets",
            )
        report = validator.verify(evidence, appraisal)
        if not isinstance(report, ReportData):
            raise ATLSError(
                f"{spec.id}: verify() must return ReportData, not {type(report).__name__}",
                check="plugins.contract",
            )
        scheme = report.scheme or spec.binding_schemes[0]
        if scheme not in spec.binding_schemes:
            # The plugin's bug, not evidence bound elsewhere: a BindingMismatch read like an attack.
            raise ATLSError(
                f"{spec.id}: verify() returned ReportData(scheme={scheme!r}), a scheme its "
                "spec's binding_schemes does not declare",
                check="plugins.contract",
                expected=list(spec.binding_schemes),
                actual=scheme,
            )
        appraisal._binding = bind(scheme, binding, report.value, material=report.material)
        result = appraisal.finish()
    except ATLSError as error:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "refused host=%s validator=%s check=%s: %s",
                host,
                spec.id,
                error.check,
                error.reason,
            )
        raise
    _log_result(result, host)
    return result


def _log_result(result: r.AttestationResult, host: str | None) -> None:
    # Every appraisal passes here: build a message only for a level that is enabled.
    validator = result.verifier.validator
    if not result.accepted:
        if log.isEnabledFor(logging.INFO):
            failed = ",".join(f.check for f in result.failures if f.enforced)
            log.info(
                "refused host=%s validator=%s status=%s failed=%s",
                host,
                validator,
                result.status.value,
                failed,
            )
    elif result.warnings:
        if log.isEnabledFor(logging.WARNING):
            log.warning(
                "accepted with warnings host=%s validator=%s status=%s warnings=%s",
                host,
                validator,
                result.status.value,
                "; ".join(result.warnings),
            )
    elif log.isEnabledFor(logging.INFO):
        log.info("accepted host=%s validator=%s status=%s", host, validator, result.status.value)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "result host=%s validator=%s evidence=%s policy=%s@%s binding=%s/%s tcb=%s",
            host,
            validator,
            result.evidence_digest,
            result.policy_id,
            result.policy_digest[:16],
            result.binding.scheme,
            result.binding.freshness.value,
            result.tcb.status,
        )


class Appraisal:
    """The record of one appraisal: plugins write facts through setters only.

    Built by :func:`appraise` and handed to ``Validator.verify``; what the
    plugin may read is read-only (``spec``, ``policy``, ``evidence``, ``now``,
    ``context``, the facts recorded so far).  :meth:`finish` is the core's.
    """

    def __init__(
        self,
        *,
        spec: ValidatorSpec,
        policy: Policy,
        evidence: Evidence,
        clock: Clock,
        context: BindingContext | None = None,
    ) -> None:
        self._spec = spec
        self._policy = policy
        self._evidence = evidence
        self._now = clock.now()
        self._context = context if context is not None else BindingContext.offline_context()
        self._plugin_version = "unknown"
        self._manager: PluginManager | None = None
        self._allow_insecure = False
        self._handed_over: list[str] = []
        self._tee_type = spec.tee_type
        self._debug: bool | None = None
        self._measurements: dict[str, str] = {}
        self._measurement_names = _names(spec.measurements)
        self._claims: dict[str, Any] = {}
        self._tcb_status: str | None = None
        self._advisory_ids: tuple[str, ...] = ()
        self._tcb_date: dt.datetime | None = None
        self._tcb_evaluation_data_number: int | None = None
        self._binding: Binding | None = None
        self._evidence_time: dt.datetime | None = None
        self._vector: dict[str, int] = {}
        self._failures: list[r.Failure] = []
        self._warnings: list[str] = []
        self._expiries: list[tuple[dt.datetime, str]] = []
        self._no_tcb_reason: str | None = None

    # -- what a plugin may read ------------------------------------------------

    @property
    def spec(self) -> ValidatorSpec:
        return self._spec

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def evidence(self) -> Evidence:
        return self._evidence

    @property
    def now(self) -> dt.datetime:
        """The appraisal time (the injected clock, read once)."""
        return self._now

    @property
    def context(self) -> BindingContext:
        """The connection being appraised (offline context for files)."""
        return self._context

    @property
    def tee_type(self) -> str:
        return self._tee_type

    @property
    def debug(self) -> bool | None:
        return self._debug

    @property
    def measurements(self) -> Mapping[str, str]:
        return MappingProxyType(self._measurements)

    @property
    def claims(self) -> Mapping[str, Any]:
        return MappingProxyType(self._claims)

    @property
    def tcb_status(self) -> str | None:
        return self._tcb_status

    @property
    def binding(self) -> Binding | None:
        """Set by the core after ``verify`` returns."""
        return self._binding

    # -- facts ---------------------------------------------------------------

    def measure(self, name: str, value: bytes | str) -> None:
        """Record measurement ``name``, one the spec declares: bytes (kept as lowercase
        hex) or text (kept lowercase, a leading ``0x`` dropped: hex, or a number written
        in decimal as some services report SVNs).

        An undeclared name is refused: no policy could pin it (reference values
        name declared measurements only), yet it would show in an accepted result.
        A validator handed evidence (:meth:`hand_over`) records on this spec: a
        container's spec declares what its delegate measures.
        """
        if type(value) is bytes and name in self._measurement_names:
            self._measurements[name] = value.hex()  # nearly every call: the checks below pass
            return
        if name not in self._measurement_names:
            raise self._misuse(
                "measure",
                f"{name!r} is not one of the spec's measurements (declare it in "
                "ValidatorSpec(measurements=...))",
                expected=sorted(self._measurement_names),
                actual=name,
            )
        text = _hex(value)
        if text is None:
            raise self._misuse(
                "measure",
                f"{name!r} must be bytes or text, not {type(value).__name__} (a number is "
                'measured as text, str(value), or as bytes, value.to_bytes(2, "big"))',
            )
        self._measurements[name] = text

    def claim(self, name: str, value: Any) -> None:
        self._claims[name] = value

    def hand_over(
        self, evidence: Evidence, *, validator: str, settings: Mapping[str, Any] | None = None
    ) -> ReportData:
        """Verify embedded evidence of another kind with another plugin's validator.

        A container format (dstack's attestation extension carrying a SEV-SNP
        report...) hands its payload to the validator ``validator`` names,
        which verifies it and records its facts on *this* appraisal; the
        returned report data is then this validator's to return.  The other
        plugin is found through the registry, so neither plugin imports the
        other; when it is not installed the error says which one to install.
        """
        from atls_core.errors import MalformedEvidence
        from atls_core.registry import default_manager

        manager = self._manager or default_manager()
        try:
            spec, factory, plugin = manager.validator_factory(validator)
        except ATLSError as error:
            raise MalformedEvidence(
                f"{self._spec.id} carries evidence that {validator} verifies, and that "
                f"validator is not available ({error.reason}); install the plugin that "
                f"provides {validator.partition('.')[0]!r}",
                check="evidence.hand_over",
                expected=validator,
                actual=evidence.media_type,
            ) from error
        evidence.require_media_type(*spec.media_types)
        from atls_core.selection import check_against_spec

        given = dict(settings or {})
        knobs = check_against_spec(
            spec,
            settings=given,
            policy=None,
            allow_insecure=self._allow_insecure,
            where=f"{self._spec.id} hand-over to {validator}",
        )
        if knobs:
            self.warn("insecure.test_knob", f"tests-only settings in the hand-over: {knobs}")
        delegate = factory(given)
        self._handed_over.append(f"{validator} ({plugin.distribution} {plugin.version})")
        self._claims["handed_over_to"] = list(self._handed_over)
        report = delegate.verify(evidence, self)
        if not isinstance(report, ReportData):
            raise ATLSError(
                f"{validator}: verify() must return ReportData, not {type(report).__name__}",
                check="plugins.contract",
            )
        return report

    def set_debug(self, debuggable: bool) -> None:
        """Whether the TEE can be debugged; once set to ``True`` it stays ``True``."""
        self._debug = bool(debuggable) or bool(self._debug)

    def set_tee_type(self, tee_type: str) -> None:
        """Refine the spec's TEE type (a CVM token says whether it is SEV-SNP or TDX)."""
        self._tee_type = tee_type

    def set_tcb(
        self,
        status: str,
        advisory_ids: tuple[str, ...] | list[str] = (),
        *,
        date: dt.datetime | None = None,
        evaluation_data_number: int | None = None,
    ) -> None:
        self._tcb_status = status
        self._advisory_ids = tuple(a.upper() for a in advisory_ids) if advisory_ids else ()
        self._tcb_date = date
        self._tcb_evaluation_data_number = evaluation_data_number

    def no_tcb(self, reason: str) -> None:
        """This evidence carries no TCB verdict (a token service judged it); say why.

        The default policy accepts that with a warning; a policy that lists
        accepted TCB statuses refuses it (see :mod:`atls_core.policy`).
        """
        self._no_tcb_reason = reason

    def valid_until(self, when: dt.datetime, reason: str) -> None:
        """The result may not outlive ``when`` (collateral next-update, token exp): a
        timezone-aware datetime, else the comparison with ``now`` would fail later."""
        if not _aware(when):
            raise self._naive("valid_until", when)
        self._expiries.append((when, reason))

    def set_evidence_time(self, when: dt.datetime) -> None:
        """When the evidence was produced (token ``iat``), timezone-aware; for ``max_age``."""
        if not _aware(when):
            raise self._naive("set_evidence_time", when)
        self._evidence_time = when

    def _misuse(self, setter: str, problem: str, **values: Any) -> ATLSError:
        """A setter called wrongly: the plugin's bug (``plugins.contract``), named as such."""
        return ATLSError(
            f"{self._spec.id}: appraisal.{setter}(): {problem}", check="plugins.contract", **values
        )

    def _naive(self, setter: str, when: object) -> ATLSError:
        kind = "a naive datetime" if isinstance(when, dt.datetime) else type(when).__name__
        return self._misuse(
            setter,
            f"takes a timezone-aware datetime, not {kind} (e.g. "
            "datetime.fromtimestamp(seconds, datetime.UTC))",
        )

    def set_vector(self, claim: str, value: int) -> None:
        """Record an AR4SI claim; the worse of two values wins."""
        old = self._vector.get(claim)
        if old is None or _claim_rank(value) > _claim_rank(old):
            self._vector[claim] = value

    # -- verdicts ------------------------------------------------------------

    def fail(
        self,
        check: str,
        message: str,
        *,
        expected: Any = None,
        actual: Any = None,
        vector: tuple[str, int] | None = None,
    ) -> None:
        self._failures.append(
            r.Failure(check=check, message=message, expected=expected, actual=actual)
        )
        if vector:
            self.set_vector(*vector)

    def warn(self, check: str, message: str, *, vector: tuple[str, int] | None = None) -> None:
        self._warnings.append(f"{check}: {message}")
        if vector:
            self.set_vector(*vector)

    def require(
        self,
        check: str,
        ok: bool,
        message: str,
        *,
        expected: Any = None,
        actual: Any = None,
        enforce: bool = True,
        vector: tuple[str, int] | None = None,
    ) -> bool:
        """Record a check; enforced failures reject, warn-only ones warn."""
        if ok:
            return True
        if enforce:
            self.fail(check, message, expected=expected, actual=actual, vector=vector)
        else:
            self._failures.append(
                r.Failure(
                    check=check, message=message, expected=expected, actual=actual, enforced=False
                )
            )
            self.warn(check, f"{message} (warn-only)")
        return False

    # -- common policy (the core's) -------------------------------------------

    def _apply_common_policy(self) -> None:
        policy = self._policy
        binding = self._binding
        if binding is None:
            self.fail("binding.missing", "the validator recorded no binding")
        elif binding.freshness is Freshness.UNBOUND:
            self.warn("binding.offline", "offline appraisal: the TLS binding was not checked")
        elif policy.require_nonce and binding.freshness is not Freshness.NONCE:
            self.fail(
                "freshness.nonce",
                "policy requires nonce freshness",
                expected=Freshness.NONCE.value,
                actual=binding.freshness.value,
                vector=("instance_identity", r.IDENTITY_CONTRAINDICATED),
            )
        else:
            self.set_vector("instance_identity", r.IDENTITY_RECOGNIZED)
        self._apply_tcb(policy)
        self._apply_debug(policy)
        self._apply_reference_values()
        self._apply_pinning()
        self._apply_max_age(policy)

    def _apply_tcb(self, policy: Policy) -> None:
        status = self._tcb_status
        accepted = policy.tcb_statuses
        if status is None:
            if self._no_tcb_reason is None:
                self.fail(
                    "tcb.status",
                    "the validator recorded no TCB status (its verify() must call "
                    "appraisal.set_tcb(...), or appraisal.no_tcb(reason) when a service "
                    "judged the TCB)",
                )
            elif policy.tcb_status_required:
                self.fail(
                    "tcb.status",
                    "the evidence carries no TCB status and policy lists the statuses it "
                    f"accepts ({self._no_tcb_reason})",
                    expected=sorted(accepted),
                    actual=None,
                    vector=("hardware", r.HW_UNSAFE),
                )
            else:
                self.warn("tcb", self._no_tcb_reason)
        elif status not in accepted:
            self.fail(
                "tcb.status",
                "TCB status is not in the policy's accepted_tcb_statuses"
                if status in TCB_STATUSES
                else "TCB status is none of the names atls knows (atls_core.policy.TCB_STATUSES): "
                "the validator must map its TEE's verdict onto them",
                expected=sorted(accepted),
                actual=status,
                vector=("hardware", r.HW_CONTRAINDICATED),
            )
        elif status == "UpToDate":
            self.set_vector("hardware", r.HW_GENUINE)
        else:
            self.warn("tcb.status", f"accepted by policy: {status}")
            self.set_vector("hardware", r.HW_UNSAFE)

        unlisted = (
            sorted(set(self._advisory_ids) - policy.accepted_advisory_ids)
            if self._advisory_ids
            else None
        )
        if unlisted:
            self.fail(
                "tcb.advisories",
                "advisories not in the policy's accepted_advisory_ids",
                expected=sorted(policy.accepted_advisory_ids),
                actual=unlisted,
                vector=("hardware", r.HW_CONTRAINDICATED),
            )
        elif self._advisory_ids:
            self.warn("tcb.advisories", "accepted by policy: " + ", ".join(self._advisory_ids))

    def _apply_debug(self, policy: Policy) -> None:
        if self._debug is None:
            self.fail(
                "debug",
                "the validator did not say whether the TEE is debuggable (its verify() "
                "must call appraisal.set_debug(...))",
            )
        elif self._debug and not policy.allow_debug:
            self.fail(
                "debug",
                "the TEE is in debug mode",
                expected=False,
                actual=True,
                vector=("runtime_opaque", r.OPAQUE_VISIBLE),
            )
        elif self._debug:
            self.warn("debug", "debug TEE accepted by policy", vector=("runtime_opaque", 32))
        else:
            self.set_vector("runtime_opaque", r.OPAQUE_ENCRYPTED)

    def _apply_reference_values(self) -> None:
        references = self._policy.reference_values
        if not references:
            return
        measurements = self._measurements
        for name, reference in references.items():  # a loop, not all(): every appraisal asks
            actual = measurements.get(name)
            if actual is None or not reference.matches(actual):
                break
        else:  # every appraisal that passes: no failure to describe
            self.set_vector("executables", r.EXEC_APPROVED)
            return
        approved = True
        for name, reference in sorted(references.items()):
            actual = measurements.get(name)
            if actual is None:
                approved = False
                self.require(
                    f"reference.{name}",
                    False,
                    "measurement not present in the evidence",
                    expected=sorted(reference.accepted),
                    actual=None,
                    enforce=reference.enforce,
                    vector=("executables", r.EXEC_CONTRAINDICATED),
                )
                continue
            if not self.require(
                f"reference.{name}",
                reference.matches(actual),
                "measurement does not match the reference value",
                expected=sorted(reference.accepted),
                actual=actual,
                enforce=reference.enforce,
                vector=("executables", r.EXEC_CONTRAINDICATED),
            ):
                approved = False
                if not reference.enforce:
                    self.set_vector("executables", r.EXEC_UNRECOGNIZED)
        if approved:
            self.set_vector("executables", r.EXEC_APPROVED)

    def _apply_pinning(self) -> None:
        """The one pinning rule: a genuine TEE running *anything* is not enough.

        Anyone who rents a confidential VM gets genuine evidence bound to their
        own key; only a pinned workload identity tells the server apart.
        """
        spec, policy = self._spec, self._policy
        if spec.pins_in(policy):
            return
        identity = spec.workload_identity
        carried = {  # what could pin this workload
            name: value
            for name in identity
            if (value := self._measurements.get(name)) is not None and not is_unset(value)
        }
        if policy.allow_any_workload:
            self.warn(
                "workload.unpinned",
                "policy pins no workload identity and allows any workload: any genuine "
                f"{self._tee_type} TEE running anything is accepted",
                vector=("executables", r.EXEC_UNRECOGNIZED),
            )
            return  # the appraisal's one WARNING record says so (see _log_result)
        unset = sorted(
            name
            for name in identity
            if (reference := policy.reference_values.get(name)) is not None
            and reference.enforce
            and reference.admits_unset
        )
        ways = list(spec.ways_to_pin)
        hint = (
            "; this evidence carries "
            + ", ".join(f'{name} = "{value}"' for name, value in carried.items())
            if carried
            else ""
        )
        zero = (
            f"; {', '.join(f'reference_values.{n}' for n in unset)} accepts all zeros, the "
            "value of a measurement that is not set, which identifies no workload"
            if unset
            else ""
        )
        self.fail(
            "workload.unpinned",
            "policy pins no workload identity, so any genuine TEE running anything would "
            f"pass: pin one of {', '.join(ways) or '(nothing: this validator cannot pin)'}"
            f"{zero}{hint} (or set allow_any_workload = true to explore)",
            expected=ways,
            actual=carried,
            vector=("executables", r.EXEC_UNRECOGNIZED),
        )

    def _apply_max_age(self, policy: Policy) -> None:
        if policy.max_age is None:
            return
        born = self._evidence_time
        if born is None:
            self.warn("freshness.max_age", "evidence carries no time; max_age bounds the result")
        elif self._now - born > policy.max_age:
            raise StaleEvidence(
                "evidence is older than policy max_age",
                check="freshness.max_age",
                expected=f"<= {policy.max_age.total_seconds():.0f}s",
                actual=f"{(self._now - born).total_seconds():.0f}s",
            )
        # A (server-supplied) time after "now" must not stretch the result's life.
        start = self._now if born is None else min(born, self._now)
        self.valid_until(start + policy.max_age, "policy max_age")

    # -- the result ----------------------------------------------------------

    def finish(self) -> r.AttestationResult:
        """Apply the common policy and freeze the result (called by :func:`appraise`)."""
        self._apply_common_policy()
        expires_at: dt.datetime | None = None
        reason: str | None = None
        if self._expiries:
            expires_at, reason = self._expiries[0]
            for when, why in self._expiries[1:]:
                if when < expires_at:
                    expires_at, reason = when, why
        if expires_at is not None and self._now >= expires_at:
            self.fail(
                "freshness.expired",
                f"the result would already be expired ({reason})",
                expected=f"before {expires_at.isoformat()}",
                actual=self._now.isoformat(),
            )
        vector = r.TrustworthinessVector(**self._vector)
        status = r.Status.NONE
        failures = self._failures
        if failures and any(f.enforced for f in failures):
            status = r.Status.CONTRAINDICATED
        elif self._binding is not None and (
            self._tcb_status is not None or self._no_tcb_reason is not None
        ):
            rank = 0
            for value in self._vector.values():  # a loop, not max(map()): every appraisal
                if (claimed := _RANKS[value]) > rank:
                    rank = claimed
            worst = _BY_RANK[rank]
            if worst is r.Status.CONTRAINDICATED:
                status = r.Status.CONTRAINDICATED  # a contraindicating claim never affirms
            elif self._warnings or worst is r.Status.WARNING:
                status = r.Status.WARNING
            else:
                status = r.Status.AFFIRMING
        spec = self._spec
        return r.AttestationResult(
            status=status,
            trustworthiness=vector,
            verifier=_verifier(spec.id, self._plugin_version),
            policy_id=self._policy.id,
            policy_digest=self._policy.digest,
            evidence_digest=self._evidence.digest,
            binding=self._binding
            or Binding(scheme=spec.binding_scheme, freshness=Freshness.UNBOUND, verified=False),
            tee_type=self._tee_type,
            debug=self._debug,
            tcb=r.Tcb(
                status=self._tcb_status,
                advisory_ids=self._advisory_ids,
                date=self._tcb_date,
                evaluation_data_number=self._tcb_evaluation_data_number,
            ),
            measurements=self._measurements,
            claims=self._claims,
            warnings=tuple(self._warnings),
            failures=tuple(failures),
            issued_at=self._now,
            expires_at=expires_at,
            expiry_reason=reason,
        )

"""Building a result: validators record facts, the core applies common policy.

A validator verifies signatures and chains itself (and raises specific errors
when they fail), then records what it verified here: measurements, claims, TCB,
debug flag, the binding, expiry candidates.  :meth:`Appraisal.finish` applies
the policy checks every TEE shares (TCB status, advisories, debug, reference
values, freshness, maximum age) and derives the status tier and the AR4SI
trustworthiness vector.  The status starts at ``none``; ``affirming`` needs a
binding and a TCB verdict and no failure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from atls_core import result as r
from atls_core._version import __version__ as core_version
from atls_core.binding import Binding, Freshness
from atls_core.clock import Clock
from atls_core.errors import StaleEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import ValidatorSpec
from atls_core.policy import Policy

__all__ = ["Appraisal"]


def _hex(value: bytes | str) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    text = value.strip().lower()
    return text[2:] if text.startswith("0x") else text


class Appraisal:
    """Mutable scratchpad for one appraisal; :meth:`finish` freezes it."""

    def __init__(
        self,
        *,
        spec: ValidatorSpec,
        policy: Policy,
        evidence: Evidence,
        clock: Clock,
        plugin: str | None = None,
    ) -> None:
        self.spec = spec
        self.policy = policy
        self.evidence = evidence
        self.now = clock.now()
        self.plugin = plugin or spec.id.split(".", 1)[0]
        self.tee_type = spec.tee_type
        self.debug: bool | None = None
        self.measurements: dict[str, str] = {}
        self.claims: dict[str, Any] = {}
        self.tcb_status: str | None = None
        self.advisory_ids: tuple[str, ...] = ()
        self.tcb_date: dt.datetime | None = None
        self.tcb_evaluation_data_number: int | None = None
        self.binding: Binding | None = None
        self.evidence_time: dt.datetime | None = None
        self.vector: dict[str, int] = {}
        self._failures: list[r.Failure] = []
        self._warnings: list[str] = []
        self._expiries: list[tuple[dt.datetime, str]] = []
        self._tcb_required = True

    # -- facts ---------------------------------------------------------------

    def measure(self, name: str, value: bytes | str) -> None:
        self.measurements[name] = _hex(value)

    def claim(self, name: str, value: Any) -> None:
        self.claims[name] = value

    def set_tcb(
        self,
        status: str,
        advisory_ids: tuple[str, ...] | list[str] = (),
        *,
        date: dt.datetime | None = None,
        evaluation_data_number: int | None = None,
    ) -> None:
        self.tcb_status = status
        self.advisory_ids = tuple(a.upper() for a in advisory_ids)
        self.tcb_date = date
        self.tcb_evaluation_data_number = evaluation_data_number

    def no_tcb(self, reason: str) -> None:
        """This evidence carries no TCB verdict (e.g. a simulated TEE); say why."""
        self._tcb_required = False
        self._warnings.append(f"tcb: {reason}")

    def set_binding(self, binding: Binding) -> None:
        self.binding = binding

    def valid_until(self, when: dt.datetime, reason: str) -> None:
        """The result may not outlive ``when`` (collateral next-update, token exp)."""
        self._expiries.append((when, reason))

    def set_evidence_time(self, when: dt.datetime) -> None:
        """When the evidence was produced (token ``iat``); used for ``max_age``."""
        self.evidence_time = when

    def set_vector(self, claim: str, value: int) -> None:
        """Record an AR4SI claim; the worse of two values wins."""
        old = self.vector.get(claim)
        if old is None or r.Status.of_claim(value).rank > r.Status.of_claim(old).rank:
            self.vector[claim] = value

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

    # -- common policy -------------------------------------------------------

    def _apply_common_policy(self) -> None:
        policy = self.policy
        if self.binding is None:
            self.fail("binding.missing", "the validator recorded no binding")
        elif self.binding.freshness is Freshness.UNBOUND:
            self.warn("binding.offline", "offline appraisal: the TLS binding was not checked")
        elif policy.require_nonce and self.binding.freshness is not Freshness.NONCE:
            self.fail(
                "freshness.nonce",
                "policy requires nonce freshness",
                expected=Freshness.NONCE.value,
                actual=self.binding.freshness.value,
                vector=("instance_identity", r.IDENTITY_CONTRAINDICATED),
            )
        else:
            self.set_vector("instance_identity", r.IDENTITY_RECOGNIZED)

        if self.tcb_status is None:
            if self._tcb_required:
                self.fail("tcb.status", "the validator recorded no TCB status")
        elif self.tcb_status not in policy.accepted_tcb_statuses:
            self.fail(
                "tcb.status",
                "TCB status is not accepted by policy",
                expected=sorted(policy.accepted_tcb_statuses),
                actual=self.tcb_status,
                vector=("hardware", r.HW_CONTRAINDICATED),
            )
        elif self.tcb_status == "UpToDate":
            self.set_vector("hardware", r.HW_GENUINE)
        else:
            self.warn("tcb.status", f"accepted by policy: {self.tcb_status}")
            self.set_vector("hardware", r.HW_UNSAFE)

        unlisted = sorted(set(self.advisory_ids) - policy.accepted_advisory_ids)
        if unlisted:
            self.fail(
                "tcb.advisories",
                "advisories not accepted by policy",
                expected=sorted(policy.accepted_advisory_ids),
                actual=unlisted,
                vector=("hardware", r.HW_CONTRAINDICATED),
            )
        elif self.advisory_ids:
            self.warn("tcb.advisories", "accepted by policy: " + ", ".join(self.advisory_ids))

        if self.debug is None:
            self.fail("debug", "the validator did not say whether the TEE is debuggable")
        elif self.debug and not policy.allow_debug:
            self.fail(
                "debug",
                "the TEE is in debug mode",
                expected=False,
                actual=True,
                vector=("runtime_opaque", r.OPAQUE_VISIBLE),
            )
        elif self.debug:
            self.warn("debug", "debug TEE accepted by policy", vector=("runtime_opaque", 32))
        else:
            self.set_vector("runtime_opaque", r.OPAQUE_ENCRYPTED)

        self._apply_reference_values()

        if policy.max_age is not None:
            born = self.evidence_time
            if born is None:
                self.warn(
                    "freshness.max_age", "evidence carries no time; max_age bounds the result"
                )
            elif self.now - born > policy.max_age:
                raise StaleEvidence(
                    "evidence is older than policy max_age",
                    check="freshness.max_age",
                    expected=f"<= {policy.max_age.total_seconds():.0f}s",
                    actual=f"{(self.now - born).total_seconds():.0f}s",
                )
            # A (server-supplied) time after "now" must not stretch the result's life.
            start = self.now if born is None else min(born, self.now)
            self.valid_until(start + policy.max_age, "policy max_age")

    def _apply_reference_values(self) -> None:
        if not self.policy.reference_values:
            return
        approved = True
        for name, reference in sorted(self.policy.reference_values.items()):
            actual = self.measurements.get(name)
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

    # -- the result ----------------------------------------------------------

    def finish(self) -> r.AttestationResult:
        self._apply_common_policy()
        expires_at: dt.datetime | None = None
        reason: str | None = None
        for when, why in self._expiries:
            if expires_at is None or when < expires_at:
                expires_at, reason = when, why
        if expires_at is not None and self.now >= expires_at:
            self.fail(
                "freshness.expired",
                f"the result would already be expired ({reason})",
                expected=f"before {expires_at.isoformat()}",
                actual=self.now.isoformat(),
            )
        vector = r.TrustworthinessVector(**self.vector)
        status = r.Status.NONE
        enforced = [f for f in self._failures if f.enforced]
        if enforced:
            status = r.Status.CONTRAINDICATED
        elif self.binding is not None and (self.tcb_status is not None or not self._tcb_required):
            worst = max(
                (r.Status.of_claim(v) for v in self.vector.values()),
                key=lambda s: s.rank,
                default=r.Status.NONE,
            )
            if worst is r.Status.CONTRAINDICATED:
                status = r.Status.CONTRAINDICATED  # a contraindicating claim never affirms
            elif self._warnings or worst is r.Status.WARNING:
                status = r.Status.WARNING
            else:
                status = r.Status.AFFIRMING
        return r.AttestationResult(
            status=status,
            trustworthiness=vector,
            verifier=r.Verifier(
                validator=self.spec.id,
                plugin=self.plugin,
                plugin_version=self.spec.plugin_version,
                core_version=core_version,
            ),
            policy_id=self.policy.id,
            policy_digest=self.policy.digest,
            evidence_digest=self.evidence.digest,
            binding=self.binding
            or Binding(
                scheme=self.spec.binding_scheme, freshness=Freshness.UNBOUND, verified=False
            ),
            tee_type=self.tee_type,
            debug=self.debug,
            tcb=r.Tcb(
                status=self.tcb_status,
                advisory_ids=self.advisory_ids,
                date=self.tcb_date,
                evaluation_data_number=self.tcb_evaluation_data_number,
            ),
            measurements=self.measurements,
            claims=self.claims,
            warnings=tuple(self._warnings),
            failures=tuple(self._failures),
            issued_at=self.now,
            expires_at=expires_at,
            expiry_reason=reason,
        )

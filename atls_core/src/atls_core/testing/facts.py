"""Results from recorded facts: test the common policy and reports without a TEE.

:class:`Facts` records the setter calls a validator would make on its
:class:`~atls_core.appraisal.Appraisal` (``measure``, ``set_tcb``,
``set_debug``...) and replays them inside the core's real
:func:`~atls_core.appraisal.appraise`, with report data that binds a test
key (and nonce), so the result is built exactly as a plugin's would be.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import BindingContext, Freshness, report_data_for
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence, Transport
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.registry import PluginInfo
from atls_core.result import AttestationResult

__all__ = [
    "TEST_KEY_DIGEST",
    "TEST_NONCE",
    "TEST_SPKI",
    "Facts",
    "ReplayingValidator",
    "unit_spec",
]

TEST_SPKI = b"atls test SubjectPublicKeyInfo"
"""The "TLS key" facts are bound to (its SHA-256 is the result's key digest)."""
TEST_NONCE = bytes(range(32))
TEST_KEY_DIGEST = hashlib.sha256(TEST_SPKI).hexdigest()

_Call = tuple[str, tuple[Any, ...], dict[str, Any]]


def unit_spec(
    validator_id: str,
    *,
    transport: Transport = Transport.CERTIFICATE,
    media_type: str | None = None,
    **fields: Any,
) -> ValidatorSpec:
    """A test validator's spec: what only matters to a test is named, the rest defaults.

    One media type (``application/x-<id>`` unless given), the ``atls-v1`` binding
    and the id's first part as TEE type; ``fields`` go to :class:`ValidatorSpec`.
    """
    fields.setdefault("tee_type", validator_id.partition(".")[0])
    fields.setdefault("binding_schemes", ("atls-v1",))
    return ValidatorSpec(
        id=validator_id,
        media_types=(media_type or f"application/x-{validator_id}",),
        transport=transport,
        **fields,
    )


class ReplayingValidator(ValidatorBase):
    """A validator whose ``verify`` replays recorded setter calls and returns ``report``."""

    def __init__(self, spec: ValidatorSpec, calls: list[_Call], report: bytes) -> None:
        self.spec = spec
        self.calls = calls
        self.report = report

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        for name, args, kwargs in self.calls:
            getattr(appraisal, name)(*args, **kwargs)
        return ReportData(value=self.report)


class Facts:
    """Setter calls to replay; any ``Appraisal`` setter name may be called on it."""

    def __init__(self) -> None:
        self.calls: list[_Call] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(Appraisal, name, None)):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return bool(args[1]) if name == "require" else None

        return record

    def appraise(
        self,
        spec: ValidatorSpec,
        evidence: Evidence,
        *,
        policy: Policy,
        now: dt.datetime,
        freshness: Freshness = Freshness.NONCE,
        plugin: PluginInfo | None = None,
    ) -> AttestationResult:
        """The result the core builds from these facts (``spec`` must use ``atls-v1``)."""
        if freshness is Freshness.UNBOUND:
            context = BindingContext.offline_context()
        else:
            context = BindingContext(spki_der=TEST_SPKI, nonce=TEST_NONCE)
        nonce = TEST_NONCE if freshness is Freshness.NONCE else b""
        report = report_data_for("atls-v1", spki_der=TEST_SPKI, nonce=nonce)
        return appraise(
            ReplayingValidator(spec, list(self.calls), report),
            evidence,
            binding=context,
            clock=FixedClock(now),
            policy=policy,
            plugin=plugin,
        )

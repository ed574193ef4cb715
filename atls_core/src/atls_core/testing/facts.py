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
from atls_core.evidence import Evidence
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.registry import PluginInfo
from atls_core.result import AttestationResult

__all__ = ["TEST_KEY_DIGEST", "TEST_NONCE", "TEST_SPKI", "Facts"]

TEST_SPKI = b"atls test SubjectPublicKeyInfo"
"""The "TLS key" facts are bound to (its SHA-256 is the result's key digest)."""
TEST_NONCE = bytes(range(32))
TEST_KEY_DIGEST = hashlib.sha256(TEST_SPKI).hexdigest()

_Call = tuple[str, tuple[Any, ...], dict[str, Any]]


class _Replaying(ValidatorBase):
    def __init__(self, spec: ValidatorSpec, calls: list[_Call], report: bytes) -> None:
        self.spec = spec
        self._calls = calls
        self._report = report

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        for name, args, kwargs in self._calls:
            getattr(appraisal, name)(*args, **kwargs)
        return ReportData(value=self._report)


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
            _Replaying(spec, list(self.calls), report),
            evidence,
            binding=context,
            clock=FixedClock(now),
            policy=policy,
            plugin=plugin,
        )

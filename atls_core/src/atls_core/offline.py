"""One call to appraise recorded evidence offline: a token, a quote, a certificate file.

What Intel Trust Authority's and Azure's clients offer as "verify this token",
for any installed validator: the evidence is read as the validator reads a
file, appraised at a fixed time with everything but the TLS binding checked
(the result says ``unbound``), and the result returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock, SystemClock
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult

__all__ = ["verify_evidence"]


def verify_evidence(
    data: bytes | str,
    *,
    validator: str,
    policy: Policy | Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
    name: str = "<evidence>",
    allow_insecure: bool = False,
    manager: PluginManager | None = None,
    where: str = "verify_evidence",
) -> AttestationResult:
    """Appraise ``data`` with the validator ``validator`` (an id such as ``ita.tdx``).

    ``policy`` is a :class:`Policy` or its TOML-shaped mapping; ``at`` the
    appraisal time (default: now, timezone-aware).  Returns the result, which
    may be a refusal (check ``result.accepted`` or call ``raise_for_status()``);
    evidence that is not genuine raises its specific error.  ``where`` is how
    configuration errors name the caller (a helper built on this one names itself).
    """
    from atls_core.selection import select_validator

    if isinstance(policy, Mapping):
        policy = Policy.from_mapping(policy)
    selected = select_validator(
        validator,
        policy=policy,
        settings=settings,
        allow_insecure=allow_insecure,
        manager=manager,
        where=where,
    )
    raw = data.encode() if isinstance(data, str) else data
    evidence = selected.validator.evidence_from_file(raw, name=name)
    return selected.appraise(
        evidence,
        binding=BindingContext.offline_context(),
        clock=FixedClock(at) if at is not None else SystemClock(),
    )

"""One call to verify a saved ITA token, for users of Intel's Trust Authority client.

Intel's client verifies a token with ``verify_token(token)``; this is the same
shape on atls' appraisal: the token (or ITA's ``{"token": ...}`` answer) in, an
:class:`~atls_core.result.AttestationResult` out, the specific
:class:`~atls_core.errors.ATLSError` raised when the token is not genuine or the
policy refuses it.  It is the core's offline appraisal
(:func:`atls_core.offline.verify_evidence`: ``evidence_from_file`` under
``BindingContext.offline_context()``), so the policy's pinning rule applies:
pin ``mrtd`` (SGX: ``mrenclave``) or say ``allow_any_workload``.  An offline
token is bound to no TLS connection: the result is ``warning`` at best, and
says so (``binding.offline``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_core.result import AttestationResult

__all__ = ["VALIDATORS", "verify_token"]

VALIDATORS = ("ita.tdx", "ita.sgx")


def _check_time(at: dt.datetime | None) -> None:
    if at is not None and at.tzinfo is None:
        raise ConfigurationError(
            "at must be a timezone-aware datetime (e.g. datetime.now(timezone.utc))",
            check="config.at",
            actual=at.isoformat(),
        )


def verify_token(
    token: str | bytes,
    *,
    policy: Policy | Mapping[str, Any],
    settings: Mapping[str, Any],
    at: dt.datetime | None = None,
    validator: str = "ita.tdx",
    allow_insecure: bool = False,
) -> AttestationResult:
    """Appraise ``token`` offline under ``policy``; return the accepted result or raise.

    ``policy`` is a :class:`Policy` or its TOML-shaped mapping; ``settings`` are
    the validator's (``root_ca`` and one of ``jwks_file``, ``jwks_url``,
    ``portal_url``...); ``at`` is the appraisal time (default now);
    ``validator`` is ``ita.tdx`` or ``ita.sgx``; ``allow_insecure`` (configuration's
    ``atls.allow_insecure_test_validators``) admits tests-only settings such as
    ``allow_http_loopback``, and the result then says so (``test_knobs``).  Raises
    :class:`~atls_core.errors.AppraisalFailed` (naming the failed check, e.g.
    ``workload.unpinned``) when the token is genuine but the policy refuses it.
    """
    from atls_core.offline import verify_evidence

    if validator not in VALIDATORS:
        raise ConfigurationError(
            "verify_token appraises ITA tokens only",
            check="config.validator",
            expected=list(VALIDATORS),
            actual=validator,
        )
    _check_time(at)
    result = verify_evidence(
        token,
        validator=validator,
        policy=policy,
        settings=settings,
        at=at,
        name="<token>",
        allow_insecure=allow_insecure,
        where="verify_token",
    )
    return result.raise_for_status()

"""Gramine's verifier knobs, per connection instead of process-global.

Gramine's RA-TLS verifier reads ``RA_TLS_*`` environment variables on every
handshake.  atls keeps policy per validator instance: the same knobs are the
core :class:`~atls_core.policy.Policy` (reference values ``mrenclave`` /
``mrsigner``, ``allow_debug``, ``accepted_tcb_statuses``) plus two
``gramine.ratls`` policy options, ``isv_prod_id`` (equal) and ``min_isv_svn``
(minimum).  :func:`policy_from_gramine_env` translates the variables once, with
Gramine's semantics, for users migrating from Gramine; it is never called
implicitly.

Gramine's semantics (``tools/sgx/ra-tls/ra_tls_verify_common.c`` and
``ra_tls_verify_dcap.c``):

* ``RA_TLS_MRENCLAVE``, ``RA_TLS_MRSIGNER`` (hex), ``RA_TLS_ISV_PROD_ID``,
  ``RA_TLS_ISV_SVN`` (decimal) must each be set, to a value or to ``any``
  (exactly that word: do not check it).  Unset is an error.
* ``RA_TLS_MRENCLAVE=any`` *and* ``RA_TLS_MRSIGNER=any``: Gramine accepts any
  enclave, because the user explicitly said so.  The policy therefore sets
  ``allow_any_workload = true``: the core accepts such a server with status
  ``warning`` (check ``workload.unpinned``) instead of refusing it as an
  unpinned policy.  One of the two set to a value pins the workload.
* ``RA_TLS_ALLOW_*`` are true only when exactly ``"1"``.
* TCB status mapping: UpToDate always; ConfigurationNeeded needs
  HW_CONFIG_NEEDED; OutOfDate needs OUTDATED_TCB; OutOfDateConfigurationNeeded
  needs both of those; SWHardeningNeeded needs SW_HARDENING_NEEDED;
  ConfigurationAndSWHardeningNeeded needs HW_CONFIG_NEEDED and
  SW_HARDENING_NEEDED; Revoked never.

Two deliberate differences, both stricter: malformed numbers are refused
(Gramine's ``strtoul`` reads ``"abc"`` as 0 and wraps values above 65535), and
TCB advisories are still checked by the core policy (Gramine ignores them):
pass the advisories you accept as ``accepted_advisory_ids``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_gramine.specs import POLICY_OPTIONS

__all__ = [
    "ENV_ALLOW_DEBUG",
    "ENV_ALLOW_HW_CONFIG",
    "ENV_ALLOW_OUTDATED",
    "ENV_ALLOW_SW_HARDENING",
    "ENV_ISV_PROD_ID",
    "ENV_ISV_SVN",
    "ENV_MRENCLAVE",
    "ENV_MRSIGNER",
    "POLICY_OPTIONS",
    "gramine_tcb_statuses",
    "policy_from_gramine_env",
    "policy_option_int",
]

ENV_MRENCLAVE = "RA_TLS_MRENCLAVE"
ENV_MRSIGNER = "RA_TLS_MRSIGNER"
ENV_ISV_PROD_ID = "RA_TLS_ISV_PROD_ID"
ENV_ISV_SVN = "RA_TLS_ISV_SVN"
ENV_ALLOW_OUTDATED = "RA_TLS_ALLOW_OUTDATED_TCB_INSECURE"
ENV_ALLOW_HW_CONFIG = "RA_TLS_ALLOW_HW_CONFIG_NEEDED"
ENV_ALLOW_SW_HARDENING = "RA_TLS_ALLOW_SW_HARDENING_NEEDED"
ENV_ALLOW_DEBUG = "RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE"


_ANY = "any"
_HEX32 = re.compile(r"[0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"[0-9]{1,5}")
_U16_MAX = 0xFFFF


def gramine_tcb_statuses(
    *,
    allow_outdated_tcb: bool = False,
    allow_hw_config_needed: bool = False,
    allow_sw_hardening_needed: bool = False,
) -> frozenset[str]:
    """The TCB statuses Gramine's DCAP verifier accepts for these knobs."""
    statuses = {"UpToDate"}
    if allow_hw_config_needed:
        statuses.add("ConfigurationNeeded")
    if allow_outdated_tcb:
        statuses.add("OutOfDate")
        if allow_hw_config_needed:
            statuses.add("OutOfDateConfigurationNeeded")
    if allow_sw_hardening_needed:
        statuses.add("SWHardeningNeeded")
        if allow_hw_config_needed:
            statuses.add("ConfigurationAndSWHardeningNeeded")
    return frozenset(statuses)


def _required(environ: Mapping[str, str], name: str) -> str | None:
    """Gramine's getenv_critical: unset is an error, ``any`` means do not check."""
    value = environ.get(name)
    if value is None:
        raise ConfigurationError(
            f"{name} is not set; set it to a value or to 'any' explicitly (as Gramine requires)",
            check="config.gramine_env",
        )
    return None if value == _ANY else value


def _measurement(environ: Mapping[str, str], name: str) -> str | None:
    value = _required(environ, name)
    if value is not None and not _HEX32.fullmatch(value):
        raise ConfigurationError(
            f"{name} must be 64 hex digits or 'any'",
            check="config.gramine_env",
            actual=value,
        )
    return value.lower() if value is not None else None


def _u16(environ: Mapping[str, str], name: str) -> int | None:
    value = _required(environ, name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value) or int(value) > _U16_MAX:
        raise ConfigurationError(
            f"{name} must be a decimal number 0..65535 or 'any'",
            check="config.gramine_env",
            actual=value,
        )
    return int(value)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name) == "1"


def policy_from_gramine_env(
    environ: Mapping[str, str] | None = None,
    *,
    accepted_advisory_ids: Iterable[str] = (),
    policy_id: str = "gramine-env",
) -> Policy:
    """Translate Gramine's ``RA_TLS_*`` variables into a ``gramine.ratls`` policy.

    ``environ`` defaults to ``os.environ``; it is read once, here, and never again.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {"id": policy_id}
    references: dict[str, list[str]] = {}
    for name, variable in (("mrenclave", ENV_MRENCLAVE), ("mrsigner", ENV_MRSIGNER)):
        value = _measurement(env, variable)
        if value is not None:
            references[name] = [value]
    if references:
        data["reference_values"] = references
    else:
        # Both variables said "any": Gramine's explicit opt-out of identity checks.
        data["allow_any_workload"] = True
    prod_id = _u16(env, ENV_ISV_PROD_ID)
    if prod_id is not None:
        data["isv_prod_id"] = prod_id
    svn = _u16(env, ENV_ISV_SVN)
    if svn is not None:
        data["min_isv_svn"] = svn
    data["accepted_tcb_statuses"] = sorted(
        gramine_tcb_statuses(
            allow_outdated_tcb=_flag(env, ENV_ALLOW_OUTDATED),
            allow_hw_config_needed=_flag(env, ENV_ALLOW_HW_CONFIG),
            allow_sw_hardening_needed=_flag(env, ENV_ALLOW_SW_HARDENING),
        )
    )
    data["accepted_advisory_ids"] = list(accepted_advisory_ids)
    data["allow_debug"] = _flag(env, ENV_ALLOW_DEBUG)
    # Policy.from_mapping: the same validation a TOML policy gets; unknown keys are options.
    return Policy.from_mapping(data, where="gramine environment")


def policy_option_int(policy: Policy, name: str) -> int | None:
    """A ``gramine.ratls`` integer option (0..65535), validated; ``None`` if unset."""
    value = policy.option(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U16_MAX:
        raise ConfigurationError(
            f"policy.{name} must be an integer 0..65535",
            check="config.policy",
            actual=value,
        )
    return value

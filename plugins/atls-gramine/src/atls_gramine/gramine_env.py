"""``gramine.ratls`` configured from Gramine's ``RA_TLS_*`` variables, ready to connect.

:func:`validator_from_gramine_env` builds the validator through the core's
:func:`~atls_core.selection.select_validator` with the policy
:func:`~atls_gramine.gramine_policy.policy_from_gramine_env` translates, so
the result is what ``HTTPAConnection(validator=...)``,
``ATLSContext.for_validator`` and the requests/httpx adapters take.

0.1 returned a ``(validator, policy)`` tuple, and the bare validator could not
be handed to those (it carries no policy).  :class:`GramineEnvValidator` still
unpacks into that pair, with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from atls_core.interfaces import Settings
from atls_core.registry import PluginManager
from atls_core.selection import SelectedValidator, select_validator
from atls_gramine.gramine_policy import policy_from_gramine_env
from atls_gramine.specs import VALIDATOR_SPEC

__all__ = ["GramineEnvValidator", "validator_from_gramine_env"]


@attrs.frozen(kw_only=True)
class GramineEnvValidator(SelectedValidator):
    """A selected ``gramine.ratls`` validator whose policy came from Gramine's environment."""

    def __iter__(self) -> Iterator[Any]:
        """``validator, policy = ...``: the 0.1 tuple form (deprecated)."""
        warnings.warn(
            "unpacking from_gramine_env() into (validator, policy) is deprecated: pass the "
            "result itself as validator= (HTTPAConnection, ATLSContext.for_validator, adapters)",
            DeprecationWarning,
            stacklevel=2,
        )
        return iter((self.validator, self.policy))


def validator_from_gramine_env(
    environ: Mapping[str, str] | None = None,
    *,
    settings: Settings | None = None,
    accepted_advisory_ids: Iterable[str] = (),
    manager: PluginManager | None = None,
    allow_insecure: bool = False,
) -> GramineEnvValidator:
    """``gramine.ratls`` with the policy Gramine's ``RA_TLS_*`` variables describe.

    ``environ`` defaults to ``os.environ`` and is read once, now.  ``settings``
    are the DCAP collateral settings (Gramine takes those from the host's DCAP
    library configuration, not from its environment).  ``manager`` defaults to
    the process's plugin manager (its result observers see every appraisal).
    ``allow_insecure`` admits tests-only settings (a custom DCAP root); results
    are then at best ``warning``.
    """
    policy = policy_from_gramine_env(environ, accepted_advisory_ids=accepted_advisory_ids)
    selected = select_validator(
        VALIDATOR_SPEC.id,
        policy=policy,
        settings=settings or {},
        manager=manager,
        where="gramine environment",
        allow_insecure=allow_insecure,
    )
    fields = {
        field.name: getattr(selected, field.name) for field in attrs.fields(SelectedValidator)
    }
    return GramineEnvValidator(**fields)

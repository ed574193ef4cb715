"""The hooks a plugin implements (pluggy project name ``atls``).

Registration hooks receive a registrar scoped to the plugin being loaded: a
plugin can only register ids under its own entry-point name.  The observer
hook sees every finished result; it cannot change it (results are frozen and
observer exceptions are logged, never propagated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar
    from atls_core.result import AttestationResult

hookspec = pluggy.HookspecMarker("atls")
hookimpl = pluggy.HookimplMarker("atls")

__all__ = ["hookimpl", "hookspec"]


@hookspec
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    """Register validators: ``registry.register(spec, factory)``."""


@hookspec
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    """Register server-side issuers: ``registry.register(spec, factory)``."""


@hookspec
def atls_appraisal_completed(result: AttestationResult, host: str | None) -> None:
    """Observe a finished appraisal (audit, metrics). Must not raise; cannot change it."""

"""The hooks a plugin implements (pluggy project name ``atls``).

Registration hooks receive a registrar scoped to the plugin being loaded: a
plugin can only register ids under its own entry-point name.  The observer
hook sees every finished result; it cannot change it (results are frozen and
observer exceptions are logged, never propagated).  :func:`registrations`
writes a plugin's two registration hooks from tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from atls_core.interfaces import IssuerSpec, Settings, ValidatorSpec
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar
    from atls_core.result import AttestationResult

hookspec = pluggy.HookspecMarker("atls")
hookimpl = pluggy.HookimplMarker("atls")

__all__ = ["hookimpl", "hookspec", "imported_factory", "registrations"]


@hookspec
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    """Register validators: ``registry.register(spec, factory)``."""


@hookspec
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    """Register server-side issuers: ``registry.register(spec, factory)``."""


@hookspec
def atls_appraisal_completed(result: AttestationResult, host: str | None) -> None:
    """Observe a finished appraisal (audit, metrics). Must not raise; cannot change it.

    Called once per appraisal: a connection served from the client's appraisal
    cache reuses an earlier result and is not reported again.
    """


def imported_factory(target: str) -> Callable[[Settings], Any]:
    """A factory that imports ``"module:name"`` (``name`` may be ``Class.method``) when it
    first builds something and calls it with the settings.

    A plugin's entry point stays cheap to import: listing plugins imports no
    implementation.
    """
    module, _, path = target.partition(":")
    if not module or not path:
        raise ValueError(f"a factory is named 'module:name', not {target!r}")

    def build(settings: Settings) -> Any:
        import importlib

        found: Any = importlib.import_module(module)
        for part in path.split("."):
            found = getattr(found, part)
        return found(settings)

    build.__qualname__ = build.__name__ = target
    return build


def _require_modules(targets: Sequence[str]) -> None:
    """Refuse, when the plugin registers, a target whose module does not exist.

    The factories import their modules only when they first build, so a misspelt
    module would otherwise show only at the first connection; finding a module
    imports nothing of it (a misspelt name inside it still shows at first build).
    """
    import importlib.util
    import sys

    for target in targets:
        module = target.partition(":")[0]
        if module not in sys.modules and importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"factory target {target!r}: there is no module {module!r}")


RegisterValidators = Callable[["ValidatorRegistrar"], None]
RegisterIssuers = Callable[["IssuerRegistrar"], None]


def registrations(
    validators: Sequence[tuple[ValidatorSpec, str]] = (),
    issuers: Sequence[tuple[IssuerSpec, str]] = (),
) -> tuple[RegisterValidators, RegisterIssuers]:
    """A plugin's two registration hooks, each spec with an :func:`imported_factory` target::

    atls_register_validators, atls_register_issuers = registrations(
        validators=[(MY_SPEC, "my_plugin.validator:MyValidator")], issuers=[...]
    )
    """
    validator_factories = [(spec, imported_factory(target)) for spec, target in validators]
    issuer_factories = [(spec, imported_factory(target)) for spec, target in issuers]
    targets = [target for _, target in (*validators, *issuers)]

    @hookimpl
    def atls_register_validators(registry: ValidatorRegistrar) -> None:
        _require_modules(targets)
        for spec, factory in validator_factories:
            registry.register(spec, factory)

    @hookimpl
    def atls_register_issuers(registry: IssuerRegistrar) -> None:
        for spec, factory in issuer_factories:
            registry.register(spec, factory)

    return atls_register_validators, atls_register_issuers

"""Entry point of the atls-azure plugin: registration hooks only.

Imports stay cheap: pyjwt and the validators load when a factory runs.  The
``atls verify-evidence`` options are data on the specs (``specs.TOKEN_CLI_OPTIONS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from atls_azure import specs
from atls_core.hookspecs import hookimpl
from atls_core.interfaces import KeyBoundIssuer, Settings, Validator

if TYPE_CHECKING:
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar


def _factory(validator_id: str) -> Callable[[Settings], Validator]:
    def build(settings: Settings) -> Validator:
        from atls_azure.validators import FACTORIES

        return FACTORIES[validator_id](settings)

    return build


def _aci_issuer(settings: Settings) -> KeyBoundIssuer:
    from atls_azure.issuer import AciIssuer

    return AciIssuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    for spec in specs.SPECS:
        registry.register(spec, _factory(spec.id))


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    registry.register(specs.ACI_ISSUER_SPEC, _aci_issuer)

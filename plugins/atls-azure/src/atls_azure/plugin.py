"""Entry point of the atls-azure plugin: registration hooks only.

Imports stay cheap: pyjwt and the validators load when a factory runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from atls_azure import specs
from atls_core.hookspecs import hookimpl
from atls_core.interfaces import CliOption, KeyBoundIssuer, Settings, Validator

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


@hookimpl
def atls_verify_evidence_options(validator_id: str) -> list[CliOption] | None:
    if not validator_id.startswith("azure."):
        return None
    return [
        CliOption(
            flag="--keys",
            setting="keys_file",
            help="pinned MAA signing keys (a JWK set, e.g. the instance's /certs)",
            metavar="KEYS.json",
        ),
        CliOption(
            flag="--issuer",
            setting="issuers",
            help="MAA instance URL the pinned keys sign for (repeatable)",
            metavar="URL",
            multiple=True,
        ),
        CliOption(
            flag="--instance",
            setting="instances",
            help="trusted MAA instance to fetch keys from (https; repeatable)",
            metavar="URL",
            multiple=True,
        ),
        CliOption(
            flag="--leeway",
            setting="leeway",
            help="clock-skew allowance for exp/nbf/iat in seconds (default 30)",
            metavar="SECONDS",
        ),
    ]

"""Entry point of the atls-ita plugin: registration hooks only.

Imports stay cheap: pyjwt, cryptography and the issuer's atls-tdx are loaded
by the factories, not when the plugin is discovered.  ``atls verify-evidence``
options are data on the validator specs (:data:`atls_ita.specs.CLI_OPTIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.hookspecs import hookimpl, imported_factory

if TYPE_CHECKING:
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    from atls_ita.specs import SGX_SPEC, TDX_SPEC  # the specs load the settings rules

    registry.register(TDX_SPEC, imported_factory("atls_ita.validator:ItaValidator"))
    registry.register(SGX_SPEC, imported_factory("atls_ita.validator:ItaValidator.sgx_validator"))


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    from atls_ita.specs import ISSUER_SPEC

    registry.register(ISSUER_SPEC, imported_factory("atls_ita.issuer:ItaIssuer"))

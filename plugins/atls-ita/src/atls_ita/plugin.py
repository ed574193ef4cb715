"""Entry point of the atls-ita plugin: registration hooks only.

Imports stay cheap: pyjwt, cryptography and the issuer's atls-tdx are loaded
by the factories, not when the plugin is discovered.  ``atls verify-evidence``
options are data on the validator specs (:data:`atls_ita.specs.CLI_OPTIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from atls_core.interfaces import Issuer, Settings, Validator
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar


def _tdx(settings: Settings) -> Validator:
    from atls_ita.specs import TDX_SPEC
    from atls_ita.validator import ItaValidator

    return ItaValidator(settings, spec=TDX_SPEC)


def _sgx(settings: Settings) -> Validator:
    from atls_ita.specs import SGX_SPEC
    from atls_ita.validator import ItaValidator

    return ItaValidator(settings, spec=SGX_SPEC)


def _issuer(settings: Settings) -> Issuer:
    from atls_ita.issuer import ItaIssuer

    return ItaIssuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    from atls_ita.specs import SGX_SPEC, TDX_SPEC

    registry.register(TDX_SPEC, _tdx)
    registry.register(SGX_SPEC, _sgx)


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    from atls_ita.specs import ISSUER_SPEC

    registry.register(ISSUER_SPEC, _issuer)

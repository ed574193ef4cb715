"""Entry point of the atls-ita plugin: registration hooks only.

Imports stay cheap: pyjwt, cryptography and the issuer's atls-tdx are loaded
by the factories, not when the plugin is discovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.hookspecs import hookimpl
from atls_core.interfaces import CliOption

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


@hookimpl
def atls_verify_evidence_options(validator_id: str) -> list[CliOption] | None:
    if not validator_id.startswith("ita."):
        return None
    return [
        CliOption(
            flag="--jwks",
            setting="jwks_file",
            help="JWKS file of pinned ITA signing keys (each with its x5c chain)",
            metavar="FILE",
        ),
        CliOption(
            flag="--root",
            setting="root_ca",
            help="ITA root CA certificate (PEM or DER) the keys' x5c chains must lead to",
            metavar="FILE",
        ),
        CliOption(
            flag="--issuer",
            setting="issuer",
            help="expected token issuer (iss); default 'Intel Trust Authority'",
            metavar="ISS",
        ),
        CliOption(
            flag="--portal",
            setting="portal_url",
            help="ITA portal URL; keys are fetched from <portal>/certs",
            metavar="URL",
        ),
    ]

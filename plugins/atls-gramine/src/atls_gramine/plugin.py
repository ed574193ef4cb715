"""Entry point of the atls-gramine plugin: registration hooks only.

Imports stay cheap: the validator and issuer modules (cbor2, dcap-qvl through
``atls_dcap``) load only when a factory runs.  The ``atls verify-evidence``
options are data on the spec (``VALIDATOR_SPEC.cli_options``).
"""

from __future__ import annotations

from atls_core.hookspecs import hookimpl
from atls_core.interfaces import Issuer, Settings, Validator
from atls_core.registry import IssuerRegistrar, ValidatorRegistrar
from atls_gramine.specs import ISSUER_SPEC, VALIDATOR_SPEC

__all__ = ["atls_register_issuers", "atls_register_validators"]


def _validator(settings: Settings) -> Validator:
    from atls_gramine.validator import GramineRatlsValidator

    return GramineRatlsValidator(settings)


def _issuer(settings: Settings) -> Issuer:
    from atls_gramine.issuer import DevAttestationIssuer

    return DevAttestationIssuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(VALIDATOR_SPEC, _validator)


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    registry.register(ISSUER_SPEC, _issuer)

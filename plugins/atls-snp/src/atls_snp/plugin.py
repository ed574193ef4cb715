"""Entry point of the atls-snp plugin: registration hooks only.

Importing this module loads the specs (facts, no verification code); the
factories import the validator and issuer when one is built.
"""

from __future__ import annotations

from atls_core.hookspecs import hookimpl
from atls_core.interfaces import Issuer, Settings, Validator
from atls_core.registry import IssuerRegistrar, ValidatorRegistrar
from atls_snp.specs import (
    CONFIGFS_CHALLENGE_ISSUER_SPEC,
    CONFIGFS_ISSUER_SPEC,
    SNP_CHALLENGE_SPEC,
    SNP_REPORT_SPEC,
)

__all__ = ["atls_register_issuers", "atls_register_validators"]


def _report(settings: Settings) -> Validator:
    from atls_snp.validator import SnpReportValidator

    return SnpReportValidator(settings)


def _report_challenge(settings: Settings) -> Validator:
    from atls_snp.validator import SnpReportValidator

    return SnpReportValidator.challenge_validator(settings)


def _configfs(settings: Settings) -> Issuer:
    from atls_snp.issuer import ConfigfsSnpIssuer

    return ConfigfsSnpIssuer(settings)


def _configfs_challenge(settings: Settings) -> Issuer:
    from atls_snp.issuer import ConfigfsSnpIssuer

    return ConfigfsSnpIssuer.challenge_issuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(SNP_REPORT_SPEC, _report)
    registry.register(SNP_CHALLENGE_SPEC, _report_challenge)


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    registry.register(CONFIGFS_ISSUER_SPEC, _configfs)
    registry.register(CONFIGFS_CHALLENGE_ISSUER_SPEC, _configfs_challenge)

"""Entry point of the atls-snp plugin: registration hooks only.

Importing this module loads the specs (facts, no verification code); the
factories import the validator and issuer when one is built.
"""

from __future__ import annotations

from atls_core.hookspecs import registrations
from atls_snp import specs

__all__ = ["atls_register_issuers", "atls_register_validators"]

atls_register_validators, atls_register_issuers = registrations(
    validators=[
        (specs.SNP_REPORT_SPEC, "atls_snp.validator:SnpReportValidator"),
        (specs.SNP_CHALLENGE_SPEC, "atls_snp.validator:SnpReportValidator.challenge_validator"),
    ],
    issuers=[
        (specs.CONFIGFS_ISSUER_SPEC, "atls_snp.issuer:ConfigfsSnpIssuer"),
        (
            specs.CONFIGFS_CHALLENGE_ISSUER_SPEC,
            "atls_snp.issuer:ConfigfsSnpIssuer.challenge_issuer",
        ),
    ],
)

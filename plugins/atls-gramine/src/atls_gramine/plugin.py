"""Entry point of the atls-gramine plugin: registration hooks only.

Imports stay cheap: the validator and issuer modules (cbor2, dcap-qvl through
``atls_dcap``) load only when a factory runs.  The ``atls verify-evidence``
options are data on the spec (``VALIDATOR_SPEC.cli_options``).
"""

from __future__ import annotations

from atls_core.hookspecs import registrations
from atls_gramine.specs import ISSUER_SPEC, VALIDATOR_SPEC

__all__ = ["atls_register_issuers", "atls_register_validators"]

atls_register_validators, atls_register_issuers = registrations(
    validators=[(VALIDATOR_SPEC, "atls_gramine.validator:GramineRatlsValidator")],
    issuers=[(ISSUER_SPEC, "atls_gramine.issuer:DevAttestationIssuer")],
)

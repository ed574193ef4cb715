"""Entry point of the atls-tdx plugin: registration hooks only.

Importing this module loads the specs (facts, no code); the validators
(dcap-qvl) and the issuers (configfs, the dstack agent's HTTP client) are
imported when a factory builds one.
"""

from __future__ import annotations

from atls_core.hookspecs import registrations
from atls_tdx import specs

__all__ = ["atls_register_issuers", "atls_register_validators"]

atls_register_validators, atls_register_issuers = registrations(
    validators=[
        (specs.TDX_DCAP_SPEC, "atls_tdx.dcap_validator:TdxDcapValidator"),
        (specs.DSTACK_SPEC, "atls_tdx.dstack:DstackValidator"),
        (specs.DSTACK_CHALLENGE_SPEC, "atls_tdx.dstack:DstackValidator.challenge_validator"),
    ],
    issuers=[
        (specs.CONFIGFS_TSM_ISSUER_SPEC, "atls_tdx.issuers:ConfigfsTsmIssuer"),
        (specs.DSTACK_AGENT_ISSUER_SPEC, "atls_tdx.issuers:DstackAgentIssuer"),
    ],
)

"""What the ita validators and issuer are: facts only, cheap to import."""

from __future__ import annotations

import attrs

from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import IssuerSpec, ValidatorSpec
from atls_ita._version import __version__
from atls_ita.oids import ITA_SGX_TOKEN_OID, ITA_TOKEN_MEDIA_TYPE, ITA_TOKEN_OID

__all__ = [
    "ISSUER_SETTINGS",
    "ISSUER_SPEC",
    "POLICY_OPTIONS",
    "SGX_MEASUREMENTS",
    "SGX_SPEC",
    "TDX_MEASUREMENTS",
    "TDX_SPEC",
    "VALIDATOR_SETTINGS",
]

TDX_MEASUREMENTS = measurements.TDX
"""Measurement names, the same as every TDX validator's (``tdx_<name>`` in the token)."""
SGX_MEASUREMENTS = measurements.SGX

VALIDATOR_SETTINGS = (
    "jwks_url",
    "portal_url",
    "jwks_file",
    "root_ca",
    "issuer",
    "algorithms",
    "leeway",
    "check_crl",
    "crl_timeout",
    "jwks_timeout",
    "jwks_min_refresh",
)
POLICY_OPTIONS = ("required_policy_ids",)
ISSUER_SETTINGS = (
    "api_url",
    "api_key",
    "policy_ids",
    "policy_must_match",
    "token_signing_alg",
    "configfs_root",
    "timeout",
)

TDX_SPEC = ValidatorSpec(
    id="ita.tdx",
    media_types=(ITA_TOKEN_MEDIA_TYPE,),
    binding_scheme="atls-v1",
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(ITA_TOKEN_OID,),
    plugin_version=__version__,
    description="Intel Trust Authority token for an Intel TDX trust domain (passport model)",
    measurements=TDX_MEASUREMENTS,
    policy_options=POLICY_OPTIONS,
    settings=VALIDATOR_SETTINGS,
)
SGX_SPEC = attrs.evolve(
    TDX_SPEC,
    id="ita.sgx",
    tee_type="sgx",
    oids=(ITA_SGX_TOKEN_OID,),
    description="Intel Trust Authority token for an Intel SGX enclave (passport model)",
    measurements=SGX_MEASUREMENTS,
)
ISSUER_SPEC = IssuerSpec(
    id="ita.tdx",
    validator_id="ita.tdx",
    binding_scheme="atls-v1",
    media_type=ITA_TOKEN_MEDIA_TYPE,
    transport=Transport.CERTIFICATE,
    oid=ITA_TOKEN_OID,
    plugin_version=__version__,
    description="Intel TDX quote (configfs-tsm) appraised by Intel Trust Authority; "
    "the token travels in the certificate",
    settings=ISSUER_SETTINGS,
)

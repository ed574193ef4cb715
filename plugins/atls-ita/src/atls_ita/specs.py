"""What the ita validators and issuer are: facts only, cheap to import."""

from __future__ import annotations

import attrs

from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import CliOption, ValidatorSpec
from atls_core.settings import spec_inputs
from atls_core.specs import issuer_spec
from atls_core.tdx_rules import SEPT_VE_OPTION
from atls_ita.oids import ITA_SGX_TOKEN_OID, ITA_TOKEN_MEDIA_TYPE, ITA_TOKEN_OID
from atls_ita.settings import (
    ISSUER_SETTINGS,
    VALIDATOR_SETTINGS,
    VALIDATOR_TEST_SETTINGS,
    ItaValidatorSettings,
)

__all__ = [
    "CLI_OPTIONS",
    "ISSUER_SETTINGS",
    "ISSUER_SPEC",
    "POLICY_OPTIONS",
    "SGX_MEASUREMENTS",
    "SGX_SPEC",
    "SGX_WORKLOAD",
    "TDX_MEASUREMENTS",
    "TDX_SPEC",
    "TDX_WORKLOAD",
    "VALIDATOR_SETTINGS",
    "VALIDATOR_TEST_SETTINGS",
]

TDX_MEASUREMENTS = measurements.TDX
"""Measurement names, the same as every TDX validator's (``tdx_<name>`` in the token)."""
SGX_MEASUREMENTS = measurements.SGX
TDX_WORKLOAD = tuple(n for n in measurements.TDX_WORKLOAD if n in TDX_MEASUREMENTS)
"""What a policy pins for ``ita.tdx``: the core's TDX workload names that tokens carry."""
SGX_WORKLOAD = tuple(n for n in measurements.SGX_WORKLOAD if n in SGX_MEASUREMENTS)

POLICY_OPTIONS = ("required_policy_ids",)
"""Not a pinning option: atls cannot see what an ITA policy checks (it may accept anything)."""

CLI_OPTIONS = (
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
)

TDX_SPEC = ValidatorSpec(
    id="ita.tdx",
    media_types=(ITA_TOKEN_MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(ITA_TOKEN_OID,),
    description="Intel Trust Authority token for an Intel TDX trust domain (passport model)",
    measurements=TDX_MEASUREMENTS,
    measurement_sizes=measurements.TDX_SIZES,
    workload_identity=TDX_WORKLOAD,
    policy_options=(*POLICY_OPTIONS, SEPT_VE_OPTION),
    **spec_inputs(ItaValidatorSettings, CLI_OPTIONS),
)
SGX_SPEC = attrs.evolve(
    TDX_SPEC,
    id="ita.sgx",
    tee_type="sgx",
    oids=(ITA_SGX_TOKEN_OID,),
    description="Intel Trust Authority token for an Intel SGX enclave (passport model)",
    measurements=SGX_MEASUREMENTS,
    measurement_sizes=measurements.SGX_SIZES,
    workload_identity=SGX_WORKLOAD,
    policy_options=POLICY_OPTIONS,
)
ISSUER_SPEC = issuer_spec(
    TDX_SPEC,
    id="ita.tdx",
    description="Intel TDX quote (configfs-tsm) appraised by Intel Trust Authority; "
    "the token travels in the certificate",
    settings=ISSUER_SETTINGS,
)

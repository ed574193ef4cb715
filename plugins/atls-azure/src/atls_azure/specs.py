"""Facts about the Azure validators and issuer: ids, OIDs, settings, names.

No code runs here and nothing heavy is imported, so ``plugin.py`` can register
the specs without importing pyjwt.
"""

from __future__ import annotations

from atls_azure.settings import ACI_WIRE_FORMS, AciIssuerSettings, AciSettings, MaaTokenSettings
from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import CliOption, ValidatorSpec
from atls_core.settings import setting_names, spec_inputs
from atls_core.specs import issuer_spec
from atls_core.tdx_rules import SEPT_VE_OPTION

__all__ = [
    "ACI_ISSUER_SPEC",
    "ACI_OID",
    "ACI_SPEC",
    "ACI_WIRE_FORMS",
    "CVM_OID",
    "CVM_SPEC",
    "CVM_VMID",
    "MEDIA_TYPE",
    "RUNTIME_DATA_OID",
    "SGX_OID",
    "SGX_SPEC",
    "SPECS",
    "TDX_OID",
    "TDX_SPEC",
    "TOKEN_CLI_OPTIONS",
    "TOKEN_INPUTS",
    "TOKEN_SETTINGS",
    "TOKEN_TEST_SETTINGS",
]

MEDIA_TYPE = "application/vnd.microsoft.maa+jwt"

ACI_OID = "1.3.9999.2.1.2"
"""opaque-systems atls-python: the MAA token of an ACI container, raw."""
CVM_OID = "1.3.9999.2.1.1"
"""opaque-systems atls-python reserved this arc for Azure confidential VMs."""
SGX_OID = "1.3.9999.2.1.3"
TDX_OID = "1.3.9999.2.1.4"
RUNTIME_DATA_OID = "1.3.9999.2.1.5"
"""The raw runtime data (enclave-held data) sent to MAA, when the token lacks it."""

TOKEN_CLI_OPTIONS = (
    CliOption(
        flag="--keys",
        setting="keys_file",
        help="pinned MAA signing keys (a JWK set, e.g. the instance's /certs)",
        metavar="KEYS.json",
    ),
    CliOption(
        flag="--issuer",
        setting="issuers",
        help="MAA instance URL the pinned keys sign for (repeatable)",
        metavar="URL",
        multiple=True,
    ),
    CliOption(
        flag="--instance",
        setting="instances",
        help="trusted MAA instance to fetch keys from (https; repeatable)",
        metavar="URL",
        multiple=True,
    ),
    CliOption(
        flag="--leeway",
        setting="leeway",
        help="clock-skew allowance for nbf/iat in the future, in seconds (default 30)",
        metavar="SECONDS",
        kind="number",
    ),
)
"""``atls verify-evidence`` inputs of every Azure validator (offline: ``--keys`` + ``--issuer``)."""

TOKEN_INPUTS = spec_inputs(MaaTokenSettings, TOKEN_CLI_OPTIONS)
"""``ValidatorSpec(..., **TOKEN_INPUTS)``: the settings of the one token-validation path, as
:class:`MaaTokenSettings` declares them, with its tests-only knobs (``allow_http_loopback``:
refused unless configuration allows insecure test validators, and a result appraised with
one is at best ``warning``) and the options above."""
TOKEN_SETTINGS = TOKEN_INPUTS["settings"]
TOKEN_TEST_SETTINGS = TOKEN_INPUTS["test_settings"]

CVM_VMID = "vmid"
"""The CVM measurement that pins one VM: its Azure VM ID, a GUID recorded as 32 hex digits."""

ACI_SPEC = ValidatorSpec(
    id="azure.aci",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("azure-aci",),
    transport=Transport.CERTIFICATE,
    tee_type="sev-snp",
    oids=(ACI_OID,),
    description="Azure Container Instances (SEV-SNP) via Microsoft Azure Attestation; "
    "compatible with opaque-systems atls-python",
    measurements=(
        "launch_measurement",
        "hostdata",
        "guest_svn",
        "bootloader_svn",
        "tee_svn",
        "snpfw_svn",
        "microcode_svn",
        "idkeydigest",
    ),
    measurement_sizes={"launch_measurement": 48, "hostdata": 32, "idkeydigest": 48},
    workload_identity=("hostdata",),
    pinning_options=("hostdata", "cce_policies"),
    policy_options=(
        "hostdata",
        "cce_policies",
        "compliance_statuses",
        "max_vmpl",
        "allow_migration_agent",
    ),
    **spec_inputs(AciSettings, TOKEN_CLI_OPTIONS),
)

CVM_SPEC = ValidatorSpec(
    id="azure.cvm",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="azure-cvm",
    oids=(CVM_OID,),
    description="Azure confidential VMs (SEV-SNP or TDX) via MAA guest attestation; "
    "the TLS key is bound through the vTPM user-data (atls-v1 report data); the workload "
    "is pinned by VM ID only (the token carries no measurement of the guest's software)",
    measurements=("launch_measurement", "mrtd", CVM_VMID),
    measurement_sizes={"launch_measurement": 48, "mrtd": 48},
    # launch_measurement/mrtd measure Azure's paravisor firmware, shared by every Azure
    # CVM: pinning them would still accept anyone's CVM, so they do not pin the workload.
    workload_identity=(CVM_VMID,),
    policy_options=("compliance_statuses",),
    **TOKEN_INPUTS,
)

SGX_SPEC = ValidatorSpec(
    id="azure.sgx",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("maa-held-data",),
    transport=Transport.CERTIFICATE,
    tee_type="sgx",
    oids=(SGX_OID,),
    description="SGX enclaves via Microsoft Azure Attestation; the TLS key is the key "
    "the enclave-held data carries",
    measurements=(*measurements.SGX, "product_id", "svn"),
    measurement_sizes=measurements.SGX_SIZES,
    workload_identity=measurements.SGX_WORKLOAD,
    **TOKEN_INPUTS,
)

TDX_SPEC = ValidatorSpec(
    id="azure.tdx",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("maa-held-data",),
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(TDX_OID,),
    description="TDX VMs via Microsoft Azure Attestation; the TLS key is the key the "
    "runtime data carries",
    measurements=measurements.TDX,
    measurement_sizes=measurements.TDX_SIZES,
    workload_identity=measurements.TDX_WORKLOAD,
    policy_options=(SEPT_VE_OPTION,),
    **TOKEN_INPUTS,
)

SPECS = (ACI_SPEC, CVM_SPEC, SGX_SPEC, TDX_SPEC)

ACI_ISSUER_SPEC = issuer_spec(
    ACI_SPEC,
    id="azure.aci",
    description="ACI container: MAA token from the SKR sidecar for the TLS key and nonce",
    settings=setting_names(AciIssuerSettings),
)

"""Facts about the Azure validators and issuer: ids, OIDs, settings, names.

No code runs here and nothing heavy is imported, so ``plugin.py`` can register
the specs without importing pyjwt.
"""

from __future__ import annotations

from atls_azure._version import __version__
from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import IssuerSpec, ValidatorSpec

__all__ = [
    "ACI_ISSUER_SPEC",
    "ACI_OID",
    "ACI_SPEC",
    "CVM_OID",
    "CVM_SPEC",
    "MEDIA_TYPE",
    "RUNTIME_DATA_OID",
    "SGX_OID",
    "SGX_SPEC",
    "SPECS",
    "TDX_OID",
    "TDX_SPEC",
    "TOKEN_SETTINGS",
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

TOKEN_SETTINGS = (
    "instances",
    "issuers",
    "keys_file",
    "keys",
    "leeway",
    "timeout",
    "min_refresh_interval",
    "allow_http_loopback",
)
"""Settings of the one token-validation path (see ``atls_azure.trust``)."""

_COMMON_OPTIONS = ("allow_any_workload",)

ACI_SPEC = ValidatorSpec(
    id="azure.aci",
    media_types=(MEDIA_TYPE,),
    binding_scheme="azure-aci",
    transport=Transport.CERTIFICATE,
    tee_type="sev-snp",
    oids=(ACI_OID,),
    plugin_version=__version__,
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
    policy_options=(*_COMMON_OPTIONS, "hostdata", "cce_policies", "compliance_statuses"),
    settings=TOKEN_SETTINGS,
)

CVM_SPEC = ValidatorSpec(
    id="azure.cvm",
    media_types=(MEDIA_TYPE,),
    binding_scheme="atls-v1",
    transport=Transport.CERTIFICATE,
    tee_type="azure-cvm",
    oids=(CVM_OID,),
    plugin_version=__version__,
    description="Azure confidential VMs (SEV-SNP or TDX) via MAA guest attestation; "
    "the TLS key is bound through the vTPM user-data (atls-v1 report data)",
    measurements=("launch_measurement", "mrtd"),
    policy_options=(*_COMMON_OPTIONS, "compliance_statuses"),
    settings=TOKEN_SETTINGS,
)

SGX_SPEC = ValidatorSpec(
    id="azure.sgx",
    media_types=(MEDIA_TYPE,),
    binding_scheme="maa-held-data",
    transport=Transport.CERTIFICATE,
    tee_type="sgx",
    oids=(SGX_OID,),
    plugin_version=__version__,
    description="SGX enclaves via Microsoft Azure Attestation; the TLS key is the key "
    "the enclave-held data carries",
    measurements=("mrenclave", "mrsigner", "product_id", "svn"),
    policy_options=_COMMON_OPTIONS,
    settings=TOKEN_SETTINGS,
)

TDX_SPEC = ValidatorSpec(
    id="azure.tdx",
    media_types=(MEDIA_TYPE,),
    binding_scheme="maa-held-data",
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(TDX_OID,),
    plugin_version=__version__,
    description="TDX VMs via Microsoft Azure Attestation; the TLS key is the key the "
    "runtime data carries",
    measurements=tuple(m for m in measurements.TDX if m != "mrsignerseam"),
    policy_options=_COMMON_OPTIONS,
    settings=TOKEN_SETTINGS,
)

SPECS = (ACI_SPEC, CVM_SPEC, SGX_SPEC, TDX_SPEC)

ACI_ISSUER_SPEC = IssuerSpec(
    id="azure.aci",
    validator_id="azure.aci",
    binding_scheme="azure-aci",
    media_type=MEDIA_TYPE,
    transport=Transport.CERTIFICATE,
    oid=ACI_OID,
    plugin_version=__version__,
    description="ACI container: MAA token from the SKR sidecar for the TLS key and nonce",
    settings=("sidecar_url", "maa_endpoint", "timeout"),
)

"""The atls-tdx validators as facts (no code): ids, media types, settings, measurements.

Each spec names its ``workload_identity``: a genuine TD proves only that *some*
TD runs (anyone who rents a TDX VM gets one, bound to their own key), so the
core refuses a policy that pins none of these measurements (or, for dstack, none
of the pinning options) unless it says ``allow_any_workload``.

Kept free of heavy imports so that ``atls_tdx.plugin`` registers everything
without loading dcap-qvl; the factories import the implementations.
"""

from __future__ import annotations

from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import CliOption, ValidatorSpec
from atls_core.settings import SpecInputs, joined
from atls_core.specs import issuer_spec
from atls_dcap.settings import DCAP_INPUTS
from atls_tdx.oids import ATLS_TDX_QUOTE, DSTACK_ATTESTATION, DSTACK_QUOTE

__all__ = [
    "CONFIGFS_TSM_ISSUER_SPEC",
    "DSTACK_AGENT_ISSUER_SPEC",
    "DSTACK_CHALLENGE_PATH",
    "DSTACK_CHALLENGE_SPEC",
    "DSTACK_CHALLENGE_WORKLOAD",
    "DSTACK_MEASUREMENTS",
    "DSTACK_MEDIA_TYPE",
    "DSTACK_PINNING_OPTIONS",
    "DSTACK_POLICY_OPTIONS",
    "DSTACK_RESPONSE_MEDIA_TYPE",
    "DSTACK_SNP_BOOT_CHAIN",
    "DSTACK_SNP_CLI_OPTIONS",
    "DSTACK_SNP_MEASUREMENTS",
    "DSTACK_SNP_MEDIA_TYPE",
    "DSTACK_SNP_POLICY_OPTIONS",
    "DSTACK_SNP_SETTINGS",
    "DSTACK_SNP_TEST_SETTINGS",
    "DSTACK_SIZES",
    "DSTACK_SNP_WORKLOAD",
    "DSTACK_SPEC",
    "DSTACK_WORKLOAD",
    "TDX_DCAP_SPEC",
    "TDX_QUOTE_MEDIA_TYPE",
    "TDX_REFERENCE_MEASUREMENTS",
]

TDX_QUOTE_MEDIA_TYPE = "application/vnd.atls.tdx-quote"
"""A raw Intel TDX quote (v4 or v5)."""
DSTACK_MEDIA_TYPE = "application/vnd.atls.dstack-tdx"
"""A TDX quote (``data``) with dstack's event log (endorsement ``event_log``)."""
DSTACK_SNP_MEDIA_TYPE = "application/vnd.atls.dstack-sev-snp"
"""dstack on AMD SEV-SNP: ``data`` = the raw SEV-SNP report; endorsements ``mr_config``
(the MrConfigV3 document its HOST_DATA commits to), ``report_data`` (the stack's),
optional ``cert_chain`` (the guest's certificates), ``attestation_version``."""
DSTACK_CHALLENGE_PATH = "/tdx_quote"

TDX_REFERENCE_MEASUREMENTS = measurements.TDX
"""Report fields usable in ``policy.reference_values`` (hex, any case, optional 0x): every field
a result reports can be pinned.  MRSIGNERSEAM may be pinned too (to zeros: a non-zero value,
a TDX module not signed by Intel, is refused whatever the policy says)."""

DSTACK_MEASUREMENTS = (
    *TDX_REFERENCE_MEASUREMENTS,
    "compose_hash",
    "app_id",
    "os_image_hash",
    "instance_id",
)
"""dstack adds what its replayed RTMR3 events measure."""

DSTACK_SIZES = {
    **measurements.TDX_SIZES,
    "compose_hash": 32,
    "app_id": 20,
    "os_image_hash": 32,
}
"""The fixed-size dstack measurements (SHA-256 of the compose file and of the OS image; the
20-byte app id); ``instance_id`` is left unchecked."""

DSTACK_SNP_MEASUREMENTS = measurements.SEV_SNP
"""A SEV-SNP report's fields, as atls-snp names them (``snp.report`` records them)."""

DSTACK_SNP_BOOT_CHAIN = ("measurement",)
"""On SEV-SNP, the launch MEASUREMENT covers firmware, kernel, initrd and command line."""

DSTACK_WORKLOAD = ("compose_hash", "rtmr3", "mrconfigid")
"""What identifies a dstack *application*: its compose hash (measured in RTMR3), RTMR3 itself
and a non-zero MRCONFIGID (every format dstack writes commits to the compose hash, and the guest
refuses to boot when it does not match: v1 is 0x01 || compose hash, v2 and v3 hash it with
the app id and key provider; an all-zero MRCONFIGID, the TDX default, is "not set" and pins
nothing).  The OS image, MRTD and RTMR0-2 identify the platform every dstack app shares:
pinning only those would accept any application deployed on that image, so they are checked
when pinned but do not pin.

The app id is checked when given but does not pin either: the host chooses it at deployment
(dstack measures the deploy-time app id, with or without a KMS; upstream's own comment says
relying parties must gate the compose hash separately), and with a KMS it means something
only together with the KMS identity, which atls cannot pin.  A TD running another compose
can measure the victim's app id."""

DSTACK_CHALLENGE_WORKLOAD = ("compose_hash", "mrconfigid")
""":data:`DSTACK_WORKLOAD` without RTMR3: in the challenge protocol every new TLS
certificate is extended into RTMR3, so a policy pinning it would refuse the server at its
next certificate rotation.  RTMR3 stays a reference value that is checked when given."""

DSTACK_SNP_WORKLOAD = ("host_data",)
"""On SEV-SNP, HOST_DATA commits to the MrConfig document (compose hash, app id, instance
id, key provider): it pins the application as MRCONFIGID does on TDX.  The launch
MEASUREMENT is the OS image's, shared by every app on it, so it does not pin."""

DSTACK_PINNING_OPTIONS = ("app_compose", "allowed_compose_hashes")
"""Policy options that pin the application (both name its compose hash).
``allowed_app_ids`` does not (the host chooses the app id, see :data:`DSTACK_WORKLOAD`) and
``allowed_os_image_hashes`` pins only the OS."""

DSTACK_POLICY_OPTIONS = (
    "app_compose",
    "allowed_compose_hashes",
    "allowed_app_ids",
    "allowed_os_image_hashes",
)
"""Every dstack option, each checked when set; only :data:`DSTACK_PINNING_OPTIONS` pin.
``allowed_os_image_hashes`` can be met only by a TD with a KMS: dstack measures the
``os-image-hash`` event only when it asks a KMS for the app's keys."""

DSTACK_SNP_POLICY_OPTIONS = (
    "max_vmpl",
    "allow_migration_agent",
    "allow_smt",
    "min_tcb",
    "min_firmware",
)
"""atls-snp's options, applied by ``snp.report`` to a dstack SEV-SNP report (same names)."""

_SNP_PREFIX = "snp_"
DSTACK_SNP_SETTINGS = tuple(
    _SNP_PREFIX + name
    for name in (
        *("vcek", "ask", "ark", "crl"),
        *("kds", "kds_url", "kds_timeout", "kds_cache_seconds"),
        *("product", "test_ark"),
    )
)
"""atls-snp's settings, prefixed: ``snp_kds`` reaches ``snp.report`` as ``kds``.  The prefix
keeps AMD's roots and revocation lists apart from the Intel (DCAP) settings beside them."""
DSTACK_SNP_TEST_SETTINGS = (_SNP_PREFIX + "test_ark",)

_SNP_OPTIONS = (  # (atls-snp's option, metavar, help): offered here with the prefix
    ("vcek", "FILE", "the VCEK (or VLEK) certificate that signed the report, PEM or DER"),
    ("ask", "FILE", "the ASK (or ASVK) certificate; may also hold the ARK"),
    ("ark", "FILE", "the ARK certificate (must be one of AMD's pinned roots)"),
    ("crl", "FILE", "the ARK's CRL"),
    ("kds", "MODE", "'auto' (fetch missing certificates from AMD) or 'never'"),
)
DSTACK_SNP_CLI_OPTIONS = tuple(
    CliOption(
        flag=f"--snp-{name}", setting=_SNP_PREFIX + name, help=f"SEV-SNP: {text}", metavar=metavar
    )
    for name, metavar, text in _SNP_OPTIONS
)
_DSTACK_SNP_INPUTS = SpecInputs(
    settings=DSTACK_SNP_SETTINGS,
    test_settings=DSTACK_SNP_TEST_SETTINGS,
    cli_options=DSTACK_SNP_CLI_OPTIONS,
)

TDX_DCAP_SPEC = ValidatorSpec(
    id="tdx.dcap",
    media_types=(TDX_QUOTE_MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(ATLS_TDX_QUOTE,),
    description="Intel TDX quote (v4/v5) verified with dcap-qvl against Intel collateral; "
    "report data = atls-v1 binding of the TLS key and nonce",
    measurements=TDX_REFERENCE_MEASUREMENTS,
    measurement_sizes=measurements.TDX_SIZES,
    workload_identity=measurements.TDX_WORKLOAD,
    **DCAP_INPUTS,
)

DSTACK_SPEC = ValidatorSpec(
    id="tdx.dstack",
    binding_schemes=("dstack-ratls-cert",),
    transport=Transport.CERTIFICATE,
    tee_type="tdx",
    oids=(DSTACK_ATTESTATION, DSTACK_QUOTE),
    description="dstack RA-TLS certificate: attestation extension (.8) or TDX quote + event "
    "log (RTMR replay, app compose, OS image, boot chain); SEV-SNP attestations are "
    "verified by snp.report (atls-snp) and the app read from the MrConfig document their "
    "HOST_DATA commits to; report data = SHA-512('ratls-cert:' || SPKI)",
    media_types=(DSTACK_MEDIA_TYPE, DSTACK_SNP_MEDIA_TYPE),
    measurements=(*DSTACK_MEASUREMENTS, *DSTACK_SNP_MEASUREMENTS),
    measurement_sizes={**DSTACK_SIZES, **measurements.SEV_SNP_SIZES},
    workload_identity=(*DSTACK_WORKLOAD, *DSTACK_SNP_WORKLOAD),
    pinning_options=DSTACK_PINNING_OPTIONS,
    policy_options=(*DSTACK_POLICY_OPTIONS, *DSTACK_SNP_POLICY_OPTIONS),
    **joined(DCAP_INPUTS, _DSTACK_SNP_INPUTS),
)

DSTACK_CHALLENGE_SPEC = ValidatorSpec(
    id="tdx.dstack-challenge",
    media_types=(DSTACK_MEDIA_TYPE,),
    binding_schemes=("challenge-v1",),
    transport=Transport.CHALLENGE,
    tee_type="tdx",
    description="dstack quote fetched by POST /tdx_quote (secureai protocol); the TLS "
    "certificate is bound by the last 'New TLS Certificate' RTMR3 event",
    measurements=DSTACK_MEASUREMENTS,
    measurement_sizes=DSTACK_SIZES,
    workload_identity=DSTACK_CHALLENGE_WORKLOAD,
    pinning_options=DSTACK_PINNING_OPTIONS,
    policy_options=DSTACK_POLICY_OPTIONS,
    **joined(DCAP_INPUTS, settings=("quote_path",)),
)

# --- issuers (their code is in atls_tdx.issuers, imported when one is built) --------------

DSTACK_RESPONSE_MEDIA_TYPE = "application/vnd.atls.dstack-quote-response+json"
"""What the dstack guest agent issuer answers a ``/tdx_quote`` challenge with."""

CONFIGFS_TSM_ISSUER_SPEC = issuer_spec(
    TDX_DCAP_SPEC,
    id="tdx.configfs-tsm",
    description="Intel TDX quote from the kernel's configfs-tsm interface (Linux >= 6.7)",
    settings=("root", "provider"),
)

DSTACK_AGENT_ISSUER_SPEC = issuer_spec(
    DSTACK_CHALLENGE_SPEC,
    id="tdx.dstack-agent",
    media_type=DSTACK_RESPONSE_MEDIA_TYPE,
    description="dstack guest agent quote + event log, answered to a /tdx_quote challenge; "
    "the TLS certificate is measured as a 'New TLS Certificate' RTMR3 event",
    settings=("socket", "timeout", "secureai_clients"),
)

"""The atls-snp validators and issuers as facts (no code): ids, media types, names.

Kept free of heavy imports so that ``atls_snp.plugin`` registers everything
without loading the verification code; the factories import it.

Workload identity.  A genuine report proves only that *some* SEV-SNP guest
produced it (anyone who rents a confidential VM gets one, bound to their own
key), so the core refuses a policy that pins none of these:

- ``measurement`` -- the launch digest of the guest's initial memory (firmware,
  kernel, command line as the launcher measured them);
- ``id_key_digest`` / ``author_key_digest`` -- the key that signed the launch's
  ID block (and the key that signed that key): the firmware refuses to launch a
  guest whose measurement differs from the one the signed ID block names, so
  pinning the key pins "whatever this signer released".

Not identity, though reported and pinnable: ``host_data`` (chosen by the host
at launch, so any VM can carry any value), ``family_id`` and ``image_id``
(self-asserted in an ID block anyone can sign with their own key), ``guest_svn``
and ``chip_id``.  Pin them together with an identity, never instead of one.
"""

from __future__ import annotations

import attrs

from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import CliOption, ValidatorSpec
from atls_core.specs import issuer_spec
from atls_snp.oids import ATLS_SNP_EVIDENCE

__all__ = [
    "CHALLENGE_PATH",
    "CLI_OPTIONS",
    "CONFIGFS_CHALLENGE_ISSUER_SPEC",
    "CONFIGFS_ISSUER_SPEC",
    "MEASUREMENTS",
    "POLICY_OPTIONS",
    "SETTINGS",
    "SNP_CHALLENGE_SPEC",
    "SNP_EVIDENCE_MEDIA_TYPE",
    "SNP_REPORT_MEDIA_TYPE",
    "SNP_REPORT_SPEC",
    "TEST_SETTINGS",
    "WORKLOAD_IDENTITY",
]

SNP_REPORT_MEDIA_TYPE = "application/vnd.atls.snp-report"
"""``data``: one raw 1184-byte ATTESTATION_REPORT.  Optional endorsement ``cert_chain``:
certificates that endorse it (VCEK or VLEK, ASK or ASVK, ARK; any order), PEM and/or DER
concatenated -- what a container format such as dstack's attestation carries."""

SNP_EVIDENCE_MEDIA_TYPE = "application/vnd.atls.snp-evidence"
"""Our wire envelope (certificate extension, challenge answer, files), DER::

    SnpEvidence ::= SEQUENCE {
        version       INTEGER (1),
        report        OCTET STRING,            -- the 1184-byte ATTESTATION_REPORT
        certificates  SEQUENCE OF OCTET STRING -- DER (or PEM) certificates, may be empty
    }
"""

CHALLENGE_PATH = "/.well-known/atls/snp-report"

MEASUREMENTS = measurements.SEV_SNP
"""Report fields usable in ``policy.reference_values``: lowercase hex, except ``guest_svn``
(decimal)."""

WORKLOAD_IDENTITY = ("measurement", "id_key_digest", "author_key_digest")
"""What identifies the guest (see the module doc)."""

POLICY_OPTIONS = ("max_vmpl", "allow_migration_agent", "allow_smt", "min_tcb", "min_firmware")

SETTINGS = (
    "vcek",
    "ask",
    "ark",
    "crl",
    "kds",
    "kds_url",
    "kds_timeout",
    "kds_cache_seconds",
    "product",
    "test_ark",
)

TEST_SETTINGS = ("test_ark",)
"""A synthetic root for tests: refused unless ``allow_insecure_test_validators``, results
capped at ``warning``."""

CLI_OPTIONS = (
    CliOption(
        flag="--vcek",
        setting="vcek",
        help="the VCEK (or VLEK) certificate that signed the report, PEM or DER",
        metavar="FILE",
    ),
    CliOption(
        flag="--ask",
        setting="ask",
        help="the ASK (or ASVK) certificate; may also hold the ARK",
        metavar="FILE",
    ),
    CliOption(
        flag="--ark",
        setting="ark",
        help="the ARK certificate (must be one of AMD's pinned roots)",
        metavar="FILE",
    ),
    CliOption(flag="--crl", setting="crl", help="the ARK's CRL, PEM or DER", metavar="FILE"),
    CliOption(
        flag="--kds",
        setting="kds",
        help="'auto' (fetch missing certificates from AMD's key distribution service) or 'never'",
        metavar="MODE",
    ),
    CliOption(
        flag="--kds-url",
        setting="kds_url",
        help="key distribution service to fetch from (default AMD's)",
        metavar="URL",
    ),
    CliOption(
        flag="--product",
        setting="product",
        help="Milan, Genoa or Turin, for version 2 reports (they carry no CPUID)",
        metavar="NAME",
    ),
)

SNP_REPORT_SPEC = ValidatorSpec(
    id="snp.report",
    media_types=(SNP_REPORT_MEDIA_TYPE, SNP_EVIDENCE_MEDIA_TYPE),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="sev-snp",
    oids=(ATLS_SNP_EVIDENCE,),
    description="AMD SEV-SNP attestation report (v2-v5; Milan, Genoa, Turin) verified "
    "against AMD's pinned ARKs through the ASK/ASVK and the chip's VCEK or VLEK; "
    "report data = atls-v1 binding of the TLS key and nonce",
    measurements=MEASUREMENTS,
    measurement_sizes=measurements.SEV_SNP_SIZES,
    workload_identity=WORKLOAD_IDENTITY,
    policy_options=POLICY_OPTIONS,
    settings=SETTINGS,
    cli_options=CLI_OPTIONS,
    test_settings=TEST_SETTINGS,
)

SNP_CHALLENGE_SPEC = attrs.evolve(
    SNP_REPORT_SPEC,
    id="snp.report-challenge",
    transport=Transport.CHALLENGE,
    oids=(),
    description="AMD SEV-SNP attestation report fetched by POST "
    f"{CHALLENGE_PATH} over the connection; report data = atls-v1 binding of the TLS "
    "key and the client's nonce (a report has no other field the guest can fill, so "
    "challenge-v1's certificate digest would have nowhere to go)",
)

_ISSUER_SETTINGS = ("root", "provider", "privlevel", "certificates")

CONFIGFS_ISSUER_SPEC = issuer_spec(
    SNP_REPORT_SPEC,
    id="snp.configfs-tsm",
    media_type=SNP_EVIDENCE_MEDIA_TYPE,
    description="AMD SEV-SNP report (and the host's certificates) from the kernel's "
    "configfs-tsm interface, provider sev_guest (Linux >= 6.7)",
    settings=_ISSUER_SETTINGS,
)

CONFIGFS_CHALLENGE_ISSUER_SPEC = issuer_spec(
    SNP_CHALLENGE_SPEC,
    id="snp.configfs-tsm-challenge",
    media_type=SNP_EVIDENCE_MEDIA_TYPE,
    description="AMD SEV-SNP report from configfs-tsm, answered to a challenge",
    settings=_ISSUER_SETTINGS,
)

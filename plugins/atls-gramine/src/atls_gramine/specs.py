"""What ``gramine.ratls`` and ``gramine.dev-attestation`` are: facts only, cheap to import."""

from __future__ import annotations

from atls_core import measurements
from atls_core.evidence import Transport
from atls_core.interfaces import ValidatorSpec
from atls_core.specs import issuer_spec
from atls_dcap.settings import DCAP_INPUTS

__all__ = [
    "SGX_FLAGS",
    "ISSUER_SETTINGS",
    "ISSUER_SPEC",
    "LEGACY_OID",
    "MEDIA_TYPE_LEGACY",
    "MEDIA_TYPE_TCG",
    "POLICY_OPTIONS",
    "SCHEME_LEGACY",
    "SCHEME_TCG",
    "SGX_MEASUREMENT_NAMES",
    "TCG_OID",
    "VALIDATOR_SPEC",
]

LEGACY_OID = "0.6.9.42.840.113741.1337.6"
TCG_OID = "2.23.133.5.4.9"
MEDIA_TYPE_LEGACY = "application/vnd.gramine.ratls.sgx-quote"
MEDIA_TYPE_TCG = "application/vnd.gramine.ratls.tcg-tagged-evidence+cbor"
SCHEME_TCG = "gramine-tcg"
"""Binding of the TCG DICE extension: report data = SHA-256(claims) || 0^32."""
SCHEME_LEGACY = "gramine-legacy"
"""Binding of the legacy quote extension: report data = SHA-256(SPKI) || 0^32."""
POLICY_OPTIONS = ("isv_prod_id", "min_isv_svn")
"""``gramine.ratls`` policy options: ISV_PROD_ID must equal, ISV_SVN must reach."""
SGX_FLAGS = {
    "init": 0x01,
    "debug": 0x02,
    "mode64": 0x04,
    "provision_key": 0x10,
    "einittoken_key": 0x20,
}
"""SGX ``ATTRIBUTES.FLAGS`` bits Gramine looks at."""

SGX_MEASUREMENT_NAMES = measurements.SGX
"""The SGX measurements ``atls_dcap.record_quote`` records (``SGX_MEASUREMENTS``)."""

VALIDATOR_SPEC = ValidatorSpec(
    id="gramine.ratls",
    media_types=(MEDIA_TYPE_TCG, MEDIA_TYPE_LEGACY),
    # The TCG extension decides when present (Gramine's precedence), so it comes first.
    binding_schemes=(SCHEME_TCG, SCHEME_LEGACY),
    transport=Transport.CERTIFICATE,
    tee_type="sgx",
    oids=(TCG_OID, LEGACY_OID),
    description="Gramine RA-TLS certificate (TCG DICE or legacy extension) with an SGX DCAP "
    "quote; binding gramine-tcg when the TCG extension is present, else gramine-legacy",
    measurements=SGX_MEASUREMENT_NAMES,
    measurement_sizes=measurements.SGX_SIZES,
    workload_identity=measurements.SGX_WORKLOAD,
    policy_options=POLICY_OPTIONS,
    **DCAP_INPUTS,
)

ISSUER_SETTINGS = ("attestation_dir", "pubkey_hash_alg", "not_before", "not_after")

ISSUER_SPEC = issuer_spec(
    VALIDATOR_SPEC,
    id="gramine.dev-attestation",
    binding_scheme=SCHEME_LEGACY,
    media_type=MEDIA_TYPE_LEGACY,
    oid=LEGACY_OID,
    description="Gramine-format RA-TLS certificates from /dev/attestation inside an SGX enclave "
    "(both the legacy and the TCG DICE extension, P-384 key)",
    settings=ISSUER_SETTINGS,
)

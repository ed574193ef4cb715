"""Turn dcap-qvl's ``ValueError("Verification failed: ...")`` into specific atls errors.

dcap-qvl reports every failure as a ``ValueError`` carrying the Rust error
chain as text.  Each known message maps to an error class and a check name;
an unknown one is an :class:`UntrustedChain` that keeps the original text, so
a new dcap-qvl failure can never turn into an acceptance or a vague error.
"""

from __future__ import annotations

from atls_core.errors import ATLSError, MalformedEvidence, StaleEvidence, UntrustedChain

__all__ = ["DEBUG_MESSAGE", "map_qvl_error"]

DEBUG_MESSAGE = "Debug mode is enabled"

# (substring of dcap-qvl's message, error class, check, our explanation); matched without
# regard to case (dcap-qvl versions differ: "Invalid mr service td" / "Invalid MR service TD").
# First match wins, so specific messages come before the generic ones they contain.
_RULES: tuple[tuple[str, type[ATLSError], str, str], ...] = (
    # --- the quote itself -------------------------------------------------------------
    ("Failed to parse quote", MalformedEvidence, "dcap.quote_format", "quote cannot be parsed"),
    ("Failed to decode quote", MalformedEvidence, "dcap.quote_format", "quote cannot be parsed"),
    (
        "Unsupported DCAP quote version",
        MalformedEvidence,
        "dcap.quote_format",
        "unsupported quote version",
    ),
    (
        "Unsupported quote version",
        MalformedEvidence,
        "dcap.quote_format",
        "unsupported quote version",
    ),
    ("Unsupported TEE type", MalformedEvidence, "dcap.quote_format", "unsupported TEE type"),
    (
        "Unsupported DCAP attestation key type",
        MalformedEvidence,
        "dcap.quote_format",
        "unsupported attestation key type",
    ),
    (
        "Unsupported DCAP PCK cert format",
        MalformedEvidence,
        "dcap.quote_format",
        "quote carries no PCK certificate chain",
    ),
    ("Failed to get signed quote", MalformedEvidence, "dcap.quote_format", "quote is truncated"),
    (
        "Failed to decode QE report",
        MalformedEvidence,
        "dcap.quote_format",
        "QE report cannot be parsed",
    ),
    (
        "Failed to extract PCK certificates",
        MalformedEvidence,
        "dcap.quote_format",
        "PCK certificates cannot be parsed",
    ),
    (
        "Certificate chain is too short in quote",
        UntrustedChain,
        "dcap.pck_chain",
        "PCK certificate chain is incomplete",
    ),
    # --- signatures ------------------------------------------------------------------------
    (
        "ISV enclave report signature is invalid",
        UntrustedChain,
        "dcap.quote_signature",
        "quote signature is invalid",
    ),
    (
        "Isv enclave report signature is invalid",
        UntrustedChain,
        "dcap.quote_signature",
        "quote signature is invalid",
    ),
    (
        "QE report hash mismatch",
        UntrustedChain,
        "dcap.qe_report_hash",
        "attestation key is not bound to the QE report",
    ),
    (
        "Signature is invalid for qe_report",
        UntrustedChain,
        "dcap.qe_report_signature",
        "QE report is not signed by the PCK key",
    ),
    (
        "Signature is invalid for tcb_info",
        UntrustedChain,
        "dcap.tcb_info_signature",
        "TCB info signature is invalid",
    ),
    (
        "Signature is invalid for qe_identity",
        UntrustedChain,
        "dcap.qe_identity_signature",
        "QE identity signature is invalid",
    ),
    # --- freshness -------------------------------------------------------------------------
    ("TCBInfo expired", StaleEvidence, "dcap.tcb_info_expired", "TCB info is past its next update"),
    (
        "TCBInfo issue date is in the future",
        StaleEvidence,
        "dcap.tcb_info_not_yet_valid",
        "TCB info is not yet issued",
    ),
    (
        "QE Identity expired",
        StaleEvidence,
        "dcap.qe_identity_expired",
        "QE identity is past its next update",
    ),
    (
        "QE Identity issue date is in the future",
        StaleEvidence,
        "dcap.qe_identity_not_yet_valid",
        "QE identity is not yet issued",
    ),
    ("ExpiredRevocationList", StaleEvidence, "dcap.crl_expired", "a CRL is past its next update"),
    ("CrlExpired", StaleEvidence, "dcap.crl_expired", "a CRL is past its next update"),
    (
        "certificate revocation list expired",
        StaleEvidence,
        "dcap.crl_expired",
        "a CRL is past its next update",
    ),
    (
        "CertNotValidYet",
        StaleEvidence,
        "dcap.certificate_not_yet_valid",
        "a certificate is not yet valid",
    ),
    (
        "NotValidYet",
        StaleEvidence,
        "dcap.certificate_not_yet_valid",
        "a certificate is not yet valid",
    ),
    ("CertExpired", StaleEvidence, "dcap.certificate_expired", "a certificate has expired"),
    ("certificate expired", StaleEvidence, "dcap.certificate_expired", "a certificate has expired"),
    ("Collateral expired", StaleEvidence, "dcap.collateral_expired", "collateral has expired"),
    # --- chains and revocation -------------------------------------------------------------
    (
        "CertRevoked",
        UntrustedChain,
        "dcap.certificate_revoked",
        "a certificate in the chain is revoked",
    ),
    (
        "UnknownRevocationStatus",
        UntrustedChain,
        "dcap.crl",
        "revocation status unknown (CRL missing or not signed by the issuer)",
    ),
    (
        "InvalidCrlSignatureForPublicKey",
        UntrustedChain,
        "dcap.crl_signature",
        "a CRL signature is invalid",
    ),
    ("Failed to parse root CA CRL", UntrustedChain, "dcap.crl", "root CA CRL is invalid"),
    ("Failed to parse PCK CRL", UntrustedChain, "dcap.crl", "PCK CRL is invalid"),
    ("Failed to load root ca", UntrustedChain, "dcap.root_ca", "root CA certificate is invalid"),
    (
        "UnknownIssuer",
        UntrustedChain,
        "dcap.certificate_chain",
        "a certificate chain does not lead to the trusted root",
    ),
    (
        "InvalidSignatureForPublicKey",
        UntrustedChain,
        "dcap.certificate_chain",
        "a certificate signature is invalid",
    ),
    (
        "BadSignature",
        UntrustedChain,
        "dcap.certificate_chain",
        "a certificate signature is invalid",
    ),
    (
        "Failed to verify certificate chain",
        UntrustedChain,
        "dcap.certificate_chain",
        "certificate chain verification failed",
    ),
    (
        "Certificate chain is too short",
        UntrustedChain,
        "dcap.certificate_chain",
        "collateral certificate chain is incomplete",
    ),
    # --- TCB -----------------------------------------------------------------------------------
    (
        "No matching TCB level found",
        UntrustedChain,
        "dcap.tcb_level",
        "the platform's TCB matches no level of the TCB info",
    ),
    (
        "TCB level mismatch",
        UntrustedChain,
        "dcap.tcb_level",
        "the platform's TCB matches no level of the TCB info",
    ),
    ("Revoked", UntrustedChain, "dcap.tcb_revoked", "the platform's TCB is revoked"),
    ("Fmspc mismatch", UntrustedChain, "dcap.fmspc", "collateral is for another platform (FMSPC)"),
    (
        "non-TDX TCB info",
        UntrustedChain,
        "dcap.collateral_tee",
        "collateral is for another TEE type",
    ),
    (
        "Unsupported QE Identity",
        UntrustedChain,
        "dcap.collateral_tee",
        "QE identity is for another TEE type",
    ),
    (
        "QE ISVPRODID mismatch",
        UntrustedChain,
        "dcap.qe_identity",
        "quoting enclave does not match the QE identity",
    ),
    (
        "QE MISCSELECT mismatch",
        UntrustedChain,
        "dcap.qe_identity",
        "quoting enclave does not match the QE identity",
    ),
    (
        "QE MRSIGNER mismatch",
        UntrustedChain,
        "dcap.qe_identity",
        "quoting enclave does not match the QE identity",
    ),
    (
        "QE ATTRIBUTES mismatch",
        UntrustedChain,
        "dcap.qe_identity",
        "quoting enclave does not match the QE identity",
    ),
    (
        "TDX module MRSIGNER mismatch",
        UntrustedChain,
        "dcap.tdx_module",
        "TDX module signer does not match the TCB info",
    ),
    (
        "component count mismatch",
        MalformedEvidence,
        "dcap.collateral_format",
        "TCB info components are malformed",
    ),
    # --- TD attributes (checked by dcap-qvl after every signature) ---------------------------
    (
        "Reserved bits in TD attributes are set",
        UntrustedChain,
        "dcap.td_attributes",
        "reserved TD attribute bits are set",
    ),
    (
        "SEPT_VE_DISABLE is not enabled",
        UntrustedChain,
        "dcap.sept_ve_disable",
        "the TD does not set SEPT_VE_DISABLE",
    ),
    ("Invalid mr service td", UntrustedChain, "dcap.mr_servicetd", "MR_SERVICETD is not zero"),
    # --- collateral encoding ---------------------------------------------------------------
    (
        "Failed to decode TcbInfo",
        MalformedEvidence,
        "dcap.collateral_format",
        "TCB info cannot be parsed",
    ),
    (
        "Failed to decode QeIdentity",
        MalformedEvidence,
        "dcap.collateral_format",
        "QE identity cannot be parsed",
    ),
    (
        "Failed to parse TCB Info",
        MalformedEvidence,
        "dcap.collateral_format",
        "TCB info dates cannot be parsed",
    ),
    (
        "Failed to parse QE Identity",
        MalformedEvidence,
        "dcap.collateral_format",
        "QE identity dates cannot be parsed",
    ),
)


def map_qvl_error(exc: Exception) -> ATLSError:
    """The atls error for a dcap-qvl failure (never a bare "verify failed")."""
    text = str(exc).strip()
    detail = text.removeprefix("Verification failed:").strip() or type(exc).__name__
    lowered = text.lower()
    for needle, cls, check, reason in _RULES:
        if needle.lower() in lowered:
            return cls(f"{reason} (dcap-qvl: {_one_line(detail)})", check=check)
    return UntrustedChain(
        f"quote verification failed (dcap-qvl: {_one_line(detail)})", check="dcap.verify"
    )


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())

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

# (substring of dcap-qvl's message, our explanation); matched without regard to case (dcap-qvl
# versions differ: "Invalid mr service td" / "Invalid MR service TD").  First match wins, so
# specific messages come before the generic ones they contain (or are wrapped in).
_RULES: tuple[tuple[str, str], ...] = (
    # --- the quote itself -------------------------------------------------------------
    ("Failed to parse quote", "quote cannot be parsed"),
    ("Failed to decode quote", "quote cannot be parsed"),
    ("Unsupported DCAP quote version", "unsupported quote version"),
    ("Unsupported quote version", "unsupported quote version"),
    ("Unsupported TEE type", "unsupported TEE type"),
    ("Unsupported DCAP attestation key type", "unsupported attestation key type"),
    ("Unsupported DCAP PCK cert format", "quote carries no PCK certificate chain"),
    ("Failed to get signed quote", "quote is truncated"),
    ("Failed to decode QE report", "QE report cannot be parsed"),
    ("Failed to extract PCK certificates", "PCK certificates cannot be parsed"),
    ("Certificate chain is too short in quote", "PCK certificate chain is incomplete"),
    # --- signatures ------------------------------------------------------------------------
    ("ISV enclave report signature is invalid", "quote signature is invalid"),
    ("QE report hash mismatch", "attestation key is not bound to the QE report"),
    ("Signature is invalid for qe_report", "QE report is not signed by the PCK key"),
    ("Signature is invalid for tcb_info", "TCB info signature is invalid"),
    ("Signature is invalid for qe_identity", "QE identity signature is invalid"),
    # --- freshness -------------------------------------------------------------------------
    ("TCBInfo expired", "TCB info is past its next update"),
    ("TCBInfo issue date is in the future", "TCB info is not yet issued"),
    ("QE Identity expired", "QE identity is past its next update"),
    ("QE Identity issue date is in the future", "QE identity is not yet issued"),
    ("ExpiredRevocationList", "a CRL is past its next update"),
    ("CrlExpired", "a CRL is past its next update"),
    ("certificate revocation list expired", "a CRL is past its next update"),
    ("CertNotValidYet", "a certificate is not yet valid"),
    ("NotValidYet", "a certificate is not yet valid"),
    ("CertExpired", "a certificate has expired"),
    ("certificate expired", "a certificate has expired"),
    ("Collateral expired", "collateral has expired"),
    # --- chains and revocation -------------------------------------------------------------
    ("CertRevoked", "a certificate in the chain is revoked"),
    (
        "UnknownRevocationStatus",
        "revocation status unknown (CRL missing or not signed by the issuer)",
    ),
    ("InvalidCrlSignatureForPublicKey", "a CRL signature is invalid"),
    ("Failed to parse root CA CRL", "root CA CRL is invalid"),
    ("Failed to parse PCK CRL", "PCK CRL is invalid"),
    ("Failed to load root ca", "root CA certificate is invalid"),
    ("UnknownIssuer", "a certificate chain does not lead to the trusted root"),
    ("InvalidSignatureForPublicKey", "a certificate signature is invalid"),
    ("BadSignature", "a certificate signature is invalid"),
    ("Failed to verify certificate chain", "certificate chain verification failed"),
    ("Certificate chain is too short", "collateral certificate chain is incomplete"),
    # --- TCB -----------------------------------------------------------------------------------
    ("No matching TCB level found", "the platform's TCB matches no level of the TCB info"),
    ("TCB level mismatch", "the platform's TCB matches no level of the TCB info"),
    ("Revoked", "the platform's TCB is revoked"),
    ("Fmspc mismatch", "collateral is for another platform (FMSPC)"),
    ("non-TDX TCB info", "collateral is for another TEE type"),
    ("Unsupported QE Identity", "QE identity is for another TEE type"),
    ("QE ISVPRODID mismatch", "quoting enclave does not match the QE identity"),
    ("QE MISCSELECT mismatch", "quoting enclave does not match the QE identity"),
    ("QE MRSIGNER mismatch", "quoting enclave does not match the QE identity"),
    ("QE ATTRIBUTES mismatch", "quoting enclave does not match the QE identity"),
    ("TDX module MRSIGNER mismatch", "TDX module signer does not match the TCB info"),
    ("component count mismatch", "TCB info components are malformed"),
    # --- TD attributes (checked by dcap-qvl after every signature) ---------------------------
    ("Reserved bits in TD attributes are set", "reserved TD attribute bits are set"),
    ("SEPT_VE_DISABLE is not enabled", "the TD does not set SEPT_VE_DISABLE"),
    ("Invalid mr service td", "MR_SERVICETD is not zero"),
    # --- collateral encoding ---------------------------------------------------------------
    ("Failed to decode TcbInfo", "TCB info cannot be parsed"),
    ("Failed to decode QeIdentity", "QE identity cannot be parsed"),
    ("Failed to parse TCB Info", "TCB info dates cannot be parsed"),
    ("Failed to parse QE Identity", "QE identity dates cannot be parsed"),
)
# Our explanation: its check, by the error class it raises.
_OUTCOMES: dict[type[ATLSError], dict[str, str]] = {
    MalformedEvidence: {
        "quote cannot be parsed": "dcap.quote_format",
        "unsupported quote version": "dcap.quote_format",
        "unsupported TEE type": "dcap.quote_format",
        "unsupported attestation key type": "dcap.quote_format",
        "quote carries no PCK certificate chain": "dcap.quote_format",
        "quote is truncated": "dcap.quote_format",
        "QE report cannot be parsed": "dcap.quote_format",
        "PCK certificates cannot be parsed": "dcap.quote_format",
        "TCB info components are malformed": "dcap.collateral_format",
        "TCB info cannot be parsed": "dcap.collateral_format",
        "QE identity cannot be parsed": "dcap.collateral_format",
        "TCB info dates cannot be parsed": "dcap.collateral_format",
        "QE identity dates cannot be parsed": "dcap.collateral_format",
    },
    StaleEvidence: {
        "TCB info is past its next update": "dcap.tcb_info_expired",
        "TCB info is not yet issued": "dcap.tcb_info_not_yet_valid",
        "QE identity is past its next update": "dcap.qe_identity_expired",
        "QE identity is not yet issued": "dcap.qe_identity_not_yet_valid",
        "a CRL is past its next update": "dcap.crl_expired",
        "a certificate is not yet valid": "dcap.certificate_not_yet_valid",
        "a certificate has expired": "dcap.certificate_expired",
        "collateral has expired": "dcap.collateral_expired",
    },
    UntrustedChain: {
        "PCK certificate chain is incomplete": "dcap.pck_chain",
        "quote signature is invalid": "dcap.quote_signature",
        "attestation key is not bound to the QE report": "dcap.qe_report_hash",
        "QE report is not signed by the PCK key": "dcap.qe_report_signature",
        "TCB info signature is invalid": "dcap.tcb_info_signature",
        "QE identity signature is invalid": "dcap.qe_identity_signature",
        "a certificate in the chain is revoked": "dcap.certificate_revoked",
        "revocation status unknown (CRL missing or not signed by the issuer)": "dcap.crl",
        "a CRL signature is invalid": "dcap.crl_signature",
        "root CA CRL is invalid": "dcap.crl",
        "PCK CRL is invalid": "dcap.crl",
        "root CA certificate is invalid": "dcap.root_ca",
        "a certificate chain does not lead to the trusted root": "dcap.certificate_chain",
        "a certificate signature is invalid": "dcap.certificate_chain",
        "certificate chain verification failed": "dcap.certificate_chain",
        "collateral certificate chain is incomplete": "dcap.certificate_chain",
        "the platform's TCB matches no level of the TCB info": "dcap.tcb_level",
        "the platform's TCB is revoked": "dcap.tcb_revoked",
        "collateral is for another platform (FMSPC)": "dcap.fmspc",
        "collateral is for another TEE type": "dcap.collateral_tee",
        "QE identity is for another TEE type": "dcap.collateral_tee",
        "quoting enclave does not match the QE identity": "dcap.qe_identity",
        "TDX module signer does not match the TCB info": "dcap.tdx_module",
        "reserved TD attribute bits are set": "dcap.td_attributes",
        "the TD does not set SEPT_VE_DISABLE": "dcap.sept_ve_disable",
        "MR_SERVICETD is not zero": "dcap.mr_servicetd",
    },
}
_RAISES = {
    reason: (cls, check) for cls, checks in _OUTCOMES.items() for reason, check in checks.items()
}


def map_qvl_error(exc: Exception) -> ATLSError:
    """The atls error for a dcap-qvl failure (never a bare "verify failed")."""
    text = str(exc).strip()
    detail = text.removeprefix("Verification failed:").strip() or type(exc).__name__
    lowered = text.lower()
    for needle, reason in _RULES:
        if needle.lower() in lowered:
            cls, check = _RAISES[reason]
            return cls(f"{reason} (dcap-qvl: {_one_line(detail)})", check=check)
    return UntrustedChain(
        f"quote verification failed (dcap-qvl: {_one_line(detail)})", check="dcap.verify"
    )


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())

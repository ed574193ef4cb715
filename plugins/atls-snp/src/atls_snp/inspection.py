"""What ``atls inspect`` shows of an SEV-SNP report: decoded, never verified.

Nothing here checks the report's signature, the certificate chain, the VCEK's
match with the report or any policy: it names the report's fields (the same
names results and ``reference_values`` use, from :class:`~atls_snp.report.Report`)
so an operator whose server was refused can see which value differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from atls_core.errors import ATLSError
from atls_snp.certs import AmdCertificate, parse_certificate
from atls_snp.chain import product_of
from atls_snp.report import Report, parse_report
from atls_snp.roots import Product, SigningKey

__all__ = ["describe_report"]

_NO_PRODUCT = (
    "a version 2 report names no product (no CPUID) and no VCEK/VLEK came with it: TCB "
    "values are shown raw; settings.product (with --config) splits them into SPLs"
)


def describe_report(
    raw: bytes, certificates: Sequence[bytes], *, configured: Product | None = None
) -> dict[str, Any]:
    """A report's identity, TCB and key binding, and the certificates that came with it.

    ``configured`` is the validator's ``product`` setting, the fallback for version 2
    reports.  Raises :class:`~atls_core.errors.MalformedEvidence` for what is no report.
    """
    report = parse_report(raw)
    readable = [_read_certificate(blob) for blob in certificates]
    product, found_in = _product(report, configured, [c for c in readable if c is not None])
    fields = report.field_claims(product)
    del fields["guest_svn"]  # a measurement (pinnable), shown there
    return {
        "format": f"AMD SEV-SNP attestation report v{report.version}: signature NOT verified",
        **_product_view(product, found_in),
        "signing_key": _signing_key(report),
        "debug": report.debug,
        "vmpl": fields.pop("vmpl"),
        "report_data": report.report_data.hex(),
        "measurements": report.measurements(),
        "reported_tcb": fields.pop("reported_tcb"),
        "committed_firmware": fields.pop("committed_firmware"),
        "fields": fields,
        "certificates": [_certificate_view(c) if c is not None else "unreadable" for c in readable],
    }


def _product_view(product: Product | None, found_in: str) -> dict[str, Any]:
    if product is None:
        return {"product": None, "product_note": _NO_PRODUCT}
    return {"product": product.value, "product_from": found_in}


def _read_certificate(blob: bytes) -> AmdCertificate | None:
    try:
        return parse_certificate(blob)
    except ATLSError:
        return None


def _product(
    report: Report, configured: Product | None, certificates: Sequence[AmdCertificate]
) -> tuple[Product | None, str]:
    """The product whose TCB layout applies, and where that came from (as verification finds it)."""
    if report.cpuid_product is not None:
        return report.cpuid_product, "the report's CPUID"
    if configured is not None:
        return configured, "settings.product"
    named = {_vek_product(c) for c in certificates} - {None}
    if len(named) == 1:
        return named.pop(), "the VCEK/VLEK certificate's productName"
    return None, ""


def _vek_product(certificate: AmdCertificate) -> Product | None:
    if certificate.subject_cn not in {key.certificate_name for key in SigningKey}:
        return None
    try:
        return product_of(certificate.vek.product_name)
    except ATLSError:
        return None


def _signing_key(report: Report) -> str:
    try:
        return report.signing_key.name
    except ATLSError:
        return f"unknown ({report.signing_key_field})"


def _certificate_view(certificate: AmdCertificate) -> dict[str, Any]:
    """Who the certificate names, NOT checked against anything."""
    return {**certificate.describe(), "issuer": certificate.issuer_cn}

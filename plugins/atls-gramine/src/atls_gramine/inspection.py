"""What ``atls inspect`` shows of a Gramine RA-TLS certificate: decoded, never verified.

The SGX quote in the certificate's extension is read by atls-dcap's report
parser (the same fields a verified quote records); nothing checks its
signature, the PCK chain, the collateral, the key binding or a policy.  The
measurements carry the names ``reference_values`` use, and the key binding is
spelt out so it can be compared with the certificate's ``key_sha256``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from atls_core.binding import SCHEMES
from atls_core.errors import MalformedEvidence
from atls_dcap.report import parse_report_fields
from atls_gramine.specs import SCHEME_TCG, SGX_FLAGS, SGX_MEASUREMENT_NAMES

__all__ = ["describe_ratls"]

_ENCLAVE_FIELDS = ("report_data", "attributes", "isv_prod_id", "isv_svn", "cpu_svn")
"""Fields shown in their own sections, not again under ``fields``."""
_ZERO32 = bytes(32)


def describe_ratls(
    scheme: str, quote: bytes, material: Mapping[str, bytes], extras: Mapping[str, Any]
) -> dict[str, Any]:
    """The quote's enclave identity, SVNs, attributes and how it binds the TLS key.

    ``scheme``, ``material`` and ``extras`` are what the validator read from the
    extension.  Raises :class:`~atls_core.errors.MalformedEvidence` unless it is an SGX quote.
    """
    tee_type, version, fields = parse_report_fields(quote)
    if tee_type != "sgx":
        raise MalformedEvidence(
            "a Gramine RA-TLS certificate must carry an SGX quote",
            check="gramine.tee_type",
            expected="sgx",
            actual=tee_type,
        )
    flags = _attribute_flags(fields.get("attributes"))
    report_data = _bytes(fields.get("report_data"))
    return {
        "format": f"Gramine RA-TLS {extras['ratls_extension']} extension: SGX quote "
        f"v{version}, signature NOT verified",
        "debug": flags["debug"],
        "measurements": {
            name: _bytes(fields[name]).hex() for name in SGX_MEASUREMENT_NAMES if name in fields
        },
        "isv_prod_id": fields.get("isv_prod_id"),
        "isv_svn": fields.get("isv_svn"),
        "cpu_svn": _bytes(fields.get("cpu_svn")).hex(),
        "attributes": flags,
        "report_data": report_data.hex(),
        "key_binding": _key_binding(scheme, material, report_data, extras),
        "fields": {
            name: value.hex() if isinstance(value, bytes) else value
            for name, value in fields.items()
            if name not in SGX_MEASUREMENT_NAMES and name not in _ENCLAVE_FIELDS
        },
    }


def _bytes(value: bytes | int | None) -> bytes:
    return value if isinstance(value, bytes) else b""


def _attribute_flags(attributes: bytes | int | None) -> dict[str, bool]:
    """The ``ATTRIBUTES.FLAGS`` bits Gramine checks (DEBUG among them)."""
    flags = int.from_bytes(_bytes(attributes)[:8], "little")
    return {name: bool(flags & bit) for name, bit in SGX_FLAGS.items()}


def _key_binding(
    scheme: str, material: Mapping[str, bytes], report_data: bytes, extras: Mapping[str, Any]
) -> dict[str, Any]:
    """The binding rule and what the extension claims, for comparison with the certificate."""
    binding: dict[str, Any] = {"scheme": scheme, "rule": SCHEMES[scheme].description}
    if scheme != SCHEME_TCG:
        binding["compare"] = "report_data's first 32 bytes with the certificate's key_sha256"
        return binding
    expected = hashlib.sha256(material["claims"]).digest() + _ZERO32
    binding["pubkey_hash_alg"] = material["pubkey_hash_alg"].decode()
    binding["pubkey_hash"] = material["pubkey_hash"].hex()
    binding["report_data_is_claims_hash"] = hmac.compare_digest(expected, report_data)
    if binding["pubkey_hash_alg"] == "sha256":
        binding["compare"] = "pubkey_hash with the certificate's key_sha256"
    if "ignored_tcg_claims" in extras:
        binding["ignored_claims"] = extras["ignored_tcg_claims"]
    return binding

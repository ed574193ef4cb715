"""Synthetic SEV-SNP attestation reports, signed under :mod:`atls_snp.testing.pki`.

:func:`make_report` lays out an ATTESTATION_REPORT (version 2, 3 or 5) field by
field and signs bytes 0x000-0x29F with a VCEK or VLEK key, R and S written as
72-byte little-endian fields, as the firmware does.  :func:`resign` re-signs a
report after a test has changed a field.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from atls_snp.report import REPORT_SIZE, SIGNED_SIZE
from atls_snp.roots import Product, SigningKey
from atls_snp.testing.pki import Endorsement

__all__ = [
    "CPUID",
    "DEFAULT_MEASUREMENT",
    "DEFAULT_TCB",
    "encode_tcb",
    "make_report",
    "resign",
]

DEFAULT_MEASUREMENT = bytes.fromhex("5e" * 48)
DEFAULT_TCB: Mapping[str, int] = {"fmc": 0, "bootloader": 4, "tee": 0, "snp": 24, "microcode": 219}
CPUID: Mapping[Product, tuple[int, int, int]] = {
    Product.MILAN: (0x19, 0x01, 0x01),
    Product.GENOA: (0x19, 0x11, 0x01),
    Product.TURIN: (0x1A, 0x02, 0x01),
}
POLICY_DEFAULT = 0x30000
"""SMT allowed, reserved bit 17 set, no debug, no migration agent."""


def encode_tcb(product: Product, tcb: Mapping[str, int]) -> bytes:
    """TCB_VERSION in the product's layout (Turin: FMC first)."""
    raw = bytearray(8)
    if product.turin_layout:
        raw[0], raw[1], raw[2], raw[3] = (
            tcb.get("fmc", 0),
            tcb["bootloader"],
            tcb["tee"],
            tcb["snp"],
        )
    else:
        raw[0], raw[1], raw[6] = tcb["bootloader"], tcb["tee"], tcb["snp"]
    raw[7] = tcb["microcode"]
    return bytes(raw)


def _put(report: bytearray, offset: int, value: bytes) -> None:
    report[offset : offset + len(value)] = value


def _sign(signed: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA384())))
    return r.to_bytes(72, "little") + s.to_bytes(72, "little")


def resign(report: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """``report`` with a fresh signature by ``key`` over its (possibly edited) signed part."""
    signed = report[:SIGNED_SIZE]
    return signed + _sign(signed, key) + report[SIGNED_SIZE + 144 :]


def make_report(
    endorsement: Endorsement,
    report_data: bytes,
    *,
    product: Product = Product.MILAN,
    version: int = 3,
    guest_svn: int = 1,
    policy: int = POLICY_DEFAULT,
    family_id: bytes = bytes(16),
    image_id: bytes = bytes(16),
    vmpl: int = 0,
    platform_info: int = 0x25,
    measurement: bytes = DEFAULT_MEASUREMENT,
    host_data: bytes = bytes(32),
    id_key_digest: bytes = bytes(48),
    author_key_digest: bytes = bytes(48),
    reported_tcb: Mapping[str, int] | None = None,
    current_tcb: Mapping[str, int] | None = None,
    chip_id: bytes | None = None,
    firmware: tuple[int, int, int] = (1, 55, 30),
    signing_key: SigningKey | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A signed report; the reported TCB defaults to the endorsement key's own TCB."""
    if len(report_data) != 64:
        raise ValueError("report data is 64 bytes")
    reported = encode_tcb(product, reported_tcb or endorsement.tcb)
    current = encode_tcb(product, current_tcb) if current_tcb is not None else reported
    raw = bytearray(REPORT_SIZE)
    _put(raw, 0x00, version.to_bytes(4, "little"))
    _put(raw, 0x04, guest_svn.to_bytes(4, "little"))
    _put(raw, 0x08, policy.to_bytes(8, "little"))
    _put(raw, 0x10, family_id)
    _put(raw, 0x20, image_id)
    _put(raw, 0x30, vmpl.to_bytes(4, "little"))
    _put(raw, 0x34, (1).to_bytes(4, "little"))
    _put(raw, 0x38, current)
    _put(raw, 0x40, platform_info.to_bytes(8, "little"))
    kind = (signing_key or endorsement.signing_key).value
    _put(raw, 0x48, (kind << 2).to_bytes(4, "little"))
    _put(raw, 0x50, report_data)
    _put(raw, 0x90, measurement)
    _put(raw, 0xC0, host_data)
    _put(raw, 0xE0, id_key_digest)
    _put(raw, 0x110, author_key_digest)
    _put(raw, 0x140, bytes(range(32)))
    _put(raw, 0x180, reported)
    if version >= 3:
        _put(raw, 0x188, bytes(CPUID[product]))
    _put(raw, 0x1A0, endorsement.chip_id if chip_id is None else chip_id)
    _put(raw, 0x1E0, reported)
    major, minor, build = firmware
    _put(raw, 0x1E8, bytes([build, minor, major, 0, build, minor, major, 0]))
    _put(raw, 0x1F0, reported)
    signed = bytes(raw[:SIGNED_SIZE])
    _put(raw, SIGNED_SIZE, _sign(signed, signer or endorsement.key))
    return bytes(raw)

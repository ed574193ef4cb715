"""The SEV-SNP attestation report (ATTESTATION_REPORT, versions 2 to 5), read field by field.

Layout per AMD's SEV Secure Nested Paging Firmware ABI specification (56860):
1184 bytes, little-endian; the firmware's ECDSA P-384/SHA-384 signature covers
bytes 0x000-0x29F and sits at 0x2A0 as R and S, each a 72-byte little-endian
field.  Version 3 adds the CPUID family/model/stepping at 0x188, version 5 the
launch and current mitigation vectors at 0x1F8/0x200; both sit in space that
was reserved (zero) before.  TCB_VERSION values are 8 bytes whose meaning
depends on the product: Milan and Genoa put the boot loader SPL first, Turin
the FMC SPL (:class:`TcbVersion`).

Nothing here is trusted: parsing only names the bytes; :mod:`atls_snp.chain`
checks the signature before any field is believed.
"""

from __future__ import annotations

from typing import Any, Self, overload

import attrs

from atls_core.errors import MalformedEvidence
from atls_snp.roots import Product, SigningKey, product_from_cpuid

__all__ = [
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "SUPPORTED_VERSIONS",
    "Report",
    "TcbVersion",
    "parse_report",
]

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = frozenset({2, 3, 4, 5})
ECDSA_P384_SHA384 = 1

_POLICY_BITS = {
    "smt_allowed": 16,
    "migrate_ma": 18,
    "debug": 19,
    "single_socket": 20,
    "cxl_allowed": 21,
    "mem_aes_256_xts": 22,
    "rapl_disabled": 23,
    "ciphertext_hiding": 24,
    "page_swap_disabled": 25,
}
_TCB_OFFSETS = {
    "current_tcb": 0x38,
    "reported_tcb": 0x180,
    "committed_tcb": 0x1E0,
    "launch_tcb": 0x1F0,
}
"""Where each TCB_VERSION sits, in the order results list them."""
_PLATFORM_INFO_BITS = {
    "smt_enabled": 0,
    "tsme_enabled": 1,
    "ecc_enabled": 2,
    "rapl_disabled": 3,
    "ciphertext_hiding_enabled": 4,
    "alias_check_complete": 5,
    "tio_enabled": 7,
}


def _u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


class _Bytes:
    """A report field: the bytes from ``start`` to ``end`` (offsets as in AMD's table)."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end

    @overload
    def __get__(self, report: None, owner: object) -> Self: ...
    @overload
    def __get__(self, report: Report, owner: object) -> bytes: ...
    def __get__(self, report: Report | None, owner: object) -> Self | bytes:
        return self if report is None else report.raw[self.start : self.end]


class _Int:
    """A report field: a little-endian unsigned integer of ``size`` bytes at ``offset``."""

    def __init__(self, offset: int, size: int) -> None:
        self.offset, self.size = offset, size

    @overload
    def __get__(self, report: None, owner: object) -> Self: ...
    @overload
    def __get__(self, report: Report, owner: object) -> int: ...
    def __get__(self, report: Report | None, owner: object) -> Self | int:
        if report is None:
            return self
        return int.from_bytes(report.raw[self.offset : self.offset + self.size], "little")


def _bits(value: int, names: dict[str, int]) -> dict[str, bool]:
    return {name: bool(value >> bit & 1) for name, bit in names.items()}


@attrs.frozen
class TcbVersion:
    """One TCB_VERSION: the security patch levels of the firmware components."""

    raw: bytes = attrs.field(repr=lambda b: b.hex())
    turin: bool

    @property
    def value(self) -> int:
        return int.from_bytes(self.raw, "little")

    @property
    def fmc(self) -> int | None:
        return self.raw[0] if self.turin else None

    @property
    def bootloader(self) -> int:
        return self.raw[1] if self.turin else self.raw[0]

    @property
    def tee(self) -> int:
        return self.raw[2] if self.turin else self.raw[1]

    @property
    def snp(self) -> int:
        return self.raw[3] if self.turin else self.raw[6]

    @property
    def microcode(self) -> int:
        return self.raw[7]

    def components(self) -> dict[str, int]:
        """Named SPLs (``fmc`` only for Turin's layout)."""
        named = {
            "bootloader": self.bootloader,
            "tee": self.tee,
            "snp": self.snp,
            "microcode": self.microcode,
        }
        fmc = self.fmc
        return {"fmc": fmc, **named} if fmc is not None else named

    def to_claim(self) -> dict[str, Any]:
        return {"raw": f"{self.value:016x}", **self.components()}


@attrs.frozen
class FirmwareVersion:
    major: int
    minor: int
    build: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}"

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.build)


@attrs.frozen
class Report:
    """A parsed (not yet verified) attestation report."""

    raw: bytes = attrs.field(repr=False)

    @property
    def signed_part(self) -> bytes:
        return self.raw[:SIGNED_SIZE]

    version = _Int(0x00, 4)
    guest_svn = _Int(0x04, 4)
    policy = _Int(0x08, 8)
    family_id = _Bytes(0x10, 0x20)
    image_id = _Bytes(0x20, 0x30)
    vmpl = _Int(0x30, 4)
    signature_algo = _Int(0x34, 4)
    platform_info = _Int(0x40, 8)
    flags = _Int(0x48, 4)

    @property
    def author_key_en(self) -> bool:
        return bool(self.flags & 1)

    @property
    def mask_chip_key(self) -> bool:
        return bool(self.flags >> 1 & 1)

    @property
    def signing_key_field(self) -> int:
        return self.flags >> 2 & 0b111

    report_data = _Bytes(0x50, 0x90)
    measurement = _Bytes(0x90, 0xC0)
    host_data = _Bytes(0xC0, 0xE0)
    id_key_digest = _Bytes(0xE0, 0x110)
    author_key_digest = _Bytes(0x110, 0x140)
    report_id = _Bytes(0x140, 0x160)
    report_id_ma = _Bytes(0x160, 0x180)

    @property
    def cpuid(self) -> tuple[int, int, int] | None:
        """(family, model, stepping) for version 3 and later."""
        if self.version < 3:
            return None
        return (self.raw[0x188], self.raw[0x189], self.raw[0x18A])

    chip_id = _Bytes(0x1A0, 0x1E0)

    @property
    def current_version(self) -> FirmwareVersion:
        return FirmwareVersion(major=self.raw[0x1EA], minor=self.raw[0x1E9], build=self.raw[0x1E8])

    @property
    def committed_version(self) -> FirmwareVersion:
        return FirmwareVersion(major=self.raw[0x1EE], minor=self.raw[0x1ED], build=self.raw[0x1EC])

    @property
    def mitigation_vectors(self) -> tuple[int, int] | None:
        """(launch, current) for version 5 and later."""
        if self.version < 5:
            return None
        return (_u64(self.raw, 0x1F8), _u64(self.raw, 0x200))

    @property
    def signature_rs(self) -> tuple[int, int]:
        """R and S, each a 72-byte little-endian field."""
        return (
            int.from_bytes(self.raw[0x2A0:0x2E8], "little"),
            int.from_bytes(self.raw[0x2E8:0x330], "little"),
        )

    @property
    def signing_key(self) -> SigningKey:
        try:
            return SigningKey(self.signing_key_field)
        except ValueError:
            raise MalformedEvidence(
                "the report names no endorsement key it was signed with",
                check="snp.signing_key",
                expected="0 (VCEK) or 1 (VLEK)",
                actual=self.signing_key_field,
            ) from None

    @property
    def cpuid_product(self) -> Product | None:
        cpuid = self.cpuid
        return None if cpuid is None else product_from_cpuid(cpuid[0], cpuid[1])

    @property
    def debug(self) -> bool:
        return bool(self.policy >> _POLICY_BITS["debug"] & 1)

    @property
    def migrate_ma(self) -> bool:
        return bool(self.policy >> _POLICY_BITS["migrate_ma"] & 1)

    @property
    def smt_enabled(self) -> bool:
        """Whether the *platform* runs with SMT on (PLATFORM_INFO bit 0)."""
        return bool(self.platform_info & 1)

    def policy_claim(self) -> dict[str, Any]:
        return {
            "raw": f"{self.policy:016x}",
            "abi_major": self.policy >> 8 & 0xFF,
            "abi_minor": self.policy & 0xFF,
            **_bits(self.policy, _POLICY_BITS),
        }

    def platform_info_claim(self) -> dict[str, Any]:
        return {
            "raw": f"{self.platform_info:016x}",
            **_bits(self.platform_info, _PLATFORM_INFO_BITS),
        }

    def tcb(self, offset: int, product: Product) -> TcbVersion:
        return TcbVersion(raw=self.raw[offset : offset + 8], turin=product.turin_layout)

    def _tcb_claim(self, offset: int, product: Product | None) -> dict[str, Any]:
        """A TCB_VERSION as a claim; its SPLs only when the product (their layout) is known."""
        if product is None:
            return {"raw": f"{_u64(self.raw, offset):016x}"}
        return self.tcb(offset, product).to_claim()

    def measurements(self) -> dict[str, str]:
        """The fields ``reference_values`` can pin, under their names there: lowercase hex,
        ``guest_svn`` in decimal (one definition for results and ``atls inspect``)."""
        return {
            "measurement": self.measurement.hex(),
            "host_data": self.host_data.hex(),
            "id_key_digest": self.id_key_digest.hex(),
            "author_key_digest": self.author_key_digest.hex(),
            "family_id": self.family_id.hex(),
            "image_id": self.image_id.hex(),
            "guest_svn": str(self.guest_svn),
            "chip_id": self.chip_id.hex(),
        }

    def field_claims(self, product: Product | None) -> dict[str, Any]:
        """Every other field except the report data, named as results name them.

        TCB values are split into SPLs by ``product``'s layout; with no product known
        (a version 2 report read without its certificates) they are shown raw.
        """
        cpuid = self.cpuid
        vectors = self.mitigation_vectors
        return {
            "guest_svn": self.guest_svn,
            "guest_policy": self.policy_claim(),
            "vmpl": self.vmpl,
            "signature_algo": self.signature_algo,
            "platform_info": self.platform_info_claim(),
            "author_key_en": self.author_key_en,
            "mask_chip_key": self.mask_chip_key,
            "report_id": self.report_id.hex(),
            "report_id_ma": self.report_id_ma.hex(),
            **{name: self._tcb_claim(offset, product) for name, offset in _TCB_OFFSETS.items()},
            "cpuid": None
            if cpuid is None
            else {"family": cpuid[0], "model": cpuid[1], "stepping": cpuid[2]},
            "current_firmware": str(self.current_version),
            "committed_firmware": str(self.committed_version),
            "mitigation_vectors": None
            if vectors is None
            else {"launch": f"{vectors[0]:016x}", "current": f"{vectors[1]:016x}"},
        }

    def current_tcb(self, product: Product) -> TcbVersion:
        return self.tcb(_TCB_OFFSETS["current_tcb"], product)

    def reported_tcb(self, product: Product) -> TcbVersion:
        return self.tcb(_TCB_OFFSETS["reported_tcb"], product)

    def committed_tcb(self, product: Product) -> TcbVersion:
        return self.tcb(_TCB_OFFSETS["committed_tcb"], product)

    def launch_tcb(self, product: Product) -> TcbVersion:
        return self.tcb(_TCB_OFFSETS["launch_tcb"], product)


def parse_report(data: bytes) -> Report:
    """A report of a known version with the only signature algorithm AMD defines."""
    if len(data) != REPORT_SIZE:
        raise MalformedEvidence(
            "an SEV-SNP attestation report is 1184 bytes",
            check="snp.report.size",
            expected=REPORT_SIZE,
            actual=len(data),
        )
    report = Report(raw=bytes(data))
    if report.version not in SUPPORTED_VERSIONS:
        raise MalformedEvidence(
            "unsupported attestation report version",
            check="snp.report.version",
            expected=sorted(SUPPORTED_VERSIONS),
            actual=report.version,
        )
    if report.signature_algo != ECDSA_P384_SHA384:
        raise MalformedEvidence(
            "unsupported report signature algorithm",
            check="snp.report.signature_algo",
            expected=f"{ECDSA_P384_SHA384} (ECDSA P-384 with SHA-384)",
            actual=report.signature_algo,
        )
    return report

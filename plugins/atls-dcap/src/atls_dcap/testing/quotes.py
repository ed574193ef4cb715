"""Synthetic DCAP quotes signed under a `DcapTestPki`: TDX v4 / v5 and SGX v3.

Layout (Intel SGX/TDX DCAP quote format): a 48-byte header, the report body (SGX enclave report,
TD report 1.0, or for v5 a typed TD report 1.5), then the signature data: ECDSA-P256 signature of
header || body by the attestation key, the attestation key, and the QE's certification: QE report,
its signature by the PCK key, QE auth data, and certification data type 5 (the PCK chain as PEM).
For v4 / v5 the QE part is wrapped in certification data type 6. The QE report's report data is
SHA-256(attestation key || QE auth data) || 32 zero bytes, which binds the attestation key to the PCK.

``dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, now)`` accepts what this module
makes (with ``pki.collateral_json(tee)``), with the TCB status the collateral gives the chosen
platform profile (`tcb`).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from typing import Final, TypedDict

from atls_dcap.testing.pki import QE_MRSIGNER, QE_PROFILES, DcapTestPki

__all__ = [
    "make_tdx_quote",
    "make_sgx_quote",
    "SgxQuoteOptions",
    "QE_VENDOR_ID_INTEL",
    "DEFAULT_MRTD",
    "DEFAULT_MRSEAM",
    "DEFAULT_XFAM",
    "DEFAULT_MRENCLAVE",
    "DEFAULT_MRSIGNER",
    "TD_ATTRIBUTES_DEBUG",
    "TD_ATTRIBUTES_SEPT_VE_DISABLE",
    "SGX_ATTRIBUTES_DEBUG",
    "QE_AUTH_DATA",
]

QE_VENDOR_ID_INTEL: Final = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
DEFAULT_MRTD: Final = hashlib.sha384(b"atls synthetic TD").digest()
DEFAULT_MRSEAM: Final = hashlib.sha384(b"atls synthetic TDX module").digest()
DEFAULT_XFAM: Final = bytes.fromhex("e702060000000000")
DEFAULT_MRENCLAVE: Final = hashlib.sha256(b"atls synthetic enclave").digest()
DEFAULT_MRSIGNER: Final = hashlib.sha256(b"atls synthetic enclave signer").digest()
TD_ATTRIBUTES_DEBUG: Final = 1 << 0  # TUD.DEBUG
TD_ATTRIBUTES_SEPT_VE_DISABLE: Final = 1 << 28
SGX_ATTRIBUTES_DEBUG: Final = 0x02  # ATTRIBUTES.FLAGS bit 1
QE_AUTH_DATA: Final = bytes(range(32))

_ATTESTATION_KEY_TYPE_ECDSA_P256: Final = 2
_TEE_TYPE_SGX: Final = 0x00000000
_TEE_TYPE_TDX: Final = 0x00000081
_CERT_DATA_PCK_CHAIN: Final = 5
_CERT_DATA_QE_REPORT: Final = 6
_BODY_TYPE_TD15: Final = 3
_SGX_DEFAULT_FLAGS: Final = 0x05  # INIT | MODE64BIT
_SGX_DEFAULT_XFRM: Final = 0x03  # x87 | SSE
_QE_ATTRIBUTES: Final = bytes([0x11]) + bytes(15)


def _exact(name: str, value: bytes, size: int) -> bytes:
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def _header(*, version: int, tee_type: int, qe_svn: int, pce_svn: int) -> bytes:
    user_data = hashlib.sha256(b"atls synthetic QE id").digest()[:16] + bytes(4)
    return struct.pack(
        "<HHIHH16s20s",
        version,
        _ATTESTATION_KEY_TYPE_ECDSA_P256,
        tee_type,
        qe_svn,
        pce_svn,
        QE_VENDOR_ID_INTEL,
        user_data,
    )


def _enclave_report(
    *,
    cpu_svn: bytes,
    misc_select: int,
    attributes: bytes,
    mr_enclave: bytes,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    report_data: bytes,
    isv_ext_prod_id: bytes = bytes(16),
    config_id: bytes = bytes(64),
    config_svn: int = 0,
    isv_family_id: bytes = bytes(16),
) -> bytes:
    """An SGX REPORTBODY (384 bytes)."""
    report = b"".join(
        [
            _exact("cpu_svn", cpu_svn, 16),
            struct.pack("<I", misc_select),
            bytes(12),
            _exact("isv_ext_prod_id", isv_ext_prod_id, 16),
            _exact("attributes", attributes, 16),
            _exact("mr_enclave", mr_enclave, 32),
            bytes(32),
            _exact("mr_signer", mr_signer, 32),
            bytes(32),
            _exact("config_id", config_id, 64),
            struct.pack("<HHH", isv_prod_id, isv_svn, config_svn),
            bytes(42),
            _exact("isv_family_id", isv_family_id, 16),
            _exact("report_data", report_data, 64),
        ]
    )
    assert len(report) == 384
    return report


@functools.lru_cache(maxsize=128)
def _signed_qe_report(pki: DcapTestPki, tee: str, tcb: str, qe_svn: int | None) -> bytes:
    """QE report || its PCK signature || QE auth data.

    Constant per (PKI, TEE, platform, QE SVN): cached, so a quote costs one ECDSA signature."""
    qe = QE_PROFILES[tee]
    qe_report_data = hashlib.sha256(pki.attestation_public_key + QE_AUTH_DATA).digest() + bytes(32)
    qe_report = _enclave_report(
        cpu_svn=pki.platform_tcb(tcb).cpu_svn,
        misc_select=0,
        attributes=_QE_ATTRIBUTES,
        mr_enclave=qe.mr_enclave,
        mr_signer=QE_MRSIGNER,
        isv_prod_id=qe.isv_prod_id,
        isv_svn=qe.isv_svn if qe_svn is None else qe_svn,
        report_data=qe_report_data,
    )
    return b"".join(
        [
            qe_report,
            pki.pck_sign(tcb, qe_report),
            struct.pack("<H", len(QE_AUTH_DATA)),
            QE_AUTH_DATA,
        ]
    )


def _qe_certification(
    pki: DcapTestPki, tee: str, tcb: str, qe_svn: int | None, chain_suffix: bytes = b""
) -> bytes:
    """The signed QE report, then certification data type 5 (the PCK chain, unsigned)."""
    chain = pki.pck_chain_pem(tcb).encode("ascii") + chain_suffix
    return b"".join(
        [
            _signed_qe_report(pki, tee, tcb, qe_svn),
            struct.pack("<HI", _CERT_DATA_PCK_CHAIN, len(chain)),
            chain,
        ]
    )


def _signed_quote(pki: DcapTestPki, signed: bytes, certification: bytes, *, wrap: bool) -> bytes:
    if wrap:
        certification = struct.pack("<HI", _CERT_DATA_QE_REPORT, len(certification)) + certification
    signature_data = pki.attestation_sign(signed) + pki.attestation_public_key + certification
    return signed + struct.pack("<I", len(signature_data)) + signature_data


def make_tdx_quote(
    pki: DcapTestPki,
    report_data: bytes,
    *,
    mrtd: bytes = DEFAULT_MRTD,
    rtmr: Sequence[bytes] = (bytes(48),) * 4,
    mr_config_id: bytes = bytes(48),
    mr_owner: bytes = bytes(48),
    mr_owner_config: bytes = bytes(48),
    mr_seam: bytes = DEFAULT_MRSEAM,
    mr_signer_seam: bytes = bytes(48),
    seam_attributes: bytes = bytes(8),
    xfam: bytes = DEFAULT_XFAM,
    td_attributes: bytes | None = None,
    debug: bool = False,
    sept_ve_disable: bool = True,
    tcb: str = "uptodate",
    version: int = 4,
    tee_tcb_svn: bytes | None = None,
    tee_tcb_svn2: bytes | None = None,
    mr_servicetd: bytes = bytes(48),
    qe_svn: int | None = None,
    chain_suffix: bytes = b"",
) -> bytes:
    """A TDX quote (v4, or v5 with a TD report 1.5 body) signed under `pki`.

    `report_data` must be 64 bytes. `tcb` picks the platform TCB profile ("uptodate",
    "outofdate", "unmatched"; see `atls_dcap.testing.pki.TCB_PROFILES`), which decides the PCK
    certificate and the default TEE_TCB_SVN. `td_attributes` (8 bytes, little-endian) overrides
    the attributes computed from `debug` / `sept_ve_disable`. `qe_svn` overrides the TD QE's
    ISVSVN (default: the QE identity's newest level; lower values make the QE out of date).
    `chain_suffix` is appended to the PEM chain in the certification data, which no signature
    covers (anyone relaying the quote can add it, and dcap-qvl reads past it).
    """
    if version not in (4, 5):
        raise ValueError(f"TDX quote version must be 4 or 5, got {version}")
    if len(rtmr) != 4:
        raise ValueError(f"rtmr must hold 4 values, got {len(rtmr)}")
    platform = pki.platform_tcb(tcb)
    if td_attributes is None:
        flags = (TD_ATTRIBUTES_DEBUG if debug else 0) | (
            TD_ATTRIBUTES_SEPT_VE_DISABLE if sept_ve_disable else 0
        )
        td_attributes = flags.to_bytes(8, "little")
    svn = platform.tee_tcb_svn if tee_tcb_svn is None else tee_tcb_svn
    body = b"".join(
        [
            _exact("tee_tcb_svn", svn, 16),
            _exact("mr_seam", mr_seam, 48),
            _exact("mr_signer_seam", mr_signer_seam, 48),
            _exact("seam_attributes", seam_attributes, 8),
            _exact("td_attributes", td_attributes, 8),
            _exact("xfam", xfam, 8),
            _exact("mrtd", mrtd, 48),
            _exact("mr_config_id", mr_config_id, 48),
            _exact("mr_owner", mr_owner, 48),
            _exact("mr_owner_config", mr_owner_config, 48),
            *(_exact(f"rtmr[{i}]", value, 48) for i, value in enumerate(rtmr)),
            _exact("report_data", report_data, 64),
        ]
    )
    header = _header(version=version, tee_type=_TEE_TYPE_TDX, qe_svn=0, pce_svn=0)
    if version == 5:
        body += _exact("tee_tcb_svn2", svn if tee_tcb_svn2 is None else tee_tcb_svn2, 16)
        body += _exact("mr_servicetd", mr_servicetd, 48)
        signed = header + struct.pack("<HI", _BODY_TYPE_TD15, len(body)) + body
    else:
        signed = header + body
    certification = _qe_certification(pki, "tdx", tcb, qe_svn, chain_suffix)
    return _signed_quote(pki, signed, certification, wrap=True)


class SgxQuoteOptions(TypedDict, total=False):
    """:func:`make_sgx_quote`'s options, for helpers that make an SGX quote on the way
    (``**options: Unpack[SgxQuoteOptions]``, passed on as they came)."""

    mrenclave: bytes
    mrsigner: bytes
    isv_prod_id: int
    isv_svn: int
    debug: bool
    attributes: bytes | None
    misc_select: int
    config_id: bytes
    config_svn: int
    isv_family_id: bytes
    isv_ext_prod_id: bytes
    tcb: str
    qe_svn: int | None


def make_sgx_quote(
    pki: DcapTestPki,
    report_data: bytes,
    *,
    mrenclave: bytes = DEFAULT_MRENCLAVE,
    mrsigner: bytes = DEFAULT_MRSIGNER,
    isv_prod_id: int = 0,
    isv_svn: int = 0,
    debug: bool = False,
    attributes: bytes | None = None,
    misc_select: int = 0,
    config_id: bytes = bytes(64),
    config_svn: int = 0,
    isv_family_id: bytes = bytes(16),
    isv_ext_prod_id: bytes = bytes(16),
    tcb: str = "uptodate",
    qe_svn: int | None = None,
) -> bytes:
    """An SGX quote v3 signed under `pki`.

    `report_data` must be 64 bytes. `attributes` (16 bytes: FLAGS then XFRM, little-endian)
    defaults to INIT | MODE64BIT with XFRM x87 | SSE; `debug` sets the DEBUG flag on top of
    whatever attributes are used. `tcb` picks the platform TCB profile (PCK certificate);
    `qe_svn` overrides the QE's ISVSVN as for `make_tdx_quote`.
    """
    platform = pki.platform_tcb(tcb)
    if attributes is None:
        attributes = _SGX_DEFAULT_FLAGS.to_bytes(8, "little") + _SGX_DEFAULT_XFRM.to_bytes(
            8, "little"
        )
    flags = bytearray(_exact("attributes", attributes, 16))
    if debug:
        flags[0] |= SGX_ATTRIBUTES_DEBUG
    body = _enclave_report(
        cpu_svn=platform.cpu_svn,
        misc_select=misc_select,
        attributes=bytes(flags),
        mr_enclave=mrenclave,
        mr_signer=mrsigner,
        isv_prod_id=isv_prod_id,
        isv_svn=isv_svn,
        report_data=report_data,
        isv_ext_prod_id=isv_ext_prod_id,
        config_id=config_id,
        config_svn=config_svn,
        isv_family_id=isv_family_id,
    )
    header = _header(
        version=3,
        tee_type=_TEE_TYPE_SGX,
        qe_svn=QE_PROFILES["sgx"].isv_svn if qe_svn is None else qe_svn,
        pce_svn=platform.pce_svn,
    )
    return _signed_quote(pki, header + body, _qe_certification(pki, "sgx", tcb, qe_svn), wrap=False)

"""Measurement names shared by every validator of the same TEE.

A policy's ``reference_values`` should mean the same thing whichever backend
appraised the TEE: ``mrtd`` pinned for ``tdx.dcap`` must pin it for
``ita.tdx`` and ``azure.tdx`` too.  Plugins take their names from here rather
than spelling them again.
"""

from __future__ import annotations

__all__ = [
    "SEV_SNP",
    "SEV_SNP_SIZES",
    "SGX",
    "SGX_SIZES",
    "SGX_WORKLOAD",
    "TDX",
    "TDX_SIZES",
    "TDX_WORKLOAD",
]

TDX: tuple[str, ...] = (
    "mrtd",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "mrseam",
    "mrsignerseam",
    "mrconfigid",
    "mrowner",
    "mrownerconfig",
)
"""Intel TDX report fields that are measurements (lowercase, no separators)."""

SGX: tuple[str, ...] = ("mrenclave", "mrsigner")
"""Intel SGX report fields that are measurements."""

TDX_WORKLOAD: tuple[str, ...] = (
    "mrtd",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "mrconfigid",
    "mrowner",
    "mrownerconfig",
)
"""TDX measurements that identify the workload (the pinning rule's choices for a TD);
MRSEAM and MRSIGNERSEAM identify Intel's TDX module, not what runs in the TD."""

SGX_WORKLOAD: tuple[str, ...] = SGX
"""SGX measurements that identify the enclave."""

SEV_SNP: tuple[str, ...] = (
    "measurement",
    "host_data",
    "id_key_digest",
    "author_key_digest",
    "family_id",
    "image_id",
    "guest_svn",
    "chip_id",
)
"""AMD SEV-SNP attestation report fields that can be pinned (lowercase, words joined by
``_``); which of them identify the workload is the validator's call (dstack's HOST_DATA
pins its app, a plain guest's does not)."""

TDX_SIZES: dict[str, int] = dict.fromkeys(TDX, 48)
"""Every TDX measurement is a 48-byte SHA-384 value (``ValidatorSpec.measurement_sizes``)."""

SGX_SIZES: dict[str, int] = dict.fromkeys(SGX, 32)
"""MRENCLAVE and MRSIGNER are 32-byte SHA-256 values."""

SEV_SNP_SIZES: dict[str, int] = {
    "measurement": 48,
    "host_data": 32,
    "id_key_digest": 48,
    "author_key_digest": 48,
    "family_id": 16,
    "image_id": 16,
    "chip_id": 64,
}
"""The fixed-size SEV-SNP report fields (``guest_svn`` is a number)."""

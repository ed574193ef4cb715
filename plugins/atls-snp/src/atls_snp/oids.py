"""Object identifiers: our certificate extension and AMD's VCEK/VLEK extensions.

``ATLS_SNP_EVIDENCE`` is atls' own: ``<arc>.3.1`` under the project's private
arc (:mod:`atls_core.oids`, sub-arc ``.3`` is this package's):

- ``<arc>.3.1`` -- an SEV-SNP attestation report and the certificates that
  endorse it (:mod:`atls_snp.envelope`); the report data follows ``atls-v1``.

The AMD extensions (``1.3.6.1.4.1.3704.1.*``) are those AMD's key distribution
service writes into VCEK and VLEK certificates (AMD's "Versioned Chip
Endorsement Key" specification, 57230): the TCB security patch levels the key
was derived for, the chip's hardware ID and the product name.
"""

from __future__ import annotations

from atls_core.oids import ATLS_ARC, oid_under

__all__ = [
    "AMD_ARC",
    "ATLS_ARC",
    "ATLS_SNP_EVIDENCE",
    "BL_SPL",
    "CSP_ID",
    "FMC_SPL",
    "HW_ID",
    "PRODUCT_NAME",
    "SNP_SPL",
    "STRUCT_VERSION",
    "TEE_SPL",
    "UCODE_SPL",
]

ATLS_SNP_EVIDENCE = oid_under(ATLS_ARC, 3, 1)

AMD_ARC = "1.3.6.1.4.1.3704.1"
STRUCT_VERSION = oid_under(AMD_ARC, 1)
PRODUCT_NAME = oid_under(AMD_ARC, 2)
BL_SPL = oid_under(AMD_ARC, 3, 1)
TEE_SPL = oid_under(AMD_ARC, 3, 2)
SNP_SPL = oid_under(AMD_ARC, 3, 3)
UCODE_SPL = oid_under(AMD_ARC, 3, 8)
FMC_SPL = oid_under(AMD_ARC, 3, 9)
"""Turin and later: the SPL of the first mutable code (FMC)."""
HW_ID = oid_under(AMD_ARC, 4)
"""The chip ID: 64 bytes before Turin, 8 from Turin on; absent from VLEKs."""
CSP_ID = oid_under(AMD_ARC, 5)
"""VLEKs: the cloud provider the key was issued to."""

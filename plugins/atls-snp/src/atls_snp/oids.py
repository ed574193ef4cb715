"""Object identifiers: our certificate extension and AMD's VCEK/VLEK extensions.

``ATLS_SNP_EVIDENCE`` is atls' own: ``<arc>.3.1`` under the project's private
arc ``2.25.87194622047012234215559706901154409583`` (a UUID OID under ITU-T
X.667, documented in ``atls_tdx.oids``; repeated here so that verifiers need
not install atls-tdx).  Sub-arcs so far: ``.1`` Intel TDX (atls-tdx), ``.2``
Intel Trust Authority tokens (atls-ita), ``.3`` AMD SEV-SNP (this package):

- ``<arc>.3.1`` -- an SEV-SNP attestation report and the certificates that
  endorse it (:mod:`atls_snp.envelope`); the report data follows ``atls-v1``.

The AMD extensions (``1.3.6.1.4.1.3704.1.*``) are those AMD's key distribution
service writes into VCEK and VLEK certificates (AMD's "Versioned Chip
Endorsement Key" specification, 57230): the TCB security patch levels the key
was derived for, the chip's hardware ID and the product name.
"""

from __future__ import annotations

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

ATLS_ARC = "2.25.87194622047012234215559706901154409583"
ATLS_SNP_EVIDENCE = ATLS_ARC + ".3.1"

AMD_ARC = "1.3.6.1.4.1.3704.1"
STRUCT_VERSION = AMD_ARC + ".1"
PRODUCT_NAME = AMD_ARC + ".2"
BL_SPL = AMD_ARC + ".3.1"
TEE_SPL = AMD_ARC + ".3.2"
SNP_SPL = AMD_ARC + ".3.3"
UCODE_SPL = AMD_ARC + ".3.8"
FMC_SPL = AMD_ARC + ".3.9"
"""Turin and later: the SPL of the first mutable code (FMC)."""
HW_ID = AMD_ARC + ".4"
"""The chip ID: 64 bytes before Turin, 8 from Turin on; absent from VLEKs."""
CSP_ID = AMD_ARC + ".5"
"""VLEKs: the cloud provider the key was issued to."""

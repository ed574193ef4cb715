"""atls' own private OID arc, where every plugin's certificate extension lives.

``ATLS_ARC`` sits under ``2.25`` (ITU-T X.667: an OID derived from a UUID needs
no registration and cannot collide), built from the UUID
``419912c7-a791-4fcf-a024-03b2c4e0ac6f``.  Sub-arcs are allocated here, one per
plugin, so that two plugins can never pick the same extension:

- ``<arc>.1`` -- Intel TDX (atls-tdx): ``.1.1`` a raw TDX quote;
- ``<arc>.2`` -- Intel Trust Authority tokens (atls-ita): ``.2.1`` TDX, ``.2.2`` SGX;
- ``<arc>.3`` -- AMD SEV-SNP (atls-snp): ``.3.1`` a report and its certificates.

A new plugin takes the next free sub-arc and adds it to this list.
"""

from __future__ import annotations

__all__ = ["ATLS_ARC", "oid_under"]

ATLS_ARC = "2.25.87194622047012234215559706901154409583"


def oid_under(arc: str, *numbers: int) -> str:
    """The OID ``arc.n1.n2...`` (dotted), as written in the specifications."""
    return ".".join((arc, *map(str, numbers)))

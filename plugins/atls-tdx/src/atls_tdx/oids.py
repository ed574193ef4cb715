"""Certificate extension OIDs read or written by atls-tdx.

``ATLS_ARC`` is atls' own private arc (:mod:`atls_core.oids`).  Under it:

- ``<arc>.1.1`` -- a raw Intel TDX quote (v4/v5) whose report data follows the
  ``atls-v1`` binding scheme (``tdx.dcap``).

The dstack arc ``1.3.6.1.4.1.62397.1`` is Phala's, used by dstack RA-TLS
certificates; each extension value there is a DER OCTET STRING wrapping the
content.  ``.8`` holds a ``VersionedAttestation`` (SCALE V0 or msgpack V1, see
:mod:`atls_tdx.dstack_attestation`) and supersedes ``.1`` + ``.2``; ``.9`` holds
msgpack app info (issuer claims).
"""

from __future__ import annotations

from atls_core.oids import ATLS_ARC, oid_under

__all__ = [
    "ATLS_ARC",
    "ATLS_TDX_QUOTE",
    "DSTACK_APP_ID",
    "DSTACK_APP_INFO",
    "DSTACK_ARC",
    "DSTACK_ATTESTATION",
    "DSTACK_CERT_USAGE",
    "DSTACK_EVENT_LOG",
    "DSTACK_QUOTE",
]

ATLS_TDX_QUOTE = oid_under(ATLS_ARC, 1, 1)

DSTACK_ARC = "1.3.6.1.4.1.62397.1"
DSTACK_QUOTE = oid_under(DSTACK_ARC, 1)
DSTACK_EVENT_LOG = oid_under(DSTACK_ARC, 2)
DSTACK_APP_ID = oid_under(DSTACK_ARC, 3)
DSTACK_CERT_USAGE = oid_under(DSTACK_ARC, 4)
DSTACK_ATTESTATION = oid_under(DSTACK_ARC, 8)
DSTACK_APP_INFO = oid_under(DSTACK_ARC, 9)

"""The certificate extension and media type of ITA tokens in atls certificates.

Under atls' private arc (:mod:`atls_core.oids`):

- ``<arc>.1.1`` -- a raw Intel TDX quote (atls-tdx, ``tdx.dcap``);
- ``<arc>.2.1`` -- an Intel Trust Authority attestation token for a TDX trust
  domain: the compact JWT, ASCII, as the extension value (``ita.tdx``);
- ``<arc>.2.2`` -- the same for an SGX enclave (``ita.sgx``).

The token's held data is ``atls-v1`` report data for the certificate's key.
(The core gives each certificate OID to exactly one validator, hence two.)
"""

from __future__ import annotations

from atls_core.oids import ATLS_ARC, oid_under

__all__ = ["ATLS_ARC", "ITA_SGX_TOKEN_OID", "ITA_TOKEN_MEDIA_TYPE", "ITA_TOKEN_OID"]

ITA_TOKEN_OID = oid_under(ATLS_ARC, 2, 1)
ITA_SGX_TOKEN_OID = oid_under(ATLS_ARC, 2, 2)
ITA_TOKEN_MEDIA_TYPE = "application/vnd.atls.ita-token+jwt"  # noqa: S105 - not a secret

"""``ita.tdx`` issuer: a TDX quote appraised by ITA, the token in the certificate.

The passport model, on the server: for ``atls-v1`` report data ``R`` (the
TLS key and, per connection, the client nonce)

1. ``GET /appraisal/v2/nonce`` -> ITA nonce ``(val, iat, signature)``;
2. a TDX quote over SHA-512(val || iat || R) from configfs-tsm (atls-tdx's
   ``configfs_tsm_quote``; ITA's TDX adapter computes report data the same way);
3. ``POST /appraisal/v2/attest`` with the quote, ``runtime_data`` = R and the
   nonce; ITA reports R as ``attester_held_data``;
4. the token is the evidence (certificate extension :data:`ITA_TOKEN_OID`).

Needs the ``attester`` extra (atls-tdx); verifiers do not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings
from atls_core.settings import load
from atls_core.tsm import DEFAULT_TSM_ROOT, check_report_data, tdx_quote
from atls_ita.client import ItaClient
from atls_ita.oids import ITA_TOKEN_MEDIA_TYPE, ITA_TOKEN_OID
from atls_ita.settings import DEFAULT_API_URL, ItaIssuerSettings
from atls_ita.specs import ISSUER_SPEC

__all__ = ["DEFAULT_API_URL", "ISSUER_SPEC", "ItaIssuer"]


class ItaIssuer:
    spec = ISSUER_SPEC

    def __init__(self, settings: Settings, *, fs: Any = None) -> None:
        read = load(ItaIssuerSettings, settings)
        self._client = ItaClient(api_url=read.api_url, api_key=read.api_key, timeout=read.timeout)
        self._policy_ids = read.policy_ids
        self._policy_must_match = read.policy_must_match
        self._alg = read.token_signing_alg
        self._root = read.configfs_root or DEFAULT_TSM_ROOT
        self._fs = fs

    def __repr__(self) -> str:
        return f"ItaIssuer({self._client!r})"

    def issue(self, report_data: bytes) -> Evidence:
        check_report_data(report_data)
        nonce = self._client.nonce()
        quote = tdx_quote(
            hashlib.sha512(nonce.prefix + report_data).digest(), root=self._root, fs=self._fs
        )
        token = self._client.attest_tdx(
            quote=quote,
            runtime_data=report_data,
            nonce=nonce,
            policy_ids=self._policy_ids,
            signing_alg=self._alg,
            policy_must_match=self._policy_must_match,
        )
        return Evidence(
            media_type=ITA_TOKEN_MEDIA_TYPE,
            data=token.encode("ascii"),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ITA_TOKEN_OID),
        )

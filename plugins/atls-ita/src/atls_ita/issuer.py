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
import os
from pathlib import Path
from typing import Any

from atls_core.errors import ConfigurationError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings
from atls_ita.client import ItaClient
from atls_ita.oids import ITA_TOKEN_MEDIA_TYPE, ITA_TOKEN_OID
from atls_ita.settings import DEFAULT_API_URL, api_key_setting, api_url_setting
from atls_ita.specs import ISSUER_SETTINGS, ISSUER_SPEC
from atls_ita.token import ALGORITHMS

__all__ = ["DEFAULT_API_URL", "ISSUER_SPEC", "ItaIssuer"]


class ItaIssuer:
    spec = ISSUER_SPEC

    def __init__(self, settings: Settings, *, fs: Any = None) -> None:
        unknown = sorted(set(settings) - set(ISSUER_SETTINGS))
        if unknown:
            raise ConfigurationError(
                f"settings.{unknown[0]} is not an ita issuer setting",
                check="config.settings",
                expected=list(ISSUER_SETTINGS),
            )
        try:
            from atls_tdx.issuers import DEFAULT_TSM_ROOT, configfs_tsm_quote
        except ImportError:
            raise ConfigurationError(
                "the ita.tdx issuer needs atls-tdx: pip install 'atls-ita[attester]'",
                check="config.issuer",
            ) from None
        self._quote = configfs_tsm_quote
        timeout = settings.get("timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(
                "settings.timeout must be a positive number", check="config.settings"
            )
        self._client = ItaClient(
            api_url=api_url_setting(settings),
            api_key=api_key_setting(settings),
            timeout=float(timeout),
        )
        policy_ids = settings.get("policy_ids", ())
        if not isinstance(policy_ids, (list, tuple)) or not all(
            isinstance(p, str) for p in policy_ids
        ):
            raise ConfigurationError(
                "settings.policy_ids must be a list of ITA policy ids", check="config.settings"
            )
        self._policy_ids = tuple(policy_ids)
        self._policy_must_match = bool(settings.get("policy_must_match", False))
        alg = settings.get("token_signing_alg", "PS384")
        if alg not in ALGORITHMS:
            raise ConfigurationError(
                "settings.token_signing_alg is not one ITA signs with",
                check="config.settings",
                expected=list(ALGORITHMS),
                actual=alg,
            )
        self._alg = str(alg)
        root = settings.get("configfs_root", DEFAULT_TSM_ROOT)
        if not isinstance(root, (str, os.PathLike)):
            raise ConfigurationError(
                "settings.configfs_root must be a path", check="config.settings"
            )
        self._root = Path(root)
        self._fs = fs

    def __repr__(self) -> str:
        return f"ItaIssuer({self._client!r})"

    def issue(self, report_data: bytes) -> Evidence:
        if len(report_data) != 64:
            raise ConfigurationError(
                "report data must be exactly 64 bytes",
                check="issuer.report_data",
                expected=64,
                actual=len(report_data),
            )
        nonce = self._client.nonce()
        quote = self._quote(
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

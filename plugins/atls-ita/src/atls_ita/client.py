"""A small client for the two ITA appraisal endpoints an attester needs.

``GET /appraisal/v2/nonce`` and ``POST /appraisal/v2/attest``, header
``x-api-key``.  The API key is a :class:`atls_core.secret.Secret`: it goes into
the request header and nowhere else (not into a repr, a log line or an error).
Requests go through :func:`atls_core.fetch.fetch`: one deadline (``timeout``)
for the whole exchange, redirects refused (the key would follow them), bodies
size-capped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence
from typing import Any

import attrs

from atls_core.errors import MalformedEvidence, ServiceUnavailable
from atls_core.fetch import fetch
from atls_core.redact import redact_url
from atls_core.secret import Secret

__all__ = ["ItaClient", "ItaNonce"]

log = logging.getLogger("atls.ita.client")

NONCE_PATH = "/appraisal/v2/nonce"
ATTEST_PATH = "/appraisal/v2/attest"
_MAX_BYTES = 1 << 20


@attrs.frozen(kw_only=True)
class ItaNonce:
    """ITA's signed nonce; ``val`` and ``iat`` are the decoded bytes."""

    val: bytes
    iat: bytes
    signature: bytes = attrs.field(repr=False)

    @property
    def prefix(self) -> bytes:
        return self.val + self.iat

    def to_json(self) -> dict[str, str]:
        return {
            "val": base64.b64encode(self.val).decode(),
            "iat": base64.b64encode(self.iat).decode(),
            "signature": base64.b64encode(self.signature).decode(),
        }


class ItaClient:
    """``timeout`` bounds each call as a whole (connect, TLS, request and answer)."""

    def __init__(self, *, api_url: str, api_key: Secret, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ItaClient(api_url={self.api_url!r}, api_key={self._api_key!r})"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.api_url + path
        headers = {"Accept": "application/json", "x-api-key": self._api_key.reveal()}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        log.debug("ITA %s %s at %s", method, path, redact_url(self.api_url))
        response = fetch(
            url,
            method=method,
            headers=headers,
            body=data,
            timeout=self.timeout,
            max_bytes=_MAX_BYTES,
            name=f"ITA {method} {path}",
            check="ita.api.fetch",
        )
        if not 200 <= response.status < 300:
            raise ServiceUnavailable(
                f"ITA {method} {path} failed with HTTP {response.status}",
                service=redact_url(url),
                phase="status",
                check="ita.api.status",
                expected=200,
                actual=response.status,
            )
        try:
            return json.loads(response.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedEvidence(
                f"ITA {path} answer is not JSON", check="ita.api.response"
            ) from None

    def nonce(self) -> ItaNonce:
        answer = self._call("GET", NONCE_PATH)
        try:
            return ItaNonce(
                val=base64.b64decode(answer["val"], validate=True),
                iat=base64.b64decode(answer["iat"], validate=True),
                signature=base64.b64decode(answer["signature"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise MalformedEvidence(
                "ITA nonce answer lacks base64 val/iat/signature", check="ita.api.nonce"
            ) from None

    def attest_tdx(
        self,
        *,
        quote: bytes,
        runtime_data: bytes,
        nonce: ItaNonce,
        policy_ids: Sequence[str] = (),
        signing_alg: str | None = None,
        policy_must_match: bool = False,
    ) -> str:
        """Ask for a token over a TDX quote whose report data binds ``runtime_data``."""
        body: dict[str, Any] = {
            "tdx": {
                "quote": base64.b64encode(quote).decode(),
                "runtime_data": base64.b64encode(runtime_data).decode(),
                "verifier_nonce": nonce.to_json(),
            }
        }
        if policy_ids:
            body["policy_ids"] = list(policy_ids)
        if signing_alg:
            body["token_signing_alg"] = signing_alg
        if policy_must_match:
            body["policy_must_match"] = True
        answer = self._call("POST", ATTEST_PATH, body)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or token.count(".") != 2:
            raise MalformedEvidence("ITA attest answer holds no token", check="ita.api.attest")
        return token

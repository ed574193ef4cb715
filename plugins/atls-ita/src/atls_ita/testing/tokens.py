"""Helpers to mint and read ITA tokens in tests (TEST ONLY)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, report_data_for
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_ita.oids import ITA_TOKEN_MEDIA_TYPE, ITA_TOKEN_OID
from atls_ita.testing.standin import StandInIta

__all__ = ["Issued", "evidence_of", "issue_token", "new_spki", "unverified_claims"]


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a recorded token whose key was never recorded (mapping tests only)."""
    payload = token.strip().split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def new_spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def evidence_of(token: str) -> Evidence:
    return Evidence(
        media_type=ITA_TOKEN_MEDIA_TYPE,
        data=token.encode(),
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ITA_TOKEN_OID),
    )


@attrs.frozen(kw_only=True)
class Issued:
    """A token as the atls issuer would get it, with the connection it binds."""

    token: str
    spki: bytes
    nonce: bytes | None
    evidence: Evidence

    @property
    def binding(self) -> BindingContext:
        return BindingContext(spki_der=self.spki, nonce=self.nonce)


def issue_token(
    service: StandInIta,
    *,
    nonce: bytes | None = None,
    with_ita_nonce: bool = True,
    alg: str = "PS384",
    spki: bytes | None = None,
    claims_hook: Callable[[dict[str, Any]], None] | None = None,
) -> Issued:
    """The issuer's protocol against the stand-in, without the HTTP hops."""
    spki = spki or new_spki()
    runtime = report_data_for("atls-v1", spki_der=spki, nonce=nonce or b"")
    ita_nonce = service.new_nonce() if with_ita_nonce else None
    prefix = service.take_nonce(ita_nonce) if ita_nonce is not None else b""
    claims = service.claims_for(runtime_data=runtime, nonce=ita_nonce, nonce_prefix=prefix)
    if claims_hook is not None:
        claims_hook(claims)
    token = service.sign(claims, alg=alg)
    return Issued(token=token, spki=spki, nonce=nonce, evidence=evidence_of(token))

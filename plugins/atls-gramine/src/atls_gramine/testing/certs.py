"""Synthetic Gramine RA-TLS certificates and the validator settings that accept them.

The quotes are signed under an ``atls_dcap.testing.pki.DcapTestPki`` (a test
root, not Intel's); :func:`validator_settings` writes that root and matching
collateral to a directory and returns ``gramine.ratls`` settings with
``root_ca`` + ``allow_custom_root = true`` and ``collateral = "file"``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Unpack

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import report_data_for
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import SgxQuoteOptions, make_sgx_quote
from atls_gramine.issuer import RatlsCredentials, build_ratls_certificate
from atls_gramine.ratls import encode_claims, encode_tcg_evidence
from atls_gramine.specs import SCHEME_LEGACY, SCHEME_TCG

__all__ = [
    "COLLATERAL_ISSUED",
    "COLLATERAL_NEXT_UPDATE",
    "INSIDE_WINDOW",
    "make_ratls_credentials",
    "spki_of",
    "validator_settings",
]

COLLATERAL_ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
COLLATERAL_NEXT_UPDATE = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
INSIDE_WINDOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
"""A time at which :func:`validator_settings`' default collateral is valid."""


def spki_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def make_ratls_credentials(
    pki: DcapTestPki,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    extensions: Iterable[str] = ("legacy", "tcg"),
    pubkey_hash_alg: str = "sha256",
    claims: bytes | None = None,
    **quote_options: Unpack[SgxQuoteOptions],
) -> RatlsCredentials:
    """A Gramine-format certificate whose quotes are signed under ``pki``.

    ``claims`` overrides the TCG claims bytes (the quote still binds whatever is
    used, so tests can exercise claims that bind another key or none);
    ``quote_options`` (``mrenclave``, ``debug``, ``tcb``...) shape both quotes.
    """
    key = key or ec.generate_private_key(ec.SECP384R1())
    spki = spki_of(key)
    wanted = set(extensions)

    def quote(report_data: bytes) -> bytes:
        return make_sgx_quote(pki, report_data, **quote_options)

    legacy = quote(report_data_for(SCHEME_LEGACY, spki_der=spki)) if "legacy" in wanted else None
    tcg: bytes | None = None
    if "tcg" in wanted:
        if claims is None:
            body = encode_claims(spki, algorithm=pubkey_hash_alg)
            material = {
                "claims": body,
                "pubkey_hash_alg": pubkey_hash_alg.encode(),
                "pubkey_hash": hashlib.new(pubkey_hash_alg, spki).digest(),
            }
            tcg_report = report_data_for(SCHEME_TCG, spki_der=spki, material=material)
        else:
            # Deliberately odd claims (tests): the quote binds them as Gramine would.
            body = claims
            tcg_report = hashlib.sha256(body).digest() + bytes(32)
        tcg = encode_tcg_evidence(quote(tcg_report), body)
    der = build_ratls_certificate(key, legacy_quote=legacy, tcg_evidence=tcg)
    return RatlsCredentials(private_key=key, certificate_der=der)


def validator_settings(
    pki: DcapTestPki,
    directory: Path,
    *,
    tcb_status: str = "UpToDate",
    advisory_ids: Iterable[str] = (),
    issue_date: dt.datetime = COLLATERAL_ISSUED,
    next_update: dt.datetime = COLLATERAL_NEXT_UPDATE,
) -> dict[str, Any]:
    """``gramine.ratls`` settings trusting ``pki``'s root with file collateral in ``directory``."""
    return {
        "collateral": "file",
        **pki.file_settings(
            directory,
            "sgx",
            tcb_status=tcb_status,
            advisory_ids=tuple(advisory_ids),
            issue_date=issue_date,
            next_update=next_update,
        ),
    }

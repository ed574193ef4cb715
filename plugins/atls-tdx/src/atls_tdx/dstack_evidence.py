"""Getting dstack evidence out of its three containers into one shape.

Whatever the transport, dstack evidence becomes ``Evidence(data=<raw quote>,
endorsements={"event_log": <JSON>, ...})`` with optional endorsements
``app_compose`` (the compose document the server says it runs), ``vm_config``
and ``app_id`` (from the certificate).  None of these is trusted here: the
validator checks each against the quote-endorsed event log.

- RA-TLS certificate: extensions under 1.3.6.1.4.1.62397.1, each a DER OCTET
  STRING wrapping the content (``.1`` quote, ``.2`` event log JSON, ``.3`` app id).
- secureai challenge answer: ``{"quote": {"quote", "event_log", "report_data",
  "vm_config"}, "tcb_info": {"app_compose", ...}}``.
- Files: the challenge answer, a guest-agent GetQuote answer
  (``{"quote", "event_log", ...}``) or a tcb_info document with a ``quote``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from atls_core.certificate import PeerCertificate, read_tlv
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_tdx.oids import (
    DSTACK_APP_ID,
    DSTACK_ATTESTATION,
    DSTACK_EVENT_LOG,
    DSTACK_QUOTE,
)
from atls_tdx.specs import DSTACK_MEDIA_TYPE
from atls_tdx.tdx_common import quote_from_bytes

__all__ = [
    "evidence_from_dstack_certificate",
    "evidence_from_quote_document",
    "unwrap_octet_string",
]

_CHECK = "dstack.format"


def unwrap_octet_string(value: bytes, *, what: str) -> bytes:
    """dstack wraps each extension's content in a DER OCTET STRING."""
    tag, _, start, end = read_tlv(value)
    if tag != 0x04 or end != len(value):
        raise MalformedEvidence(f"{what} is not a DER OCTET STRING", check=_CHECK)
    return value[start:end]


def evidence_from_dstack_certificate(certificate: PeerCertificate) -> Evidence:
    quote = certificate.extension(DSTACK_QUOTE)
    if quote is None:
        if certificate.extension(DSTACK_ATTESTATION) is not None:
            raise MalformedEvidence(
                "this dstack certificate carries the SCALE-encoded attestation extension "
                f"({DSTACK_ATTESTATION}), which atls-tdx does not read; only the TDX quote + "
                "event log form is supported",
                check="dstack.attestation_extension",
            )
        raise MalformedEvidence(
            "the server certificate carries no dstack quote extension",
            check="evidence.extension",
            expected=[DSTACK_QUOTE],
            actual=sorted(certificate.extensions),
        )
    event_log = certificate.extension(DSTACK_EVENT_LOG)
    if event_log is None:
        raise MalformedEvidence(
            "the dstack certificate has a quote but no event log extension",
            check="dstack.event_log",
            expected=DSTACK_EVENT_LOG,
        )
    endorsements = {"event_log": unwrap_octet_string(event_log, what="event log extension")}
    app_id = certificate.extension(DSTACK_APP_ID)
    if app_id is not None:
        endorsements["app_id"] = unwrap_octet_string(app_id, what="app id extension")
    return Evidence(
        media_type=DSTACK_MEDIA_TYPE,
        data=unwrap_octet_string(quote, what="quote extension"),
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=DSTACK_QUOTE),
        endorsements=endorsements,
    )


def _text_or_json(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":")).encode()
    raise MalformedEvidence(f"{what} must be a string or JSON", check=_CHECK)


def evidence_from_quote_document(data: bytes, *, source: EvidenceSource) -> Evidence:
    """Parse a challenge answer or a dstack quote JSON file."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedEvidence("the dstack quote document is not JSON", check=_CHECK) from None
    if not isinstance(document, Mapping):
        raise MalformedEvidence("the dstack quote document is not a JSON object", check=_CHECK)
    if document.get("success") is False:
        raise MalformedEvidence(
            "the server says it could not produce a quote", check="dstack.challenge"
        )
    inner: Mapping[str, Any] = document
    tcb_info: Any = document
    if isinstance(document.get("quote"), Mapping):
        inner = document["quote"]
        tcb_info = document.get("tcb_info") or {}
        if not isinstance(tcb_info, Mapping):
            raise MalformedEvidence("tcb_info must be an object", check=_CHECK)
    quote_hex = inner.get("quote")
    if not isinstance(quote_hex, str) or not quote_hex.strip():
        raise MalformedEvidence(
            "the dstack quote document has no quote (hex)", check=_CHECK, expected="quote"
        )
    quote = quote_from_bytes(quote_hex.encode(), name="quote")
    if quote == quote_hex.encode():
        raise MalformedEvidence("the quote is not hex", check=_CHECK)
    event_log = inner.get("event_log", tcb_info.get("event_log"))
    if event_log is None:
        raise MalformedEvidence(
            "the dstack quote document has no event log", check="dstack.event_log"
        )
    endorsements = {"event_log": _text_or_json(event_log, "event_log")}
    app_compose = tcb_info.get("app_compose", inner.get("app_compose"))
    if app_compose is not None:
        if not isinstance(app_compose, str):
            raise MalformedEvidence(
                "app_compose must be the compose document as a string (its exact bytes are hashed)",
                check=_CHECK,
            )
        endorsements["app_compose"] = app_compose.encode()
    vm_config = inner.get("vm_config")
    if vm_config:
        endorsements["vm_config"] = _text_or_json(vm_config, "vm_config")
    return Evidence(
        media_type=DSTACK_MEDIA_TYPE, data=quote, source=source, endorsements=endorsements
    )

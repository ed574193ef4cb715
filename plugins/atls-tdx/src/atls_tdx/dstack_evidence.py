"""Getting dstack evidence out of its containers into one shape.

Whatever the transport, dstack evidence becomes ``Evidence(data=<raw quote>,
endorsements={"event_log": <JSON>, ...})`` with optional endorsements
``app_compose`` (the compose document the server says it runs), ``vm_config``,
``app_id`` and ``app_info`` (from the certificate), and -- for the attestation
extension -- ``replay_rtmrs`` (the registers the log must reproduce, see
:func:`required_rtmrs`) and ``attestation_version`` (``0`` or ``1``).  None of
these is trusted here: the validator checks each against the quote-endorsed
event log.  An attestation extension carrying AMD SEV-SNP becomes evidence of
:data:`~atls_tdx.specs.DSTACK_SNP_MEDIA_TYPE` instead (the report, its
certificates and the MrConfig document, see :mod:`atls_tdx.dstack_snp`).

- RA-TLS certificate, current form: the attestation extension ``.8`` (a
  ``VersionedAttestation``, see :mod:`atls_tdx.dstack_attestation`) is the
  single source of truth when present.  Its event log is stripped, so only
  RTMR3 must replay.  A certificate that also carries the older ``.1``/``.2``
  extensions must say the same in them, or it is refused.
- RA-TLS certificate, older form: extensions under 1.3.6.1.4.1.62397.1, each a
  DER OCTET STRING wrapping the content (``.1`` quote, ``.2`` event log JSON,
  ``.3`` app id, ``.9`` app info).
- secureai challenge answer: ``{"quote": {"quote", "event_log", "report_data",
  "vm_config"}, "tcb_info": {"app_compose", ...}}``.
- Files: the challenge answer, a guest-agent GetQuote answer
  (``{"quote", "event_log", ...}``) or a tcb_info document with a ``quote``.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from atls_core import strict_json
from atls_core.certificate import PeerCertificate, read_tlv
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_tdx.dstack_attestation import (
    DstackAttestation,
    SevSnpPlatform,
    decode_app_info,
    decode_attestation,
    tdx_parts,
)
from atls_tdx.dstack_eventlog import (
    ALL_RTMRS,
    Event,
    event_log_json,
    parse_event_log,
    stripped_event_log,
)
from atls_tdx.dstack_snp import sev_snp_evidence
from atls_tdx.oids import (
    DSTACK_APP_ID,
    DSTACK_APP_INFO,
    DSTACK_ATTESTATION,
    DSTACK_EVENT_LOG,
    DSTACK_QUOTE,
)
from atls_tdx.specs import DSTACK_MEDIA_TYPE
from atls_tdx.tdx_common import quote_from_bytes

__all__ = [
    "CERTIFICATE_REPLAY",
    "evidence_from_attestation",
    "evidence_from_dstack_certificate",
    "evidence_from_quote_document",
    "required_rtmrs",
    "unwrap_octet_string",
]

_CHECK = "dstack.format"
CERTIFICATE_REPLAY = (3,)
"""What a certificate's stripped log can reproduce: RTMR3 only (upstream replays no more)."""


def unwrap_octet_string(value: bytes, *, what: str) -> bytes:
    """dstack wraps each extension's content in a DER OCTET STRING."""
    tag, _, start, end = read_tlv(value)
    if tag != 0x04 or end != len(value):
        raise MalformedEvidence(f"{what} is not a DER OCTET STRING", check=_CHECK)
    return value[start:end]


def required_rtmrs(evidence: Evidence) -> tuple[int, ...]:
    """The registers the event log must reproduce (``replay_rtmrs``; all four if absent).

    Only this module sets ``replay_rtmrs`` (for the attestation extension, whose
    log upstream strips for certificates); a value that does not include RTMR3
    is refused, since every fact is read from RTMR3.
    """
    raw = evidence.endorsements.get("replay_rtmrs")
    if raw is None:
        return ALL_RTMRS
    try:
        registers = tuple(sorted({int(char) for char in raw.decode("ascii")}))
    except (UnicodeDecodeError, ValueError):
        registers = ()
    if 3 not in registers or not set(registers) <= set(ALL_RTMRS) or len(registers) != len(raw):
        raise MalformedEvidence(
            "replay_rtmrs must list distinct registers 0-3 including 3",
            check="dstack.replay_rtmrs",
            actual=raw,
        )
    return registers


def evidence_from_attestation(
    data: bytes,
    *,
    source: EvidenceSource,
    replay_rtmrs: Collection[int] = CERTIFICATE_REPLAY,
) -> Evidence:
    """Evidence from a ``VersionedAttestation`` (V0 or V1): TDX, or SEV-SNP (for
    ``snp.report`` to verify, see :mod:`atls_tdx.dstack_snp`); the rest refused by name."""
    return _evidence(decode_attestation(data), source=source, replay_rtmrs=replay_rtmrs)


def _evidence(
    attestation: DstackAttestation, *, source: EvidenceSource, replay_rtmrs: Collection[int]
) -> Evidence:
    if 3 not in replay_rtmrs or not set(replay_rtmrs) <= set(ALL_RTMRS):
        raise ValueError("replay_rtmrs must include RTMR3 and name only RTMR0-3")
    if isinstance(attestation.platform, SevSnpPlatform):
        return sev_snp_evidence(attestation, source=source)
    parts = tdx_parts(attestation)
    endorsements = {
        "event_log": event_log_json(parts.events),
        "replay_rtmrs": "".join(str(i) for i in sorted(set(replay_rtmrs))).encode(),
        "attestation_version": str(attestation.wire_version).encode(),
    }
    if parts.vm_config:
        endorsements["vm_config"] = parts.vm_config.encode()
    return Evidence(
        media_type=DSTACK_MEDIA_TYPE, data=parts.quote, source=source, endorsements=endorsements
    )


def _comparable(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """What two logs of one TD must agree on once both are stripped as upstream strips."""
    return [
        (e.imr, e.event_type, e.name, e.payload, e.version, b"" if e.is_runtime else e.digest)
        for e in stripped_event_log(events)
    ]


def _conflict(what: str) -> MalformedEvidence:
    return MalformedEvidence(
        f"the certificate's {what} extension disagrees with its attestation extension "
        f"({DSTACK_ATTESTATION})",
        check="dstack.extension_conflict",
    )


def _extras(certificate: PeerCertificate, endorsements: dict[str, bytes]) -> None:
    """App id (``.3``) and app info (``.9``): issuer claims the validator compares."""
    app_id = certificate.extension(DSTACK_APP_ID)
    if app_id is not None:
        endorsements["app_id"] = unwrap_octet_string(app_id, what="app id extension")
    app_info = certificate.extension(DSTACK_APP_INFO)
    if app_info is not None:
        raw = unwrap_octet_string(app_info, what="app info extension")
        decode_app_info(raw)  # refuse a malformed one now, by name
        endorsements["app_info"] = raw


def _from_attestation_extension(certificate: PeerCertificate, extension: bytes) -> Evidence:
    attestation = decode_attestation(unwrap_octet_string(extension, what="attestation extension"))
    evidence = _evidence(
        attestation,
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=DSTACK_ATTESTATION),
        replay_rtmrs=CERTIFICATE_REPLAY,
    )
    quote = certificate.extension(DSTACK_QUOTE)
    if quote is not None and unwrap_octet_string(quote, what="quote extension") != evidence.data:
        raise _conflict("quote")
    event_log = certificate.extension(DSTACK_EVENT_LOG)
    if event_log is not None:
        legacy = parse_event_log(unwrap_octet_string(event_log, what="event log extension"))
        if _comparable(legacy) != _comparable(getattr(attestation.platform, "event_log", ())):
            raise _conflict("event log")
    endorsements = dict(evidence.endorsements)
    _extras(certificate, endorsements)
    return Evidence(
        media_type=evidence.media_type,
        data=evidence.data,
        source=evidence.source,
        endorsements=endorsements,
    )


def evidence_from_dstack_certificate(certificate: PeerCertificate) -> Evidence:
    attestation = certificate.extension(DSTACK_ATTESTATION)
    if attestation is not None:
        return _from_attestation_extension(certificate, attestation)
    quote = certificate.extension(DSTACK_QUOTE)
    if quote is None:
        raise MalformedEvidence(
            "the server certificate carries no dstack attestation or quote extension",
            check="evidence.extension",
            expected=[DSTACK_ATTESTATION, DSTACK_QUOTE],
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
    _extras(certificate, endorsements)
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
        document = strict_json.loads(data)
    except strict_json.RepeatedName as exc:
        raise MalformedEvidence(
            f"the dstack quote document repeats {exc.name!r}", check=_CHECK
        ) from None
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
    try:  # the usual form, bare hex digits: decoded in C without copying the text twice
        quote = binascii.a2b_hex(quote_hex)
    except ValueError:  # whitespace, 0x, an odd count, non-ASCII: the general reader decides
        quote = quote_from_bytes(quote_hex.encode(), name="quote")
        if quote == quote_hex.encode():
            raise MalformedEvidence("the quote is not hex", check=_CHECK) from None
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

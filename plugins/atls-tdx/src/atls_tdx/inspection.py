"""What ``atls inspect`` shows of TDX quotes and dstack evidence: decoded, never verified.

Nothing here checks a signature, a chain or a policy: it names the bytes so an
operator whose server was refused can see which value differs from the policy.
The dstack view replays the event log against the quote's RTMRs register by
register and says where it diverges (the appraisal stops at the first
mismatch); facts read from RTMR3 count only if RTMR3 matches, and even then
only once the quote itself verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from atls_core.errors import ATLSError, MalformedEvidence
from atls_core.evidence import Evidence
from atls_tdx.dstack_attestation import decode_app_info
from atls_tdx.dstack_eventlog import (
    DIGEST_SIZE,
    RTMR_COUNT,
    Event,
    dstack_facts,
    parse_event_log,
)
from atls_tdx.specs import TDX_REFERENCE_MEASUREMENTS

__all__ = ["describe_dstack", "describe_tdx_quote"]

_SHOWN_PAYLOAD = 256
"""Longer event payloads (firmware tables) are cut in the description."""


def describe_tdx_quote(quote: bytes) -> dict[str, Any]:
    """A TDX quote's header and TD report: measurements, report data, attributes."""
    from atls_dcap.report import parse_report_fields

    tee_type, version, fields = parse_report_fields(quote)
    if tee_type != "tdx":
        raise MalformedEvidence(
            "not a TDX quote", check="tdx.tee_type", expected="tdx", actual=tee_type
        )
    attributes = fields.get("td_attributes")
    description: dict[str, Any] = {
        "format": f"Intel TDX quote v{version}",
        "size": len(quote),
        "fmspc": _fmspc(quote),
        "debug": bool(attributes[0]) if isinstance(attributes, bytes) else None,
        "report_data": _hex(fields.get("report_data")),
        "measurements": {
            name: _hex(fields[name]) for name in TDX_REFERENCE_MEASUREMENTS if name in fields
        },
        "fields": {
            name: _hex(value)
            for name, value in fields.items()
            if name not in TDX_REFERENCE_MEASUREMENTS and name != "report_data"
        },
    }
    return description


def _fmspc(quote: bytes) -> str | None:
    import dcap_qvl

    try:
        return str(dcap_qvl.parse_quote(quote).fmspc())
    except ValueError:
        return None


def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def _payload(payload: bytes) -> str:
    shown = payload[:_SHOWN_PAYLOAD]
    try:
        text = shown.decode("utf-8")
        readable = text.isprintable()
    except UnicodeDecodeError:
        text, readable = "", False
    rendered = repr(text) if readable and shown else shown.hex()
    if len(payload) > _SHOWN_PAYLOAD:
        rendered += f" ... ({len(payload)} bytes)"
    return rendered


def _event_rows(events: Sequence[Event]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """One row per event and the digest each one extends its RTMR with."""
    rows, digests = [], []
    for index, event in enumerate(events):
        row: dict[str, Any] = {
            "index": index,
            "imr": event.imr,
            "event_type": f"0x{event.event_type:08x}",
            "name": event.name,
            "payload": _payload(event.payload),
        }
        if event.is_runtime:
            row["digest"] = "recomputed from name and payload"
            try:
                event.check_supplied(index)
            except ATLSError as error:
                row["digest"] = f"MISMATCH: {error.reason}"
            if event.version != 1:
                row["digest_rule"] = event.version
        else:
            row["digest"] = event.digest.hex() + " (as supplied)"
        rows.append(row)
        digests.append(event.measured_digest)
    return rows, digests


def _replay(
    events: Sequence[Event], digests: Sequence[bytes], measurements: dict[str, Any]
) -> dict[str, Any]:
    registers = [bytes(DIGEST_SIZE)] * RTMR_COUNT
    counts = [0] * RTMR_COUNT
    for event, digest in zip(events, digests, strict=True):
        registers[event.imr] = hashlib.sha384(registers[event.imr] + digest).digest()
        counts[event.imr] += 1
    table = {}
    for index in range(RTMR_COUNT):
        quoted = measurements.get(f"rtmr{index}")
        table[f"rtmr{index}"] = {
            "events": counts[index],
            "replayed": registers[index].hex(),
            "quoted": quoted,
            "match": quoted == registers[index].hex(),
        }
    return table


def describe_dstack(evidence: Evidence, *, required: Sequence[int]) -> dict[str, Any]:
    """Quote, event log, replay against the quote, RTMR3 facts and the server's claims."""
    quote = describe_tdx_quote(evidence.data)
    measurements = quote.pop("measurements")
    version = evidence.endorsements.get("attestation_version")
    where = evidence.source.oid or evidence.source.location or evidence.source.transport.value
    description: dict[str, Any] = {
        "format": (
            f"dstack attestation V{version.decode(errors='replace')} (TDX)"
            if version is not None
            else "dstack TDX quote and event log"
        )
        + f" from {where}",
        "quote": quote,
        "measurements": measurements,
    }
    raw_log = evidence.endorsements.get("event_log")
    if raw_log is None:
        description["event_log"] = "absent: nothing can be replayed"
        return description
    try:
        events = parse_event_log(raw_log)
    except MalformedEvidence as error:
        description["event_log"] = f"unreadable: {error}"
        return description
    rows, digests = _event_rows(events)
    description["replay"] = _replay(events, digests, measurements)
    description["replay_required"] = [f"rtmr{i}" for i in required]
    if list(required) != list(range(RTMR_COUNT)):
        description["replay_note"] = (
            "appraisal requires only these to replay: dstack strips the log it puts in a "
            "certificate to the RTMR3 events, and an attestation file is appraised as one"
        )
    try:
        facts = dstack_facts(events)
    except MalformedEvidence as error:
        description["facts"] = f"unreadable: {error}"
    else:
        description["facts"] = {
            "system_ready": facts.system_ready,
            "key_provider": _payload(facts.key_provider) if facts.key_provider else None,
            "mr_kms": _hex(facts.mr_kms),
            "certificate_event_sha256": _hex(facts.certificate_digest),
            "app_events": list(facts.app_events),
        }
        for name in ("compose_hash", "app_id", "os_image_hash", "instance_id"):
            value = getattr(facts, name)
            if value is not None:
                description["measurements"][name] = value.hex()
        if not description["replay"]["rtmr3"]["match"]:
            description["facts_note"] = (
                "RTMR3 does not replay: these facts and measurements are the log's claims, "
                "not what the quote measures"
            )
    description["events"] = rows
    claims = _server_claims(evidence)
    if claims:
        description["server_claims"] = claims
    return description


def _server_claims(evidence: Evidence) -> dict[str, Any]:
    """What the server sent besides the quote and log (checked against RTMR3 when appraised)."""
    claims: dict[str, Any] = {}
    compose = evidence.endorsements.get("app_compose")
    if compose is not None:
        claims["app_compose_sha256"] = hashlib.sha256(compose).hexdigest()
        claims["app_compose"] = compose.decode("utf-8", errors="replace")
    vm_config = evidence.endorsements.get("vm_config")
    if vm_config is not None:
        claims["vm_config"] = _payload(vm_config)
    app_id = evidence.endorsements.get("app_id")
    if app_id is not None:
        claims["app_id"] = app_id.hex()
    raw_info = evidence.endorsements.get("app_info")
    if raw_info is not None:
        try:
            claims["app_info"] = decode_app_info(raw_info).to_claims()
        except MalformedEvidence as error:
            claims["app_info"] = f"unreadable: {error}"
    return claims

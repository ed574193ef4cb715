"""Mutants of recorded dstack evidence: quote documents with their event logs, and a V0 attestation.

RTMR replay covers each event's register and digest; a runtime (RTMR3) event's digest is
recomputed from its type, name and payload, so every field of it is bound.  A boot event's type,
name and payload are descriptions of what its digest measured: nothing signs them and nothing
reads them (the facts come from RTMR3), so changing them changes nothing.  The VM configuration
and the document's ``report_data`` are unsigned copies that are not read either (the quote's
report data and the os-image-hash event are).  Every other change must be refused with a named
check, and never with a bare exception.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.mutants import mutant_outcome, mutant_read, mutant_verdict
from atls_dcap.report import parse_report_fields
from atls_tdx.dstack import DstackValidator
from atls_tdx.dstack_attestation import (
    DstackAttestation,
    TdxPlatform,
    decode_attestation,
    tdx_parts,
)
from atls_tdx.dstack_eventlog import (
    Event,
    check_replay,
    dstack_facts,
    event_log_json,
    stripped_event_log,
)
from atls_tdx.dstack_evidence import evidence_from_attestation
from atls_tdx.dstack_snp import mr_config_host_data
from atls_tdx.oids import DSTACK_ATTESTATION, DSTACK_EVENT_LOG, DSTACK_QUOTE
from atls_tdx.testing.dstack import encode_attestation, octet_string, self_signed_certificate

pytestmark = pytest.mark.vectors

Vectors = Callable[[str], Path]
QUOTE_REPORT = "tdx/dstack-quote-report"
NEAR_BOB = "tdx/dstack-near-bob-20a06f-eventlog"
GUEST_AGENT = "tdx/dstack-attestation-v0-guest-agent-b0c06f"
APP_ID = "3763bc34552cf3a27ff71ad5f7a90471562a1a2d"
COMPOSE = APP_ID + "f552dfc1998cba2d60da27e7"
BOOT_DESCRIPTIONS = ("event_type", "event", "event_payload")
"""A boot event's fields that RTMR replay does not cover and no fact is read from."""
UNREAD_DOCUMENT_KEYS = ("vm_config", "report_data")
"""Unsigned copies in a GetQuote answer; the quote and the events are what is read."""


class Document:
    """A recorded GetQuote answer (or tcb_info document), appraised as its MANIFEST says."""

    def __init__(self, vectors: Vectors, folder: str) -> None:
        if folder == QUOTE_REPORT:
            self.document = json.loads(vectors(f"{folder}/get_quote_response.json").read_text())
            self.at = 1763539264
            self.policy = Policy(
                options={"allowed_compose_hashes": [COMPOSE], "allowed_app_ids": [APP_ID]}
            )
        else:
            tcb_info = json.loads(vectors(f"{folder}/tcb_info_with_event_log.json").read_text())
            self.document = {"quote": vectors(f"{folder}/quote.hex").read_text().strip()}
            self.document.update(tcb_info)
            self.at = 1759388630
            self.policy = Policy(
                options={
                    "app_compose": tcb_info["app_compose"],
                    "allowed_os_image_hashes": [tcb_info["os_image_hash"]],
                }
            )
        self.validator = DstackValidator(
            {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
        )
        self.events: list[dict[str, Any]] = (
            json.loads(self.document["event_log"])
            if isinstance(self.document["event_log"], str)
            else self.document["event_log"]
        )
        self.baseline = self.appraise(json.dumps(self.document).encode())
        assert self.baseline.accepted, self.baseline.to_json()

    def appraise(self, data: bytes) -> AttestationResult:
        return self.validator.appraise(
            self.validator.evidence_from_file(data, name="quote.json"),
            binding=BindingContext.offline_context(),
            clock=FixedClock.from_unix(self.at),
            policy=self.policy,
        )

    def with_events(self, events: list[dict[str, Any]]) -> bytes:
        document = dict(self.document)
        as_text = isinstance(document["event_log"], str)
        document["event_log"] = json.dumps(events) if as_text else events
        return json.dumps(document).encode()

    def verdict(self, data: bytes) -> str:
        """``accepted`` (only with the baseline's very facts), ``refused``, or a finding."""
        return mutant_verdict(lambda: self.appraise(data), self.baseline)


def _changed(value: Any) -> Any:
    """Another value of the same JSON type."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, int):
        return value ^ 1
    if not value:
        return "00"
    return ("1" if value[0] == "0" else "0") + value[1:]


def _event_mutants(
    events: list[dict[str, Any]],
) -> Iterator[tuple[str, list[dict[str, Any]], bool]]:
    """Each field of each event changed, events dropped, swapped and repeated; with whether
    the change is allowed to pass (only a boot event's descriptions)."""
    for index, event in enumerate(events):
        for field, value in event.items():
            changed = copy.deepcopy(events)
            changed[index][field] = _changed(value)
            unread = event["imr"] != 3 and field in BOOT_DESCRIPTIONS
            yield f"event {index} (imr {event['imr']}) {field}", changed, unread
        yield f"event {index} dropped", events[:index] + events[index + 1 :], False
        yield f"event {index} repeated", events[: index + 1] + events[index:], False
        if index + 1 < len(events) and events[index + 1]["imr"] == event["imr"]:
            swapped = copy.deepcopy(events)
            swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
            if swapped != events:
                yield f"events {index} and {index + 1} swapped", swapped, False
    runtime = next(e for e in reversed(events) if e["imr"] == 3)
    yield "a runtime event appended", [*events, dict(runtime, event="extra")], False


@pytest.mark.parametrize("folder", [QUOTE_REPORT, NEAR_BOB])
def test_every_replayed_field_of_every_event_is_bound(vectors: Vectors, folder: str) -> None:
    recorded = Document(vectors, folder)
    found = []
    for label, events, unread in _event_mutants(recorded.events):
        verdict = recorded.verdict(recorded.with_events(events))
        if verdict != ("accepted" if unread else "refused"):
            found.append(f"{label}: {verdict}")
    assert found == []


@pytest.mark.parametrize("folder", [QUOTE_REPORT, NEAR_BOB])
def test_document_fields_are_bound_or_unread(vectors: Vectors, folder: str) -> None:
    recorded = Document(vectors, folder)
    rng = random.Random(f"dstack-document-{folder}")
    quote = recorded.document["quote"]
    found = []
    mutants: list[tuple[str, dict[str, Any], bool]] = []
    signed = 2 * 1258  # hex digits of a v4 quote up to its PCK chain (see test_mutants_dcap)
    for position in rng.sample(range(signed), 40):
        digit = rng.choice([d for d in "0123456789abcdef" if d != quote[position].lower()])
        changed_quote = quote[:position] + digit + quote[position + 1 :]
        mutants.append((f"quote digit {position}", {"quote": changed_quote}, False))
    for key, value in recorded.document.items():
        if key in ("quote", "event_log"):
            continue
        unread = key in UNREAD_DOCUMENT_KEYS or (folder == NEAR_BOB and key != "app_compose")
        if isinstance(value, str):
            mutants.append((f"{key} changed", {key: value.replace("1", "2", 1) + " "}, unread))
    for label, change, unread in mutants:
        verdict = recorded.verdict(json.dumps({**recorded.document, **change}).encode())
        if verdict != ("accepted" if unread else "refused"):
            found.append(f"{label}: {verdict}")
    assert found == []


@pytest.mark.parametrize("folder", [QUOTE_REPORT, NEAR_BOB])
def test_cut_extended_and_edited_document_text_is_refused_or_unchanged(
    vectors: Vectors, folder: str
) -> None:
    """The JSON text itself, cut at structural characters and edited at sampled positions:
    refused, or read into the same facts (whitespace, an unread field)."""
    recorded = Document(vectors, folder)
    text = json.dumps(recorded.document).encode()
    rng = random.Random(f"dstack-text-{folder}")
    structural = [i for i, c in enumerate(text) if c in b'{}[],:"']
    found = []
    for position in sorted(rng.sample(structural, 60)):
        if recorded.verdict(text[:position]) != "refused":
            found.append(f"cut {position}")
    for extra in (b" ", b"}", b"{}", b"\x00", text):
        verdict = recorded.verdict(text + extra)
        if verdict not in (("accepted", "refused") if extra.isspace() else ("refused",)):
            found.append(f"extend {extra[:8]!r}: {verdict}")
    for position in rng.sample(range(len(text)), 150):
        mutant = bytearray(text)
        mutant[position] = rng.choice(b'0f{}[],:"\\ \x00\xff')
        verdict = recorded.verdict(bytes(mutant))
        if verdict not in ("accepted", "refused"):
            found.append(f"set {position}: {verdict}")
    assert found == []


@pytest.mark.parametrize(
    "where", ["document event_log", "document quote", "runtime event name", "boot event digest"]
)
def test_a_repeated_key_is_refused(vectors: Vectors, where: str) -> None:
    """JSON readers disagree on which of two equal keys counts (Python and Go take the last,
    others the first, upstream's serde refuses): a document whose meaning depends on the
    reader is refused, not read one way here and another way elsewhere."""
    recorded = Document(vectors, QUOTE_REPORT)
    text = json.dumps(recorded.document)
    events = recorded.events
    if where.startswith("document"):
        key = where.split()[1]
        fake = recorded.with_events([*events[:-1], dict(events[-1], event="EVIL")])
        forged = json.loads(fake)[key] if key == "event_log" else "00" + recorded.document[key]
        data = f'{{"{key}": {json.dumps(forged)}, {text[1:]}'
    else:
        index = max(i for i, e in enumerate(events) if e["imr"] == 3)
        if where == "boot event digest":
            index = 0
        key = "event" if where.startswith("runtime") else "digest"
        entries = [json.dumps(e) for e in events]
        entries[index] = f'{{"{key}": "{"00" * 48}", {entries[index][1:]}'
        data = json.dumps({**recorded.document, "event_log": f"[{', '.join(entries)}]"})
    assert recorded.verdict(data.encode()) == "refused"
    with pytest.raises(ATLSError) as info:
        recorded.appraise(data.encode())
    assert info.value.check in ("dstack.format", "dstack.event_log")


# --- the V0 attestation (the ``.8`` extension's payload) ------------------------------------------


def _bound(attestation: DstackAttestation) -> Any:
    """What replay and the quote bind: each event's register and digest, every field of a
    runtime event, the quote, the report data and the runtime events reported beside the log."""
    parts = tdx_parts(attestation)

    def key(event: Event) -> tuple[Any, ...]:
        runtime = (event.event_type, event.name, event.payload) if event.imr == 3 else ()
        return (event.imr, event.digest, *runtime)

    stack = attestation.stack
    return (
        parts.quote,
        parts.report_data,
        [key(event) for event in parts.events],
        stack.runtime_events if stack is not None else None,
    )


def test_every_byte_of_a_v0_attestation_outside_the_quote_is_bound_or_unread(
    vectors: Vectors,
) -> None:
    """Each byte outside the quote flipped: the attestation is refused while decoding or
    replaying against the quote's RTMRs, or decodes to the very same bound content."""
    data = vectors(f"{GUEST_AGENT}/attestation.bin").read_bytes()
    quote = vectors(f"{GUEST_AGENT}/quote.bin").read_bytes()
    fields = parse_report_fields(quote)[2]
    rtmrs = [fields[f"rtmr{i}"] for i in range(4)]
    assert all(isinstance(r, bytes) for r in rtmrs)
    original = _bound(decode_attestation(data))
    start = data.index(quote)
    rng = random.Random("dstack-v0")
    found = []
    for position in [*range(start), *range(start + len(quote), len(data))]:
        mutant = bytearray(data)
        mutant[position] ^= 1 << rng.randrange(8)

        def replayed(mutant: bytearray = mutant) -> Any:
            decoded = decode_attestation(bytes(mutant))
            parts = tdx_parts(decoded)
            check_replay(parts.events, rtmrs)  # type: ignore[arg-type]
            dstack_facts(parts.events)
            return decoded

        word, decoded = mutant_read(replayed)
        if decoded is None:
            if word != "refused":
                found.append(f"flip {position}: {word}")
            continue
        if _bound(decoded) != original:
            found.append(f"flip {position}: decodes to other bound content and replays")
    assert found == []


def test_v0_attestation_mutants_through_the_validator_never_crash(vectors: Vectors) -> None:
    """The public path (no collateral covers this recording, so nothing verifies): every
    mutant, cut or extension ends in a refusal that names its check."""
    folder = "tdx/neg-dstack-simulator-b0c06f-eventlog-ok-tcb-nomatch"
    validator = DstackValidator(
        {
            "collateral_file": str(vectors(f"{folder}/collateral_2025-09-29.json")),
            "cache_dir": "none",
        }
    )
    data = vectors(f"{GUEST_AGENT}/attestation.bin").read_bytes()
    rng = random.Random("dstack-v0-validator")
    mutants = [data[:size] for size in (0, 1, 2, 3, 4, 100, 5014, 5015, len(data) - 1)]
    mutants += [data + b"\x00", data + data]
    for position in rng.sample(range(len(data)), 200):
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        mutants.append(bytes(flipped))
    found = []
    for mutant in mutants:
        verdict, _result = mutant_outcome(
            lambda: validator.appraise(
                validator.evidence_from_file(mutant, name="attestation.bin"),  # noqa: B023
                binding=BindingContext.offline_context(),
                clock=FixedClock.from_unix(1759388630),
                policy=Policy(allow_any_workload=True),
            )
        )
        if verdict != "refused":
            found.append(f"{len(mutant)} bytes: {verdict}")
    assert found == []


def test_every_byte_of_the_sev_snp_attestation_outside_the_report_is_bound_or_unread(
    vectors: Vectors,
) -> None:
    """dstack on SEV-SNP binds the MrConfig document through HOST_DATA and the report data
    through the report; the runtime events and the configuration travel unbound and are dropped
    (the recording's MANIFEST says so).  Each byte outside the (separately tested) report flipped:
    refused while decoding, or the hand-over carries the same report, a document whose hash is
    still the report's HOST_DATA and the same report data."""
    folder = "snp/dstack-milan-v3-vcek"
    data = vectors(f"{folder}/attestation.bin").read_bytes()
    report = vectors(f"{folder}/report.bin").read_bytes()
    start = data.index(report)
    source = EvidenceSource(transport=Transport.FILE, location="attestation.bin")
    original = evidence_from_attestation(data, source=source)
    rng = random.Random("dstack-snp-v0")
    found = []
    for position in [*range(start), *range(start + len(report), len(data))]:
        mutant = bytearray(data)
        mutant[position] ^= 1 << rng.randrange(8)
        word, evidence = mutant_read(
            lambda: evidence_from_attestation(bytes(mutant), source=source)  # noqa: B023
        )
        if evidence is None:
            if word != "refused":
                found.append(f"flip {position}: {word}")
            continue
        document = evidence.endorsements["mr_config"]
        bound = (
            evidence.data == report
            and mr_config_host_data(document) == report[0xC0:0xE0]
            and evidence.endorsements.get("report_data") == report[0x50:0x90]
        )
        if bound and (document, evidence.data) != (
            original.endorsements["mr_config"],
            original.data,
        ):
            found.append(f"flip {position}: another document that still matches HOST_DATA")
    assert found == []


def test_certificate_extensions_carrying_a_recorded_attestation_are_bound(
    vectors: Vectors,
) -> None:
    """The recorded V0 attestation as a certificate carries it (stripped log in ``.8``, with the
    legacy ``.1`` quote and ``.2`` event log beside it): every tag and length byte of each
    extension's OCTET STRING flipped, and sampled bytes of the legacy copies changed.  Reading
    the certificate is refused, or yields exactly the evidence the unchanged certificate does:
    the legacy copies must agree with the attestation, never add to it."""
    data = vectors(f"{GUEST_AGENT}/attestation.bin").read_bytes()
    decoded = decode_attestation(data)
    assert isinstance(decoded.platform, TdxPlatform)
    events = stripped_event_log(decoded.platform.event_log)
    stripped = attrs.evolve(decoded, platform=attrs.evolve(decoded.platform, event_log=events))
    extensions = {
        DSTACK_ATTESTATION: octet_string(encode_attestation(stripped)),
        DSTACK_QUOTE: octet_string(decoded.platform.quote),
        DSTACK_EVENT_LOG: octet_string(event_log_json(events)),
    }
    key = ec.generate_private_key(ec.SECP384R1())
    validator = DstackValidator({})

    def read(values: dict[str, bytes]) -> Evidence:
        der = self_signed_certificate(key, list(values.items()))
        return validator.evidence_from_certificate(PeerCertificate.from_der(der))

    original = read(extensions)
    rng = random.Random("dstack-certificate")
    mutants: list[tuple[str, dict[str, bytes]]] = []
    for oid, value in extensions.items():
        head = 2 + (value[1] & 0x7F if value[1] & 0x80 else 0)
        for position in range(head):
            for bit in range(8):
                changed = bytearray(value)
                changed[position] ^= 1 << bit
                mutants.append((f"{oid} flip {position}.{bit}", {oid: bytes(changed)}))
        mutants.append((f"{oid} cut", {oid: value[:-1]}))
        mutants.append((f"{oid} extended", {oid: value + b"\0"}))
        if oid != DSTACK_ATTESTATION:
            for position in rng.sample(range(head, len(value)), 60):
                changed = bytearray(value)
                changed[position] ^= 1 << rng.randrange(8)
                mutants.append((f"{oid} flip {position}", {oid: bytes(changed)}))
    found = []
    for label, change in mutants:
        word, evidence = mutant_read(lambda: read({**extensions, **change}))  # noqa: B023
        if evidence is None:
            if word != "refused":
                found.append(f"{label}: {word}")
            continue
        if (evidence.data, evidence.endorsements) != (original.data, original.endorsements):
            found.append(f"{label}: read as other evidence")
    assert found == []

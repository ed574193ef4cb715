"""dstack certificates carrying the attestation extension (``.8``): evidence, conflicts, pipeline.

The pipeline test runs what ``tdx.dstack`` does with such a certificate -- real dcap-qvl under
the synthetic Intel PKI, replay of the registers the evidence requires, the RA-TLS binding --
without the validator class, so it holds whatever the validator's wiring.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_dcap.settings import DCAP_SETTINGS
from atls_tdx.dstack_eventlog import (
    check_replay,
    dstack_facts,
    event_log_json,
    parse_event_log,
)
from atls_tdx.dstack_evidence import (
    evidence_from_attestation,
    evidence_from_dstack_certificate,
    required_rtmrs,
)
from atls_tdx.oids import (
    DSTACK_APP_ID,
    DSTACK_APP_INFO,
    DSTACK_ATTESTATION,
    DSTACK_EVENT_LOG,
    DSTACK_QUOTE,
)
from atls_tdx.specs import DSTACK_MEDIA_TYPE
from atls_tdx.tdx_common import make_verifier
from atls_tdx.testing.dstack import (
    app_info_msgpack,
    attestation_certificate,
    dstack_event_log,
    encode_attestation,
    legacy_extensions,
    octet_string,
    ratls_report_data,
    replay_rtmrs,
    self_signed_certificate,
    spki_of,
    tdx_attestation,
)

COMPOSE = '{"manifest_version":2,"name":"attested","runner":"docker-compose"}'


def _maker(synthetic: Any) -> Any:
    def make(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        quote: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return quote

    return make


def _certificate(synthetic: Any, **kw: Any) -> tuple[Any, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    kw.setdefault("events", dstack_event_log(app_compose=COMPOSE))
    return key, attestation_certificate(key, _maker(synthetic), **kw)


def _evidence(der: bytes) -> Evidence:
    return evidence_from_dstack_certificate(PeerCertificate.from_der(der))


@pytest.mark.parametrize("wire", [0, 1])
def test_attestation_extension_becomes_dstack_evidence(synthetic: Any, wire: int) -> None:
    events = dstack_event_log(app_compose=COMPOSE)
    _, der = _certificate(synthetic, events=events, wire_version=wire)
    evidence = _evidence(der)
    assert evidence.media_type == DSTACK_MEDIA_TYPE
    assert evidence.source.oid == DSTACK_ATTESTATION
    assert evidence.endorsements["attestation_version"] == str(wire).encode()
    assert required_rtmrs(evidence) == (3,)
    assert json.loads(evidence.endorsements["vm_config"])["spec_version"] == 1
    logged = parse_event_log(evidence.endorsements["event_log"])
    assert all(e.digest == b"" for e in logged if e.is_runtime)  # computed at replay
    report = check_replay(logged, replay_rtmrs(events), required=required_rtmrs(evidence))
    assert report.matched == (3,)
    assert report.not_replayed == (0, 1, 2)


def test_required_rtmrs_defaults_to_all_and_refuses_nonsense() -> None:
    source = EvidenceSource(transport=Transport.FILE, location="x")

    def evidence(value: bytes | None) -> Evidence:
        endorsements = {} if value is None else {"replay_rtmrs": value}
        return Evidence(
            media_type=DSTACK_MEDIA_TYPE, data=b"", source=source, endorsements=endorsements
        )

    assert required_rtmrs(evidence(None)) == (0, 1, 2, 3)
    assert required_rtmrs(evidence(b"3")) == (3,)
    assert required_rtmrs(evidence(b"03")) == (0, 3)
    for bad in (b"", b"0", b"4", b"33", b"3,", b"x3"):
        with pytest.raises(MalformedEvidence) as info:
            required_rtmrs(evidence(bad))
        assert info.value.check == "dstack.replay_rtmrs"


def test_attestation_file_bytes_give_the_same_evidence(synthetic: Any) -> None:
    events = dstack_event_log()
    quote = synthetic.quote(bytes(64), rtmr=replay_rtmrs(events))
    blob = encode_attestation(tdx_attestation(quote, events, report_data=bytes(64)))
    evidence = evidence_from_attestation(
        blob,
        source=EvidenceSource(transport=Transport.FILE, location="attestation.bin"),
        replay_rtmrs=(0, 1, 2, 3),
    )
    assert evidence.data == quote
    assert required_rtmrs(evidence) == (0, 1, 2, 3)


def test_old_and_new_extensions_that_agree_are_accepted(synthetic: Any) -> None:
    events = dstack_event_log(app_compose=COMPOSE)
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    quote = _maker(synthetic)(ratls_report_data(spki), replay_rtmrs(events), bytes(48))
    blob = encode_attestation(tdx_attestation(quote, events, report_data=ratls_report_data(spki)))
    old = legacy_extensions(quote, events)  # the full event log, unstripped
    der = self_signed_certificate(key, [(DSTACK_ATTESTATION, octet_string(blob)), *old])
    evidence = _evidence(der)
    assert evidence.source.oid == DSTACK_ATTESTATION  # .8 is the single source of truth
    assert evidence.data == quote


def _conflicting(synthetic: Any, extensions: list[tuple[str, bytes]]) -> MalformedEvidence:
    _, der = _certificate(synthetic, extensions=extensions)
    with pytest.raises(MalformedEvidence) as info:
        _evidence(der)
    return info.value


def test_a_different_old_quote_is_a_conflict(synthetic: Any) -> None:
    other = synthetic.quote(bytes(64))
    error = _conflicting(synthetic, [(DSTACK_QUOTE, octet_string(other))])
    assert error.check == "dstack.extension_conflict"
    assert "quote" in str(error)


@pytest.mark.parametrize(
    "events",
    [
        dstack_event_log(app_compose='{"another":"app"}'),
        dstack_event_log(app_compose=COMPOSE, app_events=[("extra", b"x")]),
        dstack_event_log(app_compose=COMPOSE)[:-1],
    ],
    ids=["other-compose", "one-more-event", "one-less-event"],
)
def test_a_different_old_event_log_is_a_conflict(
    synthetic: Any, events: list[dict[str, Any]]
) -> None:
    error = _conflicting(synthetic, [(DSTACK_EVENT_LOG, octet_string(json.dumps(events).encode()))])
    assert error.check == "dstack.extension_conflict"
    assert "event log" in str(error)


def test_app_id_and_app_info_travel_as_endorsements(synthetic: Any) -> None:
    compose = hashlib.sha256(COMPOSE.encode()).digest()
    info = app_info_msgpack(app_id=compose[:20], compose_hash=compose)
    _, der = _certificate(
        synthetic,
        extensions=[
            (DSTACK_APP_ID, octet_string(compose[:20])),
            (DSTACK_APP_INFO, octet_string(info)),
        ],
    )
    evidence = _evidence(der)
    assert evidence.endorsements["app_id"] == compose[:20]
    assert evidence.endorsements["app_info"] == info


def test_malformed_app_info_is_refused_by_name(synthetic: Any) -> None:
    _, der = _certificate(synthetic, extensions=[(DSTACK_APP_INFO, octet_string(b"\xc1"))])
    with pytest.raises(MalformedEvidence) as info:
        _evidence(der)
    assert info.value.check.startswith(("dstack.app_info", "dstack.msgpack"))


@pytest.mark.parametrize(
    ("blob", "check"),
    [
        (b"", "dstack.attestation.empty"),
        (b"\x00", "dstack.scale.truncated"),
        (b"\x00\x03" + b"\x00" * 10, "dstack.scale.truncated"),
        (b"\x90", "dstack.attestation.format"),
    ],
)
def test_malformed_attestation_extensions_are_named(blob: bytes, check: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed_certificate(key, [(DSTACK_ATTESTATION, octet_string(blob))])
    with pytest.raises(MalformedEvidence) as info:
        _evidence(der)
    assert info.value.check == check


def test_an_attestation_extension_must_be_an_octet_string() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed_certificate(key, [(DSTACK_ATTESTATION, b"\x30\x00")])
    with pytest.raises(MalformedEvidence) as info:
        _evidence(der)
    assert info.value.check == "dstack.format"


def test_old_certificates_still_read_the_old_extensions(synthetic: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    events = dstack_event_log()
    quote = synthetic.quote(ratls_report_data(spki_of(key)), rtmr=replay_rtmrs(events))
    der = self_signed_certificate(key, legacy_extensions(quote, events))
    evidence = _evidence(der)
    assert evidence.source.oid == DSTACK_QUOTE
    assert required_rtmrs(evidence) == (0, 1, 2, 3)


# --- the whole path without the validator class --------------------------------------------


@pytest.mark.parametrize("wire", [0, 1])
@pytest.mark.parametrize("stripped", [True, False])
def test_certificate_to_verified_facts(synthetic: Any, wire: int, stripped: bool) -> None:
    events = dstack_event_log(app_compose=COMPOSE)
    key, der = _certificate(synthetic, events=events, wire_version=wire, stripped=stripped)
    certificate = PeerCertificate.from_der(der)
    evidence = evidence_from_dstack_certificate(certificate)
    verified = make_verifier(synthetic.settings(), DCAP_SETTINGS).verify(
        evidence.data, now=synthetic.clock.now()
    )
    assert verified.tcb_status == "UpToDate"
    quoted = [verified.fields[f"rtmr{i}"] for i in range(4)]
    assert all(isinstance(q, bytes) for q in quoted)
    events_seen = parse_event_log(evidence.endorsements["event_log"])
    report = check_replay(events_seen, quoted, required=required_rtmrs(evidence))  # type: ignore[arg-type]
    assert report.matched == ((3,) if stripped else (0, 1, 2, 3))
    assert (
        verified.report_data
        == ratls_report_data(certificate.spki_der)
        == ratls_report_data(spki_of(key))
    )
    facts = dstack_facts(events_seen)
    assert facts.compose_hash == hashlib.sha256(COMPOSE.encode()).digest()
    assert parse_event_log(event_log_json(events_seen)) == events_seen

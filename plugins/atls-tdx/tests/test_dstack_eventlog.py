"""Event-log parsing, runtime-digest recomputation and RTMR replay (no vectors needed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_tdx.dstack_eventlog import (
    ACPI_DATA_PAYLOAD,
    CERTIFICATE_EVENT,
    RUNTIME_EVENT_TYPE,
    check_replay,
    dstack_facts,
    event_log_json,
    is_acpi_data_event,
    parse_event_log,
    replay,
    runtime_event_digest,
    runtime_event_preimage,
    stripped_event_log,
)
from atls_tdx.testing.dstack import (
    boot_event,
    dstack_event_log,
    replay_rtmrs,
    runtime_event,
)


def test_runtime_digest_is_sha384_of_type_name_payload() -> None:
    expected = hashlib.sha384(
        (0x08000001).to_bytes(4, "little") + b":compose-hash:" + b"\x01\x02"
    ).digest()
    assert runtime_event_digest(RUNTIME_EVENT_TYPE, "compose-hash", b"\x01\x02") == expected


def test_replay_extends_each_rtmr_in_log_order() -> None:
    events = dstack_event_log()
    parsed = parse_event_log(json.dumps(events))
    assert replay(parsed) == replay_rtmrs(events)
    manual = bytes(48)
    for event in events:
        if event["imr"] == 3:
            manual = hashlib.sha384(manual + bytes.fromhex(event["digest"])).digest()
    assert replay(parsed)[3] == manual
    reordered = parse_event_log(json.dumps([events[0], events[6], events[5], *events[7:]]))
    assert replay(reordered)[3] != manual


@pytest.mark.parametrize(
    ("name", "changes", "check", "named"),
    [
        ("compose-hash", {"event_payload": "66" * 32}, "dstack.event_digest", "'compose-hash'"),
        ("compose-hash", runtime_event("compose-hash", b"\x66" * 32), "dstack.rtmr3", "RTMR3"),
        ("app-id", {"digest": "ee" * 48}, "dstack.event_digest", "'app-id'"),
    ],
    ids=[
        "forged-payload-with-genuine-digest",
        "forged-payload-with-recomputed-digest-breaks-rtmr3",
        "tampered-present-digest-though-rtmr3-matches",
    ],
)
def test_a_forged_runtime_event_is_refused(
    name: str, changes: dict[str, object], check: str, named: str
) -> None:
    events = dstack_event_log()
    quoted = replay_rtmrs(events)
    forged = [dict(e) for e in events]
    index = next(i for i, e in enumerate(forged) if e["event"] == name)
    forged[index] = {**forged[index], **changes}
    with pytest.raises(UntrustedChain) as info:
        check_replay(parse_event_log(json.dumps(forged)), quoted)
    assert info.value.check == check
    assert named in str(info.value)


def test_boot_event_digest_is_only_checked_through_the_rtmr() -> None:
    events = dstack_event_log()
    genuine = replay_rtmrs(events)
    altered = [dict(e) for e in events]
    altered[2] = boot_event(1, b"another kernel")
    with pytest.raises(UntrustedChain) as info:
        check_replay(parse_event_log(json.dumps(altered)), genuine)
    assert info.value.check == "dstack.rtmr1"
    check_replay(parse_event_log(json.dumps(events)), genuine)


def test_dropping_an_event_is_detected() -> None:
    events = dstack_event_log()
    genuine = replay_rtmrs(events)
    with pytest.raises(UntrustedChain):
        check_replay(parse_event_log(json.dumps(events[:-1])), genuine)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda e: e.update(imr=4), "imr"),
        (lambda e: e.update(imr=True), "imr"),
        (lambda e: e.update(imr="3"), "imr"),
        (lambda e: e.update(event_type=-1), "event_type"),
        (lambda e: e.update(digest="00" * 47), "digest"),
        (lambda e: e.update(digest="zz" * 48), "digest"),
        (lambda e: e.update(event_payload="abc"), "event_payload"),
        (lambda e: e.update(event=5), "event"),
        (lambda e: e.update(event="\ud800"), "UTF-8"),
        (lambda e: e.update(version=3), "version"),
        (lambda e: e.update(version=True), "version"),
        (lambda e: e.update(preimage="zz"), "preimage"),
    ],
)
def test_malformed_events_are_refused(mutate: object, fragment: str) -> None:
    events = dstack_event_log()
    mutate(events[6])  # type: ignore[operator]
    with pytest.raises(MalformedEvidence) as info:
        parse_event_log(json.dumps(events))
    assert info.value.check == "dstack.event_log"
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", [b"not json", b"{}", b"[1]", b'"x"'])
def test_event_log_must_be_a_json_list_of_objects(text: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        parse_event_log(text)


def test_facts_come_from_the_system_phase() -> None:
    compose = '{"runner":"docker-compose"}'
    cert_digest = hashlib.sha256(b"certificate").hexdigest().encode()
    events = dstack_event_log(
        app_compose=compose, app_events=[(CERTIFICATE_EVENT, cert_digest), ("custom", b"x")]
    )
    facts = dstack_facts(parse_event_log(json.dumps(events)))
    assert facts.compose_hash == hashlib.sha256(compose.encode()).digest()
    assert facts.app_id == facts.compose_hash[:20]
    assert facts.os_image_hash == hashlib.sha256(b"atls synthetic dstack OS").digest()
    assert facts.system_ready
    assert facts.certificate_digest == bytes.fromhex(cert_digest.decode())
    assert facts.app_events == (CERTIFICATE_EVENT, "custom")


def test_the_last_certificate_event_wins() -> None:
    first = hashlib.sha256(b"first").hexdigest().encode()
    second = hashlib.sha256(b"second").digest()  # raw 32 bytes are accepted too
    events = dstack_event_log(app_events=[(CERTIFICATE_EVENT, first), (CERTIFICATE_EVENT, second)])
    assert dstack_facts(parse_event_log(json.dumps(events))).certificate_digest == second


@pytest.mark.parametrize("payload", [b"abc", b"zz" * 32, b"00" * 33])
def test_certificate_event_payload_must_be_a_sha256(payload: bytes) -> None:
    events = dstack_event_log(app_events=[(CERTIFICATE_EVENT, payload)])
    with pytest.raises(MalformedEvidence):
        dstack_facts(parse_event_log(json.dumps(events)))


def test_application_cannot_remeasure_system_events() -> None:
    evil = hashlib.sha256(b"evil").digest()
    events = dstack_event_log(app_events=[("compose-hash", evil)])
    with pytest.raises(MalformedEvidence) as info:
        dstack_facts(parse_event_log(json.dumps(events)))
    assert "after system-ready" in str(info.value)


def test_system_events_appear_once() -> None:
    events = dstack_event_log()
    index = next(i for i, e in enumerate(events) if e["event"] == "system-ready")
    events.insert(index, runtime_event("app-id", b"\x00" * 20))
    with pytest.raises(MalformedEvidence) as info:
        dstack_facts(parse_event_log(json.dumps(events)))
    assert "twice" in str(info.value)


def test_runtime_events_outside_rtmr3_carry_no_facts() -> None:
    events = dstack_event_log()
    events.insert(0, runtime_event("compose-hash", b"\x11" * 32, imr=2))
    facts = dstack_facts(parse_event_log(json.dumps(events)))
    assert facts.compose_hash != b"\x11" * 32


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=6,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "imr": st.integers(-1, 5) | json_values,
        "event_type": st.sampled_from([RUNTIME_EVENT_TYPE, 1, 2**32, -1]) | json_values,
        "digest": st.sampled_from(["00" * 48, "0" * 95, "zz"]) | json_values,
        "event": st.sampled_from(["compose-hash", "system-ready", CERTIFICATE_EVENT, ""])
        | json_values,
        "event_payload": st.sampled_from(["", "00" * 32, "0"]) | json_values,
    },
)


@settings(max_examples=120, deadline=None)
@given(st.lists(event_like, max_size=8) | json_values)
def test_arbitrary_json_never_escapes_as_another_exception(document: object) -> None:
    try:
        events = parse_event_log(json.dumps(document))
        replay(events)
        dstack_facts(events)
    except (MalformedEvidence, UntrustedChain):
        pass


def _relabelled(event: dict[str, object]) -> dict[str, object]:
    """The same measured digest, declared as a boot-time (non-runtime) event."""
    return {**event, "event_type": 0x80000001}


def test_relabelled_rtmr3_events_cannot_smuggle_an_app_event_into_the_system_phase() -> None:
    # Regression (R3 review): the event type is the server's word.  Declaring the genuine
    # system-ready and compose-hash events as non-runtime keeps their digests (replay
    # still matches the quote) but hid them from the facts, so an event the
    # *application* emitted after system-ready was read as the OS's compose hash.
    evil = hashlib.sha256(b"evil compose").digest()
    genuine = dstack_event_log(app_events=[("compose-hash", evil)])
    quoted = replay_rtmrs(genuine)
    forged = [
        _relabelled(e)
        if e["event"] in ("compose-hash", "system-ready") and e is not genuine[-1]
        else e
        for e in genuine
    ]
    events = parse_event_log(json.dumps(forged))
    check_replay(events, quoted)  # the relabelling alone is invisible to the RTMRs
    with pytest.raises(MalformedEvidence) as info:
        dstack_facts(events)
    assert info.value.check == "dstack.event_log"
    assert "RTMR3" in str(info.value)


def test_every_rtmr3_event_must_be_a_runtime_event() -> None:
    events = dstack_event_log()
    events.insert(6, boot_event(3, b"an opaque RTMR3 event"))
    with pytest.raises(MalformedEvidence) as info:
        dstack_facts(parse_event_log(json.dumps(events)))
    assert "RTMR3" in str(info.value)


def test_deeply_nested_json_is_malformed_not_a_recursion_error() -> None:
    # Regression (R3 review): json.loads raises RecursionError (not ValueError) on deep
    # nesting, which escaped the event-log and quote-document parsers.
    from atls_core.evidence import EvidenceSource, Transport
    from atls_tdx.dstack_evidence import evidence_from_quote_document

    deep = b"[" * 100_000
    with pytest.raises(MalformedEvidence):
        parse_event_log(deep)
    with pytest.raises(MalformedEvidence):
        evidence_from_quote_document(
            deep, source=EvidenceSource(transport=Transport.FILE, location="deep.json")
        )


# --- empty digests, the V2 rule, stripped logs --------------------------------------------


def _without_runtime_digests(
    events: list[dict[str, object]], *, drop: bool = False
) -> list[dict[str, object]]:
    out = []
    for event in events:
        event = dict(event)
        if event["event_type"] == RUNTIME_EVENT_TYPE:
            if drop:
                del event["digest"]
            else:
                event["digest"] = ""
        out.append(event)
    return out


@pytest.mark.parametrize("drop", [False, True])
def test_empty_or_absent_runtime_digests_are_computed(drop: bool) -> None:
    # dstack >= 0.6 guest agents leave runtime digests empty; the verifier computes them.
    events = dstack_event_log()
    quoted = replay_rtmrs(events)
    parsed = parse_event_log(json.dumps(_without_runtime_digests(events, drop=drop)))
    assert all(not e.digest for e in parsed if e.is_runtime)
    report = check_replay(parsed, quoted)
    assert report.matched == (0, 1, 2, 3)
    assert report.not_replayed == ()


@pytest.mark.parametrize("digest", ["", None])
def test_boot_events_still_need_their_digest(digest: str | None) -> None:
    events = dstack_event_log()
    if digest is None:
        del events[0]["digest"]
    else:
        events[0]["digest"] = digest
    with pytest.raises(MalformedEvidence) as info:
        parse_event_log(json.dumps(events))
    assert info.value.check == "dstack.event_log"
    assert "48 bytes" in str(info.value)


def test_v2_digest_is_sha384_of_canonical_json() -> None:
    preimage = runtime_event_preimage("compose-hash", b"\xab\xcd", version=2)
    assert preimage == b'{"name":"compose-hash","payload":"abcd","type":134217729}'
    assert (
        runtime_event_digest(RUNTIME_EVENT_TYPE, "compose-hash", b"\xab\xcd", version=2)
        == hashlib.sha384(preimage).digest()
    )
    assert runtime_event_digest(RUNTIME_EVENT_TYPE, "x", b"", version=2) != runtime_event_digest(
        RUNTIME_EVENT_TYPE, "x", b""
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", '""'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\b\f\n\r\t\x01\x1f", '"\\b\\f\\n\\r\\t\\u0001\\u001f"'),
        ("\x7f/\u2028", '"\x7f/\u2028"'),
        ("测试-🦀", '"测试-🦀"'),
    ],
)
def test_v2_canonical_json_escapes_only_what_rfc8785_escapes(name: str, expected: str) -> None:
    text = runtime_event_preimage(name, b"\xff", version=2).decode()
    assert text == '{"name":' + expected + ',"payload":"ff","type":134217729}'
    assert json.loads(text)["name"] == name


def _v2(event: dict[str, object]) -> dict[str, object]:
    name = str(event["event"])
    payload = bytes.fromhex(str(event["event_payload"]))
    preimage = runtime_event_preimage(name, payload, version=2)
    return {
        **event,
        "version": 2,
        "digest": hashlib.sha384(preimage).hexdigest(),
        "preimage": preimage.hex(),
    }


def test_the_digest_rule_is_taken_from_each_event() -> None:
    events = dstack_event_log()
    mixed = [_v2(e) if e["event"] in ("compose-hash", "system-ready") else e for e in events]
    quoted = replay_rtmrs(mixed)
    assert quoted[3] != replay_rtmrs(events)[3]
    parsed = parse_event_log(json.dumps(mixed))
    assert [e.version for e in parsed if e.name == "compose-hash"] == [2]
    assert check_replay(parsed, quoted).matched == (0, 1, 2, 3)
    # The same log without the per-event version replays under V1 and fails.
    downgraded = [
        {k: v for k, v in e.items() if k not in ("version", "preimage", "digest")} for e in mixed
    ]
    downgraded = [
        e if e["event_type"] == RUNTIME_EVENT_TYPE else {**e, "digest": events[i]["digest"]}
        for i, e in enumerate(downgraded)
    ]
    with pytest.raises(UntrustedChain) as info:
        check_replay(parse_event_log(json.dumps(downgraded)), quoted)
    assert info.value.check == "dstack.rtmr3"


def test_a_v2_preimage_must_be_the_canonical_form() -> None:
    events = [_v2(e) if e["event"] == "app-id" else e for e in dstack_event_log()]
    quoted = replay_rtmrs(events)
    index = next(i for i, e in enumerate(events) if e["event"] == "app-id")
    name = str(events[index]["event"])
    payload = str(events[index]["event_payload"])
    reordered = f'{{"type":134217729,"name":"{name}","payload":"{payload}"}}'.encode()
    forged = [dict(e) for e in events]
    forged[index]["preimage"] = reordered.hex()
    forged[index]["digest"] = ""
    with pytest.raises(UntrustedChain) as info:
        check_replay(parse_event_log(json.dumps(forged)), quoted)
    assert info.value.check == "dstack.event_preimage"
    # Without the pre-image (or with an empty digest) the event is simply recomputed.
    plain = [dict(e) for e in events]
    del plain[index]["preimage"]
    plain[index]["digest"] = ""
    assert check_replay(parse_event_log(json.dumps(plain)), quoted).matched == (0, 1, 2, 3)


def test_a_stripped_log_replays_rtmr3_and_reports_the_rest() -> None:
    events = dstack_event_log()
    quoted = replay_rtmrs(events)
    stripped = stripped_event_log(parse_event_log(json.dumps(events)))
    assert [e.imr for e in stripped] == [0] + [3] * sum(1 for e in events if e["imr"] == 3)
    assert is_acpi_data_event(stripped[0])
    assert stripped[0].payload == ACPI_DATA_PAYLOAD
    assert all(e.digest == b"" for e in stripped if e.is_runtime)
    with pytest.raises(UntrustedChain) as info:
        check_replay(stripped, quoted)  # a full log is the default requirement
    assert info.value.check == "dstack.rtmr0"
    report = check_replay(stripped, quoted, required=(3,))
    assert report.matched == (3,)
    assert report.not_replayed == (0, 1, 2)
    assert report.replayed[3] == quoted[3]


def test_a_stripped_log_still_refuses_a_wrong_rtmr3() -> None:
    events = dstack_event_log()
    quoted = replay_rtmrs(events)
    stripped = stripped_event_log(parse_event_log(json.dumps(events[:-1])))
    with pytest.raises(UntrustedChain) as info:
        check_replay(stripped, quoted, required=(3,))
    assert info.value.check == "dstack.rtmr3"


@pytest.mark.parametrize("required", [(0, 1, 2), (), (3, 4)])
def test_rtmr3_is_always_required(required: tuple[int, ...]) -> None:
    events = parse_event_log(json.dumps(dstack_event_log()))
    with pytest.raises(ValueError):
        check_replay(events, replay(events), required=required)


def test_event_log_json_round_trips() -> None:
    events = [_v2(e) if e["event"] == "app-id" else e for e in dstack_event_log()]
    parsed = stripped_event_log(parse_event_log(json.dumps(events)))
    assert parse_event_log(event_log_json(parsed)) == parsed


def _with_newer_system_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with dstack master's newer system events where it measures them."""
    out = []
    for event in events:
        if event["event"] == "instance-id":
            out += [
                runtime_event("init-script-hash", hashlib.sha256(b"first script").digest()),
                runtime_event("init-script-hash", hashlib.sha256(b"second script").digest()),
                runtime_event("gpu-policy-hash", hashlib.sha256(b"gpu policy").digest()),
            ]
        if event["event"] == "system-ready":
            out.append(runtime_event("storage-fs", b"ext4"))
        out.append(event)
    return out


def test_newer_system_events_are_read() -> None:
    facts = dstack_facts(parse_event_log(json.dumps(_with_newer_system_events(dstack_event_log()))))
    assert facts.init_script_hashes == (
        hashlib.sha256(b"first script").digest(),
        hashlib.sha256(b"second script").digest(),
    )
    assert facts.gpu_policy_hash == hashlib.sha256(b"gpu policy").digest()
    assert facts.storage_fs == b"ext4"
    assert facts.app_events == ()


@pytest.mark.parametrize("name", ["init-script-hash", "gpu-policy-hash", "storage-fs"])
def test_the_application_cannot_measure_newer_system_events(name: str) -> None:
    events = dstack_event_log(app_events=[(name, b"\x00" * 32)])
    with pytest.raises(MalformedEvidence) as info:
        dstack_facts(parse_event_log(json.dumps(events)))
    assert "after system-ready" in str(info.value)

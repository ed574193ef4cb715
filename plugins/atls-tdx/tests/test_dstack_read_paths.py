"""What the dstack challenge path reads per connection keeps its meaning on its short paths.

Event log entries of the common shape are read inline, quote hex of the usual form is decoded
without the general reader, and allow-lists and the app_compose pin are parsed once: each must
decide exactly what the general reading decides, and a refusal must say the same.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atls_core.errors import ATLSError, MalformedEvidence
from atls_core.evidence import EvidenceSource, Transport
from atls_core.policy import Policy
from atls_tdx import dstack
from atls_tdx.dstack_eventlog import (
    DIGEST_SIZE,
    EVENT_LOG_VERSIONS,
    RTMR_COUNT,
    RUNTIME_EVENT_TYPE,
    Event,
    parse_event_log,
)
from atls_tdx.dstack_evidence import evidence_from_quote_document
from atls_tdx.testing.dstack import dstack_event_log

_SOURCE = EvidenceSource(transport=Transport.CHALLENGE, location="/tdx_quote")


class _Number(enum.IntEnum):
    THREE = 3
    RUNTIME = RUNTIME_EVENT_TYPE


class _Name(str):
    """A str subclass: read as a string, as before."""


class _Entry(Mapping[str, Any]):
    """A mapping that is not a dict (a caller may pass decoded entries of its own)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Any:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def _reference(entry: Any, index: int) -> Event:
    """The entry read only through general checks, one field at a time (the oracle)."""

    def refuse(message: str, **kw: Any) -> MalformedEvidence:
        return MalformedEvidence(message, check="dstack.event_log", **kw)

    def hex_field(key: str) -> bytes:
        value = entry.get(key)
        if not isinstance(value, str):
            raise refuse(f"event {index}: {key!r} must be a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise refuse(f"event {index}: {key!r} is not hex") from None

    def int_field(key: str, limit: int) -> int:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
            raise refuse(f"event {index}: {key!r} must be an integer in [0, {limit})")
        return value

    if not isinstance(entry, Mapping):
        raise refuse(f"event {index} is not an object")
    name = entry.get("event", "")
    if not isinstance(name, str):
        raise refuse(f"event {index}: 'event' must be a string")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise refuse(f"event {index}: 'event' is not encodable as UTF-8") from None
    event_type = int_field("event_type", 1 << 32)
    digest = hex_field("digest") if "digest" in entry else b""
    runtime = event_type == RUNTIME_EVENT_TYPE
    if len(digest) != DIGEST_SIZE and not (runtime and not digest):
        raise refuse(
            f"event {index}: digest must be {DIGEST_SIZE} bytes"
            + (" (or empty for a runtime event)" if runtime else ""),
            expected=DIGEST_SIZE,
            actual=len(digest),
        )
    version = entry.get("version")
    if version is None:
        version = 1
    elif isinstance(version, bool) or version not in EVENT_LOG_VERSIONS:
        raise refuse(
            f"event {index}: 'version' must be one of {list(EVENT_LOG_VERSIONS)}", actual=version
        )
    preimage = None if entry.get("preimage") is None else hex_field("preimage")
    return Event(
        imr=int_field("imr", RTMR_COUNT),
        event_type=event_type,
        digest=digest,
        name=name,
        payload=hex_field("event_payload"),
        version=version,
        preimage=preimage,
    )


def _outcome(read: Any, entry: Any) -> Any:
    try:
        return read(entry, 0)
    except MalformedEvidence as error:
        return (error.check, str(error), error.expected, error.actual)


def _parsed(entry: Any, index: int) -> Event:
    return parse_event_log([entry])[index]


_BOOT = {"imr": 1, "event_type": 13, "digest": "ab" * 48, "event": "", "event_payload": ""}
_RUNTIME = {
    "imr": 3,
    "event_type": RUNTIME_EVENT_TYPE,
    "digest": "",
    "event": "compose-hash",
    "event_payload": "cd" * 32,
}
_VARIANTS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (_BOOT, {}),
    (_RUNTIME, {}),
    (_RUNTIME, {"digest": None}),
    (_RUNTIME, {"digest": 5}),
    (_RUNTIME, {"digest": "ab " * 48}),  # bytes.fromhex skips spaces between bytes
    (_RUNTIME, {"digest": "zz"}),
    (_BOOT, {"digest": ""}),
    (_RUNTIME, {"event": _Name("compose-hash")}),
    (_RUNTIME, {"event": "caf\u00e9"}),
    (_RUNTIME, {"event": "\udc80"}),
    (_RUNTIME, {"event": b"compose-hash"}),
    (_RUNTIME, {"event": None}),
    (_RUNTIME, {"imr": _Number.THREE}),
    (_RUNTIME, {"event_type": _Number.RUNTIME}),
    (_RUNTIME, {"imr": True}),
    (_RUNTIME, {"imr": 3.0}),
    (_RUNTIME, {"imr": -1}),
    (_RUNTIME, {"imr": 4}),
    (_RUNTIME, {"event_type": 1 << 32}),
    (_RUNTIME, {"event_type": None}),
    (_RUNTIME, {"event_payload": None}),
    (_RUNTIME, {"event_payload": b"cd"}),
    (_RUNTIME, {"event_payload": "c d"}),
    (_RUNTIME, {"event_payload": "cdx"}),
    (_RUNTIME, {"version": 2}),
    (_RUNTIME, {"version": False}),
    (_RUNTIME, {"preimage": "0a"}),
    (_RUNTIME, {"preimage": 1}),
]


@pytest.mark.parametrize(("base", "change"), _VARIANTS)
def test_an_entry_is_read_as_the_general_checks_read_it(
    base: dict[str, Any], change: dict[str, Any]
) -> None:
    entry = {**base, **change}
    assert _outcome(_parsed, entry) == _outcome(_reference, entry)


@pytest.mark.parametrize("drop", ["event", "event_type", "digest", "imr", "event_payload"])
def test_a_missing_field_is_read_as_the_general_checks_read_it(drop: str) -> None:
    entry = {k: v for k, v in _RUNTIME.items() if k != drop}
    assert _outcome(_parsed, entry) == _outcome(_reference, entry)
    boot = {k: v for k, v in _BOOT.items() if k != drop}
    assert _outcome(_parsed, boot) == _outcome(_reference, boot)


def test_entries_that_are_mappings_but_not_dicts_are_read() -> None:
    events = dstack_event_log()
    assert parse_event_log([_Entry(e) for e in events]) == parse_event_log(json.dumps(events))
    for entry in (["imr", 3], "x", None, 3):
        assert _outcome(_parsed, entry) == _outcome(_reference, entry)


_FIELD_VALUES = st.one_of(
    st.sampled_from(range(-1, RTMR_COUNT + 2)),  # the edges of imr and version, evenly
    st.sampled_from([RUNTIME_EVENT_TYPE, 13, (1 << 32) - 1, 1 << 32, 1 << 70, -(1 << 70)]),
    st.sampled_from([True, False, None, 1.0, 2.0, float("inf"), _Number.THREE, _Number.RUNTIME]),
    st.text(alphabet="0123456789abcdefABCDEF xX\t\n\u0663\udc80\u00e9", max_size=100),
    st.sampled_from(["ab" * 48, "AB" * 48, "ab " * 48, "0x" + "ab" * 48, "", "cd" * 32]),
    st.sampled_from([b"ab" * 48, bytearray(b"ab"), ["ab"], {}, _Name("ab" * 48), _Name("x")]),
)


_FIELDS = ["imr", "event_type", "digest", "event", "event_payload", "version", "preimage"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_BOOT, _RUNTIME, {}]),
    st.dictionaries(st.sampled_from(_FIELDS), _FIELD_VALUES, max_size=2),
    st.sets(st.sampled_from(_FIELDS), max_size=1),
)
def test_any_entry_is_read_as_the_general_checks_read_it(
    base: dict[str, Any], change: dict[str, Any], drop: set[str]
) -> None:
    entry = {k: v for k, v in {**base, **change}.items() if k not in drop}
    assert _outcome(_parsed, entry) == _outcome(_reference, entry)


# --- the quote in a challenge answer ------------------------------------------------------

_QUOTE = os.urandom(1000)


def _answer(quote_hex: str) -> bytes:
    document = {"quote": {"quote": quote_hex, "event_log": json.dumps(dstack_event_log())}}
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "text",
    [
        _QUOTE.hex(),
        _QUOTE.hex().upper(),
        "0x" + _QUOTE.hex(),
        " " + _QUOTE.hex()[:10] + "\n" + _QUOTE.hex()[10:] + "\t",
    ],
)
def test_every_hex_form_of_the_quote_decodes_to_the_quote(text: str) -> None:
    assert evidence_from_quote_document(_answer(text), source=_SOURCE).data == _QUOTE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_QUOTE.hex()[:-1], "odd number of hex digits"),
        (_QUOTE.hex()[:-2] + "zz", "not hex"),
        (_QUOTE.hex()[:-2] + "\u0663\u0664", "not hex"),
        ("0x", "not hex"),
    ],
)
def test_a_quote_that_is_not_hex_is_refused(text: str, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        evidence_from_quote_document(_answer(text), source=_SOURCE)


# --- allow-lists and the app_compose pin ----------------------------------------------------


def test_an_allow_list_changed_after_use_is_read_again() -> None:
    first, second = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    listed = [first]
    policy = Policy(options={"allowed_compose_hashes": listed})
    read = dstack._hex_values(policy, "allowed_compose_hashes", 32)
    assert read == frozenset({bytes.fromhex(first)})
    listed.append(second)  # the policy holds the list itself, not a copy of its items
    read = dstack._hex_values(policy, "allowed_compose_hashes", 32)
    assert read == frozenset({bytes.fromhex(first), bytes.fromhex(second)})


def test_two_policies_with_different_lists_each_read_their_own() -> None:
    # The parsed lists are kept by content: a list, its name and its size make the key, so
    # neither another validator's list nor the same text under another option is served.
    first, second = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    one = Policy(options={"allowed_compose_hashes": [first], "allowed_app_ids": [second[:40]]})
    two = Policy(options={"allowed_compose_hashes": [second.upper()]})
    for _ in range(2):
        assert dstack._hex_values(one, "allowed_compose_hashes", 32) == frozenset(
            {bytes.fromhex(first)}
        )
        assert dstack._hex_values(two, "allowed_compose_hashes", 32) == frozenset(
            {bytes.fromhex(second)}
        )
        assert dstack._hex_values(one, "allowed_app_ids", 20) == frozenset(
            {bytes.fromhex(second[:40])}
        )
        assert dstack._hex_values(two, "allowed_app_ids", 20) is None
        with pytest.raises(ATLSError):  # the same text under a 20-byte option: too long
            dstack._hex_values(Policy(options={"allowed_app_ids": [first]}), "allowed_app_ids", 20)


@pytest.mark.parametrize(
    "listed", [["zz" * 32], ["ab" * 31], [["ab" * 32]], [{"x": 1}], [], "ab" * 32, 5]
)
def test_a_bad_allow_list_is_refused_every_time(listed: Any) -> None:
    policy = Policy(options={"allowed_compose_hashes": listed})
    for _ in range(2):  # the second reading must not find an answer kept from the first
        with pytest.raises(ATLSError) as info:
            dstack._hex_values(policy, "allowed_compose_hashes", 32)
        assert info.value.check == "config.policy"


def test_the_app_compose_pin_is_the_hash_of_the_text_given() -> None:
    text = '{"runner":"docker-compose"}'
    for document in (text, text.encode(), bytearray(text.encode())):
        assert dstack._configured_compose_hash(document) == hashlib.sha256(text.encode()).digest()
    other = text + " "
    assert dstack._configured_compose_hash(other) == hashlib.sha256(other.encode()).digest()
    with pytest.raises(ATLSError):
        dstack._configured_compose_hash({"runner": "docker-compose"})


def test_the_challenge_body_is_what_json_dumps_writes() -> None:
    from atls_core import binding

    validator = dstack.DstackValidator.challenge_validator(
        {"collateral_file": "unused.json", "cache_dir": "none"}
    )
    for nonce in (bytes(32), b"\xff" * 32, os.urandom(32)):
        report_data = binding.report_data_for("challenge-v1", spki_der=b"", nonce=nonce)
        expected = {"report_data_hex": report_data.hex(), "nonce": nonce.hex()}
        assert validator.challenge(nonce).body == json.dumps(expected).encode()

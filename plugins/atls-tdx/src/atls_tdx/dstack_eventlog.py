"""dstack's TDX event log: parsing, digest recomputation and RTMR replay.

The event log is unsigned side material.  It is worth something only through
the quote: replaying it must reproduce RTMR0-3 exactly.  Runtime events
(``event_type`` 0x08000001, dstack's measured application events) are
re-digested here from their name and payload, so a forged payload cannot ride
on a genuine digest; the digest a server supplies for them is compared, never
used.  Boot-time events carry digests of data that is not in the log (firmware
tables, kernel images): those digests are used as given and are therefore only
as good as the RTMR0-2 reference values that policy pins.

Facts (app id, compose hash, OS image hash...) are read from RTMR3 events only
after the replay matched the quote, and only from the system phase that ends
with ``system-ready``: later events are emitted by the application itself.
Every RTMR3 event must be a runtime event, so none of them escapes re-digesting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from atls_core.errors import MalformedEvidence, UntrustedChain

__all__ = [
    "CERTIFICATE_EVENT",
    "MAX_EVENTS",
    "RTMR_COUNT",
    "RUNTIME_EVENT_TYPE",
    "SYSTEM_EVENTS",
    "DstackFacts",
    "Event",
    "check_replay",
    "dstack_facts",
    "parse_event_log",
    "replay",
    "runtime_event_digest",
]

RUNTIME_EVENT_TYPE = 0x08000001
RTMR_COUNT = 4
DIGEST_SIZE = 48
MAX_EVENTS = 4096
CERTIFICATE_EVENT = "New TLS Certificate"
"""Emitted by secureai-style servers: payload = hex SHA-256 of the TLS certificate DER."""
SYSTEM_READY = "system-ready"
SYSTEM_EVENTS = frozenset(
    {
        "system-preparing",
        "app-id",
        "compose-hash",
        "instance-id",
        "boot-mr-done",
        "mr-kms",
        "os-image-hash",
        "key-provider",
        SYSTEM_READY,
    }
)
"""Events dstack's OS measures before the application starts; each at most once."""


def runtime_event_digest(event_type: int, name: str, payload: bytes) -> bytes:
    """SHA-384(u32-LE type || ':' || name || ':' || payload), dstack's runtime-event digest."""
    return hashlib.sha384(
        event_type.to_bytes(4, "little") + b":" + name.encode() + b":" + payload
    ).digest()


@attrs.frozen(kw_only=True)
class Event:
    imr: int
    event_type: int
    digest: bytes = attrs.field(repr=lambda b: b.hex())
    """As supplied by the server; trusted only for boot-time events."""
    name: str
    payload: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")

    @property
    def is_runtime(self) -> bool:
        return self.event_type == RUNTIME_EVENT_TYPE

    @property
    def measured_digest(self) -> bytes:
        """The digest that extends the RTMR: recomputed for runtime events."""
        if self.is_runtime:
            return runtime_event_digest(self.event_type, self.name, self.payload)
        return self.digest


def _malformed(message: str, **kw: Any) -> MalformedEvidence:
    return MalformedEvidence(message, check="dstack.event_log", **kw)


def _hex_field(entry: Mapping[str, Any], key: str, index: int) -> bytes:
    value = entry.get(key)
    if not isinstance(value, str):
        raise _malformed(f"event {index}: {key!r} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _malformed(f"event {index}: {key!r} is not hex") from None


def _int_field(entry: Mapping[str, Any], key: str, index: int, limit: int) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise _malformed(f"event {index}: {key!r} must be an integer in [0, {limit})")
    return value


def parse_event_log(source: bytes | str | Sequence[Any]) -> tuple[Event, ...]:
    """Parse dstack's JSON event log (a JSON text or the already-decoded list)."""
    if isinstance(source, (bytes, str)):
        try:
            source = json.loads(source)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _malformed("the event log is not JSON") from None
    if not isinstance(source, list):
        raise _malformed("the event log must be a JSON list")
    if len(source) > MAX_EVENTS:
        raise _malformed(
            "the event log is too long", expected=f"<= {MAX_EVENTS}", actual=len(source)
        )
    events = []
    for index, entry in enumerate(source):
        if not isinstance(entry, Mapping):
            raise _malformed(f"event {index} is not an object")
        name = entry.get("event", "")
        if not isinstance(name, str):
            raise _malformed(f"event {index}: 'event' must be a string")
        digest = _hex_field(entry, "digest", index)
        if len(digest) != DIGEST_SIZE:
            raise _malformed(
                f"event {index}: digest must be {DIGEST_SIZE} bytes",
                expected=DIGEST_SIZE,
                actual=len(digest),
            )
        events.append(
            Event(
                imr=_int_field(entry, "imr", index, RTMR_COUNT),
                event_type=_int_field(entry, "event_type", index, 1 << 32),
                digest=digest,
                name=name,
                payload=_hex_field(entry, "event_payload", index),
            )
        )
    return tuple(events)


def replay(events: Iterable[Event]) -> tuple[bytes, ...]:
    """RTMR0-3 from the log: start at 48 zero bytes, extend SHA-384(RTMR || digest).

    A runtime event whose supplied digest differs from the recomputed one is
    refused outright (a forged payload or a forged digest, either way a lie).
    """
    rtmrs = [bytes(DIGEST_SIZE)] * RTMR_COUNT
    for index, event in enumerate(events):
        digest = event.measured_digest
        if event.is_runtime and not hmac.compare_digest(digest, event.digest):
            raise UntrustedChain(
                f"runtime event {index} ({event.name!r}): the digest does not match its "
                "name and payload",
                check="dstack.event_digest",
                expected=digest,
                actual=event.digest,
            )
        rtmrs[event.imr] = hashlib.sha384(rtmrs[event.imr] + digest).digest()
    return tuple(rtmrs)


def check_replay(events: Sequence[Event], quoted: Sequence[bytes]) -> None:
    """The replayed RTMRs must equal the quote's, register by register."""
    replayed = replay(events)
    for index, (mine, theirs) in enumerate(zip(replayed, quoted, strict=True)):
        if not hmac.compare_digest(mine, theirs):
            raise UntrustedChain(
                f"replaying the event log does not reproduce RTMR{index} of the quote",
                check=f"dstack.rtmr{index}",
                expected=theirs,
                actual=mine,
            )


@attrs.frozen(kw_only=True)
class DstackFacts:
    """What a replayed (quote-endorsed) event log says about the application."""

    app_id: bytes | None = None
    compose_hash: bytes | None = None
    instance_id: bytes | None = None
    os_image_hash: bytes | None = None
    key_provider: bytes | None = None
    mr_kms: bytes | None = None
    system_ready: bool = False
    certificate_digest: bytes | None = None
    """The last 'New TLS Certificate' event's SHA-256, if any."""
    app_events: tuple[str, ...] = ()
    """Names of events the application emitted after system-ready."""


def _certificate_digest(payload: bytes) -> bytes:
    if len(payload) == 32:
        return payload
    try:
        text = payload.decode("ascii")
        digest = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        digest = b""
    if len(digest) != 32 or len(text) != 64:
        raise _malformed(
            f"{CERTIFICATE_EVENT!r} payload is not a SHA-256 digest (hex)", actual=payload[:80]
        )
    return digest


def dstack_facts(events: Sequence[Event]) -> DstackFacts:
    """Read the application's identity from RTMR3 runtime events (after replay!)."""
    seen: dict[str, bytes] = {}
    ready = False
    certificate: bytes | None = None
    app_events: list[str] = []
    for index, event in enumerate(events):
        if event.imr != 3:
            continue
        if not event.is_runtime:
            # dstack measures only runtime events into RTMR3.  The event type is the
            # server's word: a genuine system event relabelled as non-runtime keeps its
            # digest (the replay still matches) but would vanish from the facts, letting
            # an application-emitted event pose as the OS's.
            raise _malformed(
                f"event {index}: RTMR3 event is not a runtime event; its digest cannot be "
                "checked against its name and payload",
                expected=RUNTIME_EVENT_TYPE,
                actual=event.event_type,
            )
        if event.name in SYSTEM_EVENTS:
            if ready:
                raise _malformed(
                    f"event {index}: system event {event.name!r} after system-ready "
                    "(only the OS may measure it, before the application starts)"
                )
            if event.name in seen:
                raise _malformed(f"event {index}: system event {event.name!r} appears twice")
            seen[event.name] = event.payload
            ready = event.name == SYSTEM_READY
            continue
        if event.name == CERTIFICATE_EVENT:
            certificate = _certificate_digest(event.payload)
        if ready:
            app_events.append(event.name)
    return DstackFacts(
        app_id=seen.get("app-id"),
        compose_hash=seen.get("compose-hash"),
        instance_id=seen.get("instance-id"),
        os_image_hash=seen.get("os-image-hash"),
        key_provider=seen.get("key-provider"),
        mr_kms=seen.get("mr-kms"),
        system_ready=ready,
        certificate_digest=certificate,
        app_events=tuple(app_events),
    )

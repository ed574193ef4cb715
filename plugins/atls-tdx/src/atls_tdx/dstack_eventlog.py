"""dstack's TDX event log: parsing, digest recomputation and RTMR replay.

The event log is unsigned side material.  It is worth something only through
the quote: replaying it must reproduce the quote's RTMRs.  Runtime events
(``event_type`` 0x08000001, dstack's measured application events) are
re-digested here from their name and payload, so a forged payload cannot ride
on a genuine digest: a digest the server supplies for them is compared, never
used, and an empty one (GetQuote of dstack >= 0.5.6 guest agents, and every log
embedded in a certificate) is simply computed.  Each runtime event says which digest rule
it follows (``version``): V1 hashes ``type || ":" || name || ":" || payload``,
V2 hashes the RFC 8785 canonical JSON of name, type and payload; a pre-image
carried beside a V2 digest must be exactly that canonical JSON.  Boot-time
events carry digests of data that is not in the log (firmware tables, kernel
images): those digests are used as given and are therefore only as good as the
RTMR0-2 reference values that policy pins.

Logs embedded in certificates are stripped (:func:`stripped_event_log`): they
keep RTMR3 (and, from dstack master on, three RTMR0 ACPI digests; v0.5.x keeps
RTMR3 only), so only RTMR3 can be replayed from them.
:func:`check_replay` therefore takes the registers that *must* replay and
reports the others it could not reproduce.

Facts (app id, compose hash, OS image hash...) are read from RTMR3 events only
after the replay matched the quote, and only from the system phase that ends
with ``system-ready``: later events are emitted by the application itself.
Every RTMR3 event must be a runtime event, so none of them escapes re-digesting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs

from atls_core import strict_json
from atls_core.errors import MalformedEvidence, UntrustedChain

__all__ = [
    "ACPI_DATA_EVENT_TYPE",
    "ACPI_DATA_PAYLOAD",
    "ALL_RTMRS",
    "CERTIFICATE_EVENT",
    "DIGEST_SIZE",
    "EVENT_LOG_VERSIONS",
    "INIT_SCRIPT_EVENT",
    "MAX_EVENTS",
    "RTMR_COUNT",
    "RUNTIME_EVENT_TYPE",
    "SYSTEM_EVENTS",
    "DstackFacts",
    "Event",
    "ReplayReport",
    "check_replay",
    "dstack_facts",
    "event_log_json",
    "is_acpi_data_event",
    "parse_event_log",
    "replay",
    "runtime_event_digest",
    "runtime_event_preimage",
    "stripped_event_log",
]

RUNTIME_EVENT_TYPE = 0x08000001
_RUNTIME_V1_HEAD = RUNTIME_EVENT_TYPE.to_bytes(4, "little") + b":"
RTMR_COUNT = 4
ALL_RTMRS = (0, 1, 2, 3)
DIGEST_SIZE = 48
MAX_EVENTS = 4096
_U32 = 1 << 32
EVENT_LOG_VERSIONS = (1, 2)
"""Runtime-event digest rules: 1 = binary concatenation, 2 = canonical JSON."""
ACPI_DATA_EVENT_TYPE = 10
ACPI_DATA_PAYLOAD = b"ACPI DATA"
"""The three RTMR0 events dstack keeps in certificate logs ("lite" verification inputs)."""
CERTIFICATE_EVENT = "New TLS Certificate"
"""Emitted by secureai-style servers: payload = hex SHA-256 of the TLS certificate DER."""
SYSTEM_READY = "system-ready"
INIT_SCRIPT_EVENT = "init-script-hash"
SYSTEM_EVENTS = frozenset(
    {
        "system-preparing",
        "app-id",
        "compose-hash",
        INIT_SCRIPT_EVENT,
        "gpu-policy-hash",
        "instance-id",
        "boot-mr-done",
        "mr-kms",
        "os-image-hash",
        "key-provider",
        "storage-fs",
        SYSTEM_READY,
    }
)
"""Events dstack's OS measures before the application starts, each at most once except
``init-script-hash`` (one per init script, in order).  Not every version emits each:
``mr-kms`` (gone on dstack master) and ``os-image-hash`` only with a KMS, ``storage-fs``
since 0.5.5, ``init-script-hash`` and ``gpu-policy-hash`` on master."""

_JSON_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _canonical_json_string(text: str) -> str:
    """An RFC 8785 string: only quote, backslash and controls escaped; the rest raw."""
    out = ['"']
    for char in text:
        escaped = _JSON_SHORT_ESCAPES.get(char)
        if escaped is None and char < " ":
            escaped = f"\\u{ord(char):04x}"
        out.append(escaped if escaped is not None else char)
    out.append('"')
    return "".join(out)


def runtime_event_preimage(name: str, payload: bytes, *, version: int = 1) -> bytes:
    """The exact bytes a runtime event's digest hashes, under digest rule ``version``.

    V1: ``u32-LE type || ":" || name || ":" || payload``.  V2: the canonical JSON
    ``{"name":…,"payload":<lowercase hex>,"type":134217729}`` (keys sorted, no
    whitespace, UTF-8).  The name must be encodable as UTF-8 (no lone surrogates).
    """
    if version == 1:
        return RUNTIME_EVENT_TYPE.to_bytes(4, "little") + b":" + name.encode() + b":" + payload
    if version == 2:
        text = (
            '{"name":'
            + _canonical_json_string(name)
            + ',"payload":"'
            + payload.hex()
            + f'","type":{RUNTIME_EVENT_TYPE}}}'
        )
        return text.encode()
    raise ValueError(f"unknown event log version {version}")


def runtime_event_digest(event_type: int, name: str, payload: bytes, *, version: int = 1) -> bytes:
    """dstack's runtime-event digest: SHA-384 of :func:`runtime_event_preimage`.

    V1 hashes ``event_type`` as given (dstack always uses 0x08000001); V2's
    canonical JSON always names 0x08000001.
    """
    if version == 1:
        head = (
            _RUNTIME_V1_HEAD
            if event_type == RUNTIME_EVENT_TYPE
            else event_type.to_bytes(4, "little") + b":"
        )
        return hashlib.sha384(b"".join((head, name.encode(), b":", payload))).digest()
    return hashlib.sha384(runtime_event_preimage(name, payload, version=version)).digest()


@attrs.frozen(kw_only=True)
class Event:
    imr: int
    event_type: int
    digest: bytes = attrs.field(repr=lambda b: b.hex())
    """As supplied by the server; trusted only for boot-time events.  Empty for a
    runtime event means "not supplied": it is computed."""
    name: str
    payload: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    version: int = 1
    """The runtime-event digest rule (1 or 2); meaningless for boot-time events."""
    preimage: bytes | None = attrs.field(default=None, repr=False)
    """A V2 digest pre-image carried beside the digest; checked, never used."""

    @property
    def is_runtime(self) -> bool:
        return self.event_type == RUNTIME_EVENT_TYPE

    @property
    def measured_digest(self) -> bytes:
        """The digest that extends the RTMR: recomputed for runtime events."""
        if self.is_runtime:
            return runtime_event_digest(
                self.event_type, self.name, self.payload, version=self.version
            )
        return self.digest

    def check_supplied(self, index: int) -> bytes:
        """The measured digest, after refusing a supplied digest or pre-image that lies."""
        if self.event_type != RUNTIME_EVENT_TYPE:
            return self.digest
        digest = runtime_event_digest(
            self.event_type, self.name, self.payload, version=self.version
        )
        if self.digest and not hmac.compare_digest(digest, self.digest):
            raise UntrustedChain(
                f"runtime event {index} ({self.name!r}): the digest does not match its "
                "name and payload",
                check="dstack.event_digest",
                expected=digest,
                actual=self.digest,
            )
        if self.preimage is not None:
            canonical = runtime_event_preimage(self.name, self.payload, version=self.version)
            if not hmac.compare_digest(canonical, self.preimage):
                raise UntrustedChain(
                    f"runtime event {index} ({self.name!r}): the digest pre-image is not "
                    "the canonical form of its name and payload",
                    check="dstack.event_preimage",
                    expected=canonical,
                    actual=self.preimage,
                )
        return digest


def _malformed(message: str, **kw: Any) -> MalformedEvidence:
    return MalformedEvidence(message, check="dstack.event_log", **kw)


def _hex_member(entry: Mapping[str, Any], value: Any, name: str, index: int) -> bytes:
    """``value`` (``entry[name]``) as bytes: a plain hex string read here, else the field
    reader's checks and messages."""
    if type(value) is str:
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise _malformed(f"event {index}: {name!r} is not hex") from None
    return _hex_field(entry, name, index)


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
    """Parse dstack's JSON event log (a JSON text or the already-decoded list).

    Each entry: ``imr``, ``event_type``, ``digest`` (hex; may be empty or absent
    for runtime events, which are re-digested anyway), ``event`` (name),
    ``event_payload`` (hex), optional ``version`` (1 or 2) and ``preimage`` (hex).
    """
    if isinstance(source, (bytes, str)):
        try:
            source = strict_json.loads(source)
        except strict_json.RepeatedName as exc:
            raise _malformed(f"an event log entry repeats {exc.name!r}") from None
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _malformed("the event log is not JSON") from None
    if not isinstance(source, list):
        raise _malformed("the event log must be a JSON list")
    if len(source) > MAX_EVENTS:
        raise _malformed(
            "the event log is too long", expected=f"<= {MAX_EVENTS}", actual=len(source)
        )
    return tuple(_parse_event(entry, index) for index, entry in enumerate(source))


_ABSENT: Any = object()


def _parse_event(entry: Any, index: int) -> Event:
    """One entry; the common shape (JSON types, plain ASCII name) is read inline, since
    this runs for every event of every connection, and anything else goes through the
    field readers, which refuse it by name."""
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise _malformed(f"event {index} is not an object")
    get = entry.get
    name = get("event", "")
    if type(name) is not str or not name.isascii():
        if not isinstance(name, str):
            raise _malformed(f"event {index}: 'event' must be a string")
        try:
            name.encode()
        except UnicodeEncodeError:
            raise _malformed(f"event {index}: 'event' is not encodable as UTF-8") from None
    event_type = get("event_type")
    if type(event_type) is not int or not 0 <= event_type < _U32:
        event_type = _int_field(entry, "event_type", index, _U32)
    digest_hex = get("digest", _ABSENT)
    digest = b"" if digest_hex is _ABSENT else _hex_member(entry, digest_hex, "digest", index)
    runtime = event_type == RUNTIME_EVENT_TYPE
    if len(digest) != DIGEST_SIZE and not (runtime and not digest):
        raise _malformed(
            f"event {index}: digest must be {DIGEST_SIZE} bytes"
            + (" (or empty for a runtime event)" if runtime else ""),
            expected=DIGEST_SIZE,
            actual=len(digest),
        )
    version = get("version")
    if version is None:
        version = 1
    elif isinstance(version, bool) or version not in EVENT_LOG_VERSIONS:
        raise _malformed(
            f"event {index}: 'version' must be one of {list(EVENT_LOG_VERSIONS)}",
            actual=version,
        )
    preimage = None if get("preimage") is None else _hex_field(entry, "preimage", index)
    imr = get("imr")
    if type(imr) is not int or not 0 <= imr < RTMR_COUNT:
        imr = _int_field(entry, "imr", index, RTMR_COUNT)
    payload = _hex_member(entry, get("event_payload"), "event_payload", index)
    return Event(
        imr=imr,
        event_type=event_type,
        digest=digest,
        name=name,
        payload=payload,
        version=version,
        preimage=preimage,
    )


def event_log_json(events: Iterable[Event]) -> bytes:
    """The JSON form :func:`parse_event_log` reads (an empty digest stays empty)."""
    entries = []
    for event in events:
        entry: dict[str, Any] = {
            "imr": event.imr,
            "event_type": event.event_type,
            "digest": event.digest.hex(),
            "event": event.name,
            "event_payload": event.payload.hex(),
        }
        if event.version != 1:
            entry["version"] = event.version
        if event.preimage is not None:
            entry["preimage"] = event.preimage.hex()
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":")).encode()


def replay(events: Iterable[Event]) -> tuple[bytes, ...]:
    """RTMR0-3 from the log: start at 48 zero bytes, extend SHA-384(RTMR || digest).

    A runtime event whose supplied digest (or pre-image) differs from the
    recomputed one is refused outright (a forged payload or a forged digest,
    either way a lie).
    """
    rtmrs = [bytes(DIGEST_SIZE)] * RTMR_COUNT
    sha384 = hashlib.sha384
    for index, event in enumerate(events):
        imr = event.imr
        if event.event_type == RUNTIME_EVENT_TYPE:
            rtmrs[imr] = sha384(rtmrs[imr] + event.check_supplied(index)).digest()
        else:  # a boot-time event: its supplied digest is what was measured
            rtmrs[imr] = sha384(rtmrs[imr] + event.digest).digest()
    return tuple(rtmrs)


@attrs.frozen(kw_only=True)
class ReplayReport:
    """What replaying a log against the quote showed, register by register."""

    replayed: tuple[bytes, ...] = attrs.field(repr=lambda v: f"<{len(v)} registers>")
    matched: tuple[int, ...]
    """Registers the log reproduces exactly."""
    not_replayed: tuple[int, ...]
    """Registers the log does not reproduce and that were not required (a stripped
    log): nothing measured in them may be read from the log."""


def check_replay(
    events: Sequence[Event],
    quoted: Sequence[bytes],
    *,
    required: Collection[int] = ALL_RTMRS,
) -> ReplayReport:
    """Replay every register; each one in ``required`` must equal the quote's.

    RTMR3 is always required: every fact is read from it.  A full log (the
    default) must reproduce all four; a certificate's stripped log only RTMR3,
    and the report lists the registers it could not reproduce.
    """
    if 3 not in required or not set(required) <= set(ALL_RTMRS):
        raise ValueError("required must include RTMR3 and name only RTMR0-3")
    replayed = replay(events)
    matched, missing = [], []
    for index, (mine, theirs) in enumerate(zip(replayed, quoted, strict=True)):
        if hmac.compare_digest(mine, theirs):
            matched.append(index)
        elif index in required:
            raise UntrustedChain(
                f"replaying the event log does not reproduce RTMR{index} of the quote",
                check=f"dstack.rtmr{index}",
                expected=theirs,
                actual=mine,
            )
        else:
            missing.append(index)
    return ReplayReport(replayed=replayed, matched=tuple(matched), not_replayed=tuple(missing))


def is_acpi_data_event(event: Event) -> bool:
    """One of the three RTMR0 ACPI-table events dstack keeps in certificate logs."""
    return (
        event.imr == 0
        and event.event_type == ACPI_DATA_EVENT_TYPE
        and event.payload == ACPI_DATA_PAYLOAD
    )


def stripped_event_log(events: Iterable[Event]) -> tuple[Event, ...]:
    """What dstack keeps of a log it embeds in a certificate.

    The RTMR0 ACPI DATA events (digest kept) and the RTMR3 events; runtime
    events lose their digest (the verifier recomputes it), other RTMR3 events
    their payload.  Everything else is dropped, so only RTMR3 replays.
    """
    kept = []
    for event in events:
        if is_acpi_data_event(event):
            kept.append(attrs.evolve(event, payload=ACPI_DATA_PAYLOAD))
        elif event.imr == 3:
            kept.append(
                attrs.evolve(event, digest=b"")
                if event.is_runtime
                else attrs.evolve(event, payload=b"")
            )
    return tuple(kept)


@attrs.frozen(kw_only=True)
class DstackFacts:
    """What a replayed (quote-endorsed) event log says about the application."""

    app_id: bytes | None = None
    compose_hash: bytes | None = None
    instance_id: bytes | None = None
    os_image_hash: bytes | None = None
    key_provider: bytes | None = None
    mr_kms: bytes | None = None
    gpu_policy_hash: bytes | None = None
    storage_fs: bytes | None = None
    init_script_hashes: tuple[bytes, ...] = ()
    """Recorded so they are visible, not pinned: app-compose defines the init scripts and
    the GPU policy, so a compose-hash pin covers them."""
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
    init_scripts: list[bytes] = []
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
            if event.name == INIT_SCRIPT_EVENT:
                init_scripts.append(event.payload)
                continue
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
        gpu_policy_hash=seen.get("gpu-policy-hash"),
        storage_fs=seen.get("storage-fs"),
        init_script_hashes=tuple(init_scripts),
        system_ready=ready,
        certificate_digest=certificate,
        app_events=tuple(app_events),
    )

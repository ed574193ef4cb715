"""Test doubles for dstack: event logs that replay, a fake guest agent, a fake configfs-tsm,
and RA-TLS certificates carrying dstack's attestation extension (V0 SCALE or V1 msgpack).

For tests only.  Quotes come from a caller-supplied ``quote_maker(report_data,
rtmrs, mr_config_id)`` -- typically :func:`atls_dcap.testing.quotes.make_tdx_quote`
under a :class:`~atls_dcap.testing.pki.DcapTestPki` -- so the fakes never invent
trust: what they produce verifies only against that test PKI.
"""

from __future__ import annotations

import hashlib
import json
import os
import socketserver
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from atls_core.testing.httpd import QuietHandler
from atls_core.testing.tsm import EmulatedConfigfsTsm
from atls_tdx import oids
from atls_tdx.dstack_attestation import (
    DstackAttestation,
    DstackStack,
    GcpTdxPlatform,
    NitroEnclavePlatform,
    Platform,
    RuntimeEvent,
    SevSnpPlatform,
    TdxPlatform,
    TpmQuote,
)
from atls_tdx.dstack_eventlog import (
    ACPI_DATA_PAYLOAD,
    RUNTIME_EVENT_TYPE,
    Event,
    parse_event_log,
    runtime_event_digest,
    runtime_event_preimage,
    stripped_event_log,
)
from atls_tdx.dstack_snp import mr_config_host_data

__all__ = [
    "FakeConfigfsTsm",
    "octet_string",
    "self_signed_certificate",
    "spki_of",
    "FakeGuestAgent",
    "QuoteMaker",
    "agent_event_log",
    "boot_event",
    "dstack_event_log",
    "replay_rtmrs",
    "runtime_event",
    "acpi_data_event",
    "app_info_msgpack",
    "attestation_certificate",
    "encode_attestation",
    "legacy_extensions",
    "mr_config_document",
    "ratls_report_data",
    "scale_compact",
    "snp_attestation_certificate",
    "tdx_attestation",
]

QuoteMaker = Callable[[bytes, Sequence[bytes], bytes], bytes]
"""``(report_data, rtmrs, mr_config_id) -> quote``."""


def runtime_event(name: str, payload: bytes = b"", *, imr: int = 3) -> dict[str, Any]:
    """A dstack runtime event with its correct digest."""
    return {
        "imr": imr,
        "event_type": RUNTIME_EVENT_TYPE,
        "digest": runtime_event_digest(RUNTIME_EVENT_TYPE, name, payload).hex(),
        "event": name,
        "event_payload": payload.hex(),
    }


def acpi_data_event(label: bytes) -> dict[str, Any]:
    """One of the RTMR0 "ACPI DATA" events dstack keeps when it strips a log."""
    return {
        "imr": 0,
        "event_type": 10,
        "digest": hashlib.sha384(label).hexdigest(),
        "event": "",
        "event_payload": b"ACPI DATA".hex(),
    }


def boot_event(imr: int, label: bytes, *, event_type: int = 0x80000001) -> dict[str, Any]:
    """A boot-time event: its digest is of data not in the log (here: of ``label``)."""
    return {
        "imr": imr,
        "event_type": event_type,
        "digest": hashlib.sha384(label).hexdigest(),
        "event": "",
        "event_payload": label.hex(),
    }


def replay_rtmrs(events: Iterable[dict[str, Any]]) -> tuple[bytes, bytes, bytes, bytes]:
    """RTMR0-3 for a list of event dicts, using the digests as written."""
    rtmrs = [bytes(48)] * 4
    for event in events:
        imr = int(event["imr"])
        rtmrs[imr] = hashlib.sha384(rtmrs[imr] + bytes.fromhex(event["digest"])).digest()
    return rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3]


def dstack_event_log(
    *,
    app_compose: str = '{"runner":"docker-compose","docker_compose_file":"services: {}"}',
    app_id: bytes | None = None,
    instance_id: bytes = bytes(range(20)),
    os_image_hash: bytes = hashlib.sha256(b"atls synthetic dstack OS").digest(),
    key_provider: bytes = b'{"name":"none","id":""}',
    app_events: Sequence[tuple[str, bytes]] = (),
) -> list[dict[str, Any]]:
    """A dstack-shaped event log: boot events in RTMR0-2, the system phase, app events."""
    compose = hashlib.sha256(app_compose.encode()).digest()
    events = [
        boot_event(0, b"synthetic TD HOB"),
        acpi_data_event(b"synthetic ACPI tables"),
        boot_event(1, b"synthetic kernel"),
        boot_event(2, b"synthetic kernel command line"),
        boot_event(2, b"synthetic initrd"),
        runtime_event("system-preparing"),
        runtime_event("app-id", app_id if app_id is not None else compose[:20]),
        runtime_event("compose-hash", compose),
        runtime_event("instance-id", instance_id),
        runtime_event("boot-mr-done"),
        runtime_event("os-image-hash", os_image_hash),
        runtime_event("key-provider", key_provider),
        runtime_event("system-ready"),
    ]
    events.extend(runtime_event(name, payload) for name, payload in app_events)
    return events


# --- the guest agent -------------------------------------------------------------


def agent_event_log(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event log as a dstack >= 0.5.6 guest agent's GetQuote serves it.

    Every event ``stripped()`` (upstream ``cc-eventlog`` ``TdxEvent::stripped``,
    ``dstack-attest`` ``get_tdx_event_log_string``): runtime events lose their
    digest (``""``), boot-time events their payload.  As on dstack master, the
    RTMR0 "ACPI DATA" marker is kept and V2 runtime events carry their digest
    ``preimage`` (hex); v0.5.6-v0.5.11 empty the marker too, which no verifier
    here reads.  Older agents served the full log, which is what
    :func:`replay_rtmrs` needs: keep that for computing RTMRs.
    """
    served = []
    for event in events:
        entry = dict(event)
        if entry["event_type"] == RUNTIME_EVENT_TYPE:
            entry["digest"] = ""
            version = int(entry.get("version", 1))
            if version == 2:
                payload = bytes.fromhex(entry["event_payload"])
                entry["preimage"] = runtime_event_preimage(entry["event"], payload, version=2).hex()
        elif not (entry["imr"] == 0 and entry["event_payload"] == ACPI_DATA_PAYLOAD.hex()):
            entry["event_payload"] = ""
        served.append(entry)
    return served


class _Handler(QuietHandler):
    server: _AgentServer

    def do_POST(self) -> None:
        agent = self.server.agent
        try:
            body = json.loads(self.read_body() or b"{}")
            answer: dict[str, Any] | None
            if self.path == "/GetQuote":
                answer = agent.get_quote(bytes.fromhex(body["report_data"]))
            elif self.path == "/EmitEvent" and agent.has_emit_event:
                agent.emit_event(body["event"], bytes.fromhex(body["payload"]))
                answer = {}
            else:
                answer = agent.info() if self.path == "/Info" else None
        except (KeyError, ValueError, TypeError) as exc:
            self.send_error(400, str(exc))
            return
        if answer is None:
            self.send_error(404)
        else:
            self.send_json(200, answer)


class _AgentServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    agent: FakeGuestAgent

    def get_request(self) -> tuple[Any, Any]:
        # BaseHTTPRequestHandler wants a (host, port)-like client address.
        request, _ = super().get_request()
        return request, ("local", 0)


class FakeGuestAgent:
    """A dstack guest agent on a real Unix socket: GetQuote, EmitEvent, Info.

    Keeps the full event log (:attr:`events`, digests included, for computing
    RTMRs); GetQuote serves it as dstack >= 0.5.6 does (:func:`agent_event_log`:
    runtime digests empty).  EmitEvent appends a runtime event to RTMR3 and later
    quotes carry the new RTMR3, as on a real CVM; ``emit_event=False`` models a
    dstack master (0.6) agent, which has no EmitEvent (404).  Info answers only
    in subclasses (:meth:`info`).  Use as a context manager.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        quote_maker: QuoteMaker,
        *,
        events: Sequence[dict[str, Any]] | None = None,
        mr_config_id: bytes = bytes(48),
        vm_config: str = '{"spec_version":1}',
        emit_event: bool = True,
    ) -> None:
        self.socket_path = os.fspath(socket_path)
        self.has_emit_event = emit_event
        self._quote_maker = quote_maker
        self.events: list[dict[str, Any]] = list(
            events if events is not None else dstack_event_log()
        )
        self.mr_config_id = mr_config_id
        self.vm_config = vm_config
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: _AgentServer | None = None
        self._thread: threading.Thread | None = None

    def get_quote(self, report_data: bytes) -> dict[str, Any]:
        with self._lock:
            self.requests.append("GetQuote")
            events = list(self.events)
        quote = self._quote_maker(
            report_data.ljust(64, b"\0"), replay_rtmrs(events), self.mr_config_id
        )
        return {
            "quote": quote.hex(),
            "event_log": json.dumps(agent_event_log(events)),
            "report_data": report_data.hex(),
            "vm_config": self.vm_config,
        }

    def emit_event(self, name: str, payload: bytes) -> None:
        with self._lock:
            self.requests.append("EmitEvent")
            self.events.append(runtime_event(name, payload))

    def info(self) -> dict[str, Any] | None:
        """``Info``'s answer; ``None``: this agent has no Info (subclasses add one)."""
        return None

    def __enter__(self) -> FakeGuestAgent:
        server = _AgentServer(self.socket_path, _Handler)
        server.agent = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        Path(self.socket_path).unlink(missing_ok=True)


# --- configfs-tsm ------------------------------------------------------------------


class FakeConfigfsTsm(EmulatedConfigfsTsm):
    """configfs-tsm emulated with the ``tdx_guest`` provider (see the core's emulator).

    ``quote_maker(report_data)`` makes the quote.  Pass an instance as ``fs=`` to
    :func:`atls_tdx.issuers.configfs_tsm_quote`.
    """

    default_provider = "tdx_guest"

    def __init__(self, root: Path, quote_maker: Callable[[bytes], bytes], **options: Any) -> None:
        super().__init__(root, lambda report_data, _privlevel: quote_maker(report_data), **options)


# --- certificates ------------------------------------------------------------------


def octet_string(content: bytes) -> bytes:
    """DER OCTET STRING: how dstack wraps each RA-TLS extension's content."""
    n = len(content)
    if n < 0x80:
        return bytes([0x04, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + content


def self_signed_certificate(
    key: Any,
    extensions: Sequence[tuple[str, bytes]] = (),
    *,
    common_name: str = "atls-tdx test",
) -> bytes:
    """A self-signed DER certificate for ``key`` (a cryptography private key) with raw
    extension values, e.g. ``[(DSTACK_QUOTE, octet_string(quote)), ...]``."""
    import datetime as dt

    from atls_core.testing.certs import self_signed_certificate as make

    return make(
        key,
        extensions,
        common_name=common_name,
        not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2035, 1, 1, tzinfo=dt.UTC),
    )


def spki_of(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a cryptography private key."""
    from cryptography.hazmat.primitives import serialization

    der: bytes = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


# --- dstack attestations (the 1.3.6.1.4.1.62397.1.8 extension) ------------------------------


def ratls_report_data(spki_der: bytes) -> bytes:
    """dstack's RA-TLS report data: SHA-512("ratls-cert:" || SPKI DER)."""
    return hashlib.sha512(b"ratls-cert:" + spki_der).digest()


def scale_compact(value: int) -> bytes:
    """A SCALE compact integer in its canonical (shortest) form."""
    if value < 0:
        raise ValueError("compact integers are unsigned")
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 0b01).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 0b10).to_bytes(4, "little")
    raw = value.to_bytes(max(4, (value.bit_length() + 7) // 8), "little")
    return bytes([((len(raw) - 4) << 2) | 0b11]) + raw


def _scale_bytes(data: bytes) -> bytes:
    return scale_compact(len(data)) + data


def _scale_str(text: str) -> bytes:
    return _scale_bytes(text.encode())


def _scale_vec(items: Sequence[bytes]) -> bytes:
    return scale_compact(len(items)) + b"".join(items)


def _scale_event(event: Event) -> bytes:
    if event.version != 1:
        raise ValueError("V0 (SCALE) cannot carry a V2 event: use wire_version=1")
    return (
        event.imr.to_bytes(4, "little")
        + event.event_type.to_bytes(4, "little")
        + _scale_bytes(event.digest)
        + _scale_str(event.name)
        + _scale_bytes(event.payload)
    )


def _scale_tpm_quote(quote: TpmQuote) -> bytes:
    return (
        _scale_bytes(quote.message)
        + _scale_bytes(quote.signature)
        + _scale_vec(
            [
                pcr.index.to_bytes(4, "little")
                + _scale_str(pcr.algorithm)
                + _scale_bytes(pcr.value)
                for pcr in quote.pcr_values
            ]
        )
        + _scale_bytes(quote.ak_cert)
        + bytes([("dstack", "gcp", "nitroenclave", "aws-ec2").index(quote.platform)])
        + _scale_vec(
            [e.pcr_index.to_bytes(4, "little") + _scale_bytes(e.digest) for e in quote.event_log]
        )
    )


def _scale_platform(platform: Platform) -> bytes:
    if isinstance(platform, (TdxPlatform, GcpTdxPlatform)):
        tdx = _scale_bytes(platform.quote) + _scale_vec(
            [_scale_event(e) for e in platform.event_log]
        )
        if isinstance(platform, GcpTdxPlatform):  # GCP adds its vTPM's quote
            return b"\x01" + tdx + _scale_tpm_quote(platform.tpm_quote)
        return b"\x00" + tdx
    if isinstance(platform, NitroEnclavePlatform):
        return b"\x02" + _scale_bytes(platform.nsm_quote)
    if isinstance(platform, SevSnpPlatform):
        return (
            b"\x03"
            + _scale_bytes(platform.report)
            + _scale_vec([_scale_bytes(c) for c in platform.cert_chain])
            + _scale_str(platform.mr_config)
        )
    return b"\x04" + _scale_bytes(platform.attestation_doc)


def _encode_v0(attestation: DstackAttestation) -> bytes:
    stack = attestation.stack
    if stack.kind != "dstack" or len(stack.report_data) != 64:
        raise ValueError("V0 (SCALE) carries only the dstack stack with 64 bytes of report data")
    events = []
    for event in stack.runtime_events:
        if event.version != 1:
            raise ValueError("V0 (SCALE) cannot carry a V2 event: use wire_version=1")
        events.append(_scale_str(event.name) + _scale_bytes(event.payload))
    return (
        b"\x00"  # the legacy envelope's only variant
        + _scale_platform(attestation.platform)
        + _scale_vec(events)
        + stack.report_data
        + _scale_str(stack.config)
        # `report: ()` encodes to nothing
    )


def _mp_event(event: Event) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "imr": event.imr,
        "event_type": event.event_type,
        "digest": event.digest,
        "event": event.name,
        "event_payload": event.payload,
    }
    if event.version != 1:
        entry["version"] = event.version
    if event.preimage is not None:
        entry["preimage"] = event.preimage.hex()
    return entry


def _mp_platform(platform: Platform) -> dict[str, Any]:
    # As rmp-serde writes them: plain Vec<u8> fields as arrays of integers,
    # serde_human_bytes fields (digests, payloads, TPM blobs) as bin.
    data: dict[str, Any]
    if isinstance(platform, (TdxPlatform, GcpTdxPlatform)):
        data = {
            "quote": list(platform.quote),
            "event_log": [_mp_event(e) for e in platform.event_log],
        }
        if isinstance(platform, GcpTdxPlatform):
            tpm = platform.tpm_quote
            data["tpm_quote"] = {
                "message": tpm.message,
                "signature": tpm.signature,
                "pcr_values": [
                    {"index": p.index, "algorithm": p.algorithm, "value": p.value}
                    for p in tpm.pcr_values
                ],
                "ak_cert": tpm.ak_cert,
                "platform": tpm.platform,
                "event_log": [
                    {"pcr_index": e.pcr_index, "digest": e.digest} for e in tpm.event_log
                ],
            }
    elif isinstance(platform, NitroEnclavePlatform):
        data = {"nsm_quote": list(platform.nsm_quote)}
    elif isinstance(platform, SevSnpPlatform):
        data = {
            "report": list(platform.report),
            "cert_chain": [list(c) for c in platform.cert_chain],
            "mr_config": platform.mr_config,
        }
    else:
        data = {"attestation_doc": list(platform.attestation_doc)}
    return {"kind": platform.kind, "data": data}


def _encode_v1(attestation: DstackAttestation) -> bytes:
    import msgpack  # type: ignore[import-untyped]

    stack = attestation.stack
    runtime_events = []
    for event in stack.runtime_events:
        entry: dict[str, Any] = {"event": event.name, "payload": event.payload}
        if event.version != 1:
            entry["version"] = event.version
        runtime_events.append(entry)
    stack_data: dict[str, Any] = {
        "report_data": list(stack.report_data),
        "runtime_events": runtime_events,
        "config": stack.config,
    }
    if stack.report_data_payload is not None:
        stack_data["report_data_payload"] = stack.report_data_payload
    document = {
        "version": 1,
        "platform": _mp_platform(attestation.platform),
        "stack": {"kind": stack.kind, "data": stack_data},
    }
    packed: bytes = msgpack.packb(document, use_bin_type=True)
    return packed


def encode_attestation(attestation: DstackAttestation, *, wire_version: int | None = None) -> bytes:
    """Encode as upstream does: V0 SCALE or V1 msgpack (default: the model's own version)."""
    wire = attestation.wire_version if wire_version is None else wire_version
    if wire == 0:
        return _encode_v0(attestation)
    if wire == 1:
        return _encode_v1(attestation)
    raise ValueError(f"unknown wire version {wire}")


DEFAULT_CONFIG = json.dumps(
    {"os_image_hash": hashlib.sha256(b"atls synthetic dstack OS").hexdigest(), "spec_version": 1},
    separators=(",", ":"),
)


def tdx_attestation(
    quote: bytes,
    events: Sequence[dict[str, Any]],
    *,
    report_data: bytes,
    config: str = DEFAULT_CONFIG,
    stripped: bool = True,
    wire_version: int = 0,
) -> DstackAttestation:
    """A TDX attestation over an event log (dicts as :func:`dstack_event_log` makes).

    ``stripped`` keeps only what dstack embeds in a certificate (RTMR0 ACPI
    digests, RTMR3 events with empty runtime digests); the stack's runtime
    events are the log's RTMR3 runtime events.
    """
    parsed = parse_event_log(json.dumps(list(events)))
    runtime = tuple(
        RuntimeEvent(name=e.name, payload=e.payload, version=e.version)
        for e in parsed
        if e.imr == 3 and e.is_runtime
    )
    return DstackAttestation(
        wire_version=wire_version,
        platform=TdxPlatform(
            quote=quote, event_log=stripped_event_log(parsed) if stripped else parsed
        ),
        stack=DstackStack(
            kind="dstack", report_data=report_data, runtime_events=runtime, config=config
        ),
    )


def app_info_msgpack(
    *,
    app_id: bytes,
    compose_hash: bytes,
    instance_id: bytes = bytes(20),
    device_id: bytes = hashlib.sha256(b"").digest(),
    mr_system: bytes = bytes(32),
    mr_aggregated: bytes = bytes(32),
    os_image_hash: bytes = b"",
    key_provider_info: bytes = b"",
    init_script_hashes: Sequence[bytes] | None = None,
    as_map: bool = False,
) -> bytes:
    """The ``.9`` app info as upstream writes it (msgpack, a struct as an array of fields)."""
    import msgpack

    fields: dict[str, Any] = {
        "app_id": app_id,
        "compose_hash": compose_hash,
        "instance_id": instance_id,
        "device_id": device_id,
        "mr_system": mr_system,
        "mr_aggregated": mr_aggregated,
        "os_image_hash": os_image_hash,
        "key_provider_info": key_provider_info,
        "init_script_hashes": None if init_script_hashes is None else list(init_script_hashes),
    }
    packed: bytes = msgpack.packb(fields if as_map else list(fields.values()), use_bin_type=True)
    return packed


def attestation_certificate(
    key: Any,
    quote_maker: QuoteMaker,
    *,
    events: Sequence[dict[str, Any]] | None = None,
    wire_version: int = 0,
    stripped: bool = True,
    mr_config_id: bytes = bytes(48),
    config: str = DEFAULT_CONFIG,
    report_data: bytes | None = None,
    extensions: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """A self-signed dstack RA-TLS certificate (DER) whose only evidence is ``.8``.

    The quote binds the certificate key (``report_data`` overrides it, to make
    a lying certificate); ``extensions`` are added as given (e.g. ``.9``, or
    ``.1``/``.2`` to test conflicts).
    """
    events = list(events if events is not None else dstack_event_log())
    data = report_data if report_data is not None else ratls_report_data(spki_of(key))
    quote = quote_maker(data, replay_rtmrs(events), mr_config_id)
    attestation = tdx_attestation(
        quote, events, report_data=data, config=config, stripped=stripped, wire_version=wire_version
    )
    blob = encode_attestation(attestation)
    return self_signed_certificate(
        key, [(oids.DSTACK_ATTESTATION, octet_string(blob)), *extensions]
    )


def mr_config_document(
    *, app_id: str, compose_hash: str, instance_id: str, key_provider_id: str
) -> str:
    """A MrConfigV3 document (hex fields, key provider ``kms``), compact with sorted keys:
    what a synthetic dstack SEV-SNP guest's HOST_DATA commits to."""
    fields = {
        "app_id": app_id,
        "compose_hash": compose_hash,
        "instance_id": instance_id,
        "key_provider": "kms",
        "key_provider_id": key_provider_id,
        "version": 3,
    }
    return json.dumps(fields, separators=(",", ":"), sort_keys=True)


SnpReportMaker = Callable[[bytes, bytes], bytes]
"""``(report_data, host_data) -> report``: a SEV-SNP report from a synthetic guest."""


def snp_attestation_certificate(
    key: Any,
    report_maker: SnpReportMaker,
    *,
    mr_config: str,
    cert_chain: tuple[bytes, ...] = (),
    host_data: bytes | None = None,
    report_data: bytes | None = None,
    stack_report_data: bytes | None = None,
    wire_version: int = 0,
    extensions: Sequence[tuple[str, bytes]] = (),
    tamper: bool = False,
) -> bytes:
    """A self-signed dstack RA-TLS certificate (DER) of a SEV-SNP guest, evidence in ``.8``.

    The report binds the certificate key and its HOST_DATA commits to
    ``mr_config``; ``host_data``, ``report_data`` and ``stack_report_data`` (what
    the stack says it bound) override them, to make lying certificates;
    ``tamper`` flips a bit of the signed MEASUREMENT after the report was made.
    """
    data = report_data if report_data is not None else ratls_report_data(spki_of(key))
    host = host_data if host_data is not None else mr_config_host_data(mr_config)
    report = bytearray(report_maker(data, host))
    if tamper:
        report[0x90] ^= 1
    attestation = DstackAttestation(
        wire_version=wire_version,
        platform=SevSnpPlatform(report=bytes(report), cert_chain=cert_chain, mr_config=mr_config),
        stack=DstackStack(
            kind="dstack",
            report_data=stack_report_data if stack_report_data is not None else data,
            runtime_events=(RuntimeEvent(name="system-ready", payload=b""),),
            config="{}",
        ),
    )
    blob = encode_attestation(attestation)
    return self_signed_certificate(
        key, [(oids.DSTACK_ATTESTATION, octet_string(blob)), *extensions]
    )


def legacy_extensions(
    quote: bytes,
    events: Sequence[dict[str, Any]],
    *,
    app_id: bytes | None = None,
    app_info: bytes | None = None,
) -> list[tuple[str, bytes]]:
    """dstack's certificate extensions from before the attestation one (``.8``): the quote,
    the whole event log as JSON and, when given, the app id and the msgpack app info."""
    extensions = [
        (oids.DSTACK_QUOTE, octet_string(quote)),
        (oids.DSTACK_EVENT_LOG, octet_string(json.dumps(list(events)).encode())),
    ]
    if app_id is not None:
        extensions.append((oids.DSTACK_APP_ID, octet_string(app_id)))
    if app_info is not None:
        extensions.append((oids.DSTACK_APP_INFO, octet_string(app_info)))
    return extensions

"""Test doubles for dstack: event logs that replay, a fake guest agent, a fake configfs-tsm.

For tests only.  Quotes come from a caller-supplied ``quote_maker(report_data,
rtmrs, mr_config_id)`` -- typically :func:`atls_tdx.testing.quotes.make_tdx_quote`
under a :class:`~atls_tdx.testing.pki.DcapTestPki` -- so the fakes never invent
trust: what they produce verifies only against that test PKI.
"""

from __future__ import annotations

import hashlib
import json
import os
import socketserver
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from atls_tdx.dstack_eventlog import RUNTIME_EVENT_TYPE, runtime_event_digest

__all__ = [
    "FakeConfigfsTsm",
    "octet_string",
    "self_signed_certificate",
    "spki_of",
    "FakeGuestAgent",
    "QuoteMaker",
    "boot_event",
    "dstack_event_log",
    "replay_rtmrs",
    "runtime_event",
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
        boot_event(0, b"synthetic ACPI tables"),
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


class _Handler(BaseHTTPRequestHandler):
    server: _AgentServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        agent = self.server.agent
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/GetQuote":
                answer: dict[str, Any] = agent.get_quote(bytes.fromhex(body["report_data"]))
            elif self.path == "/EmitEvent":
                agent.emit_event(body["event"], bytes.fromhex(body["payload"]))
                answer = {}
            else:
                self.send_error(404)
                return
        except (KeyError, ValueError, TypeError) as exc:
            self.send_error(400, str(exc))
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _AgentServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    agent: FakeGuestAgent

    def get_request(self) -> tuple[Any, Any]:
        # BaseHTTPRequestHandler wants a (host, port)-like client address.
        request, _ = super().get_request()
        return request, ("local", 0)


class FakeGuestAgent:
    """A dstack guest agent on a real Unix socket: GetQuote and EmitEvent.

    Keeps an event log; EmitEvent appends a runtime event to RTMR3 and later
    quotes carry the new RTMR3, as on a real CVM.  Use as a context manager.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        quote_maker: QuoteMaker,
        *,
        events: Sequence[dict[str, Any]] | None = None,
        mr_config_id: bytes = bytes(48),
        vm_config: str = '{"spec_version":1}',
    ) -> None:
        self.socket_path = os.fspath(socket_path)
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
            "event_log": json.dumps(events),
            "report_data": report_data.hex(),
            "vm_config": self.vm_config,
        }

    def emit_event(self, name: str, payload: bytes) -> None:
        with self._lock:
            self.requests.append("EmitEvent")
            self.events.append(runtime_event(name, payload))

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


class FakeConfigfsTsm:
    """Emulates configfs-tsm's report entries over a real directory.

    A real configfs creates ``inblob``, ``outblob``, ``generation`` and
    ``provider`` when userspace makes an entry, bumps ``generation`` on every
    ``inblob`` write and produces the quote when ``outblob`` is read.  Pass an
    instance as ``fs=`` to :func:`atls_tdx.issuers.configfs_tsm_quote`.
    ``interfere`` simulates another process writing the same entry.
    """

    def __init__(
        self,
        root: Path,
        quote_maker: Callable[[bytes], bytes],
        *,
        provider: str = "tdx_guest",
        interfere: bool = False,
    ) -> None:
        self.root = root
        self._quote_maker = quote_maker
        self.provider = provider
        self.interfere = interfere
        self.created: list[Path] = []
        self.removed: list[Path] = []

    def mkdir(self, path: Path) -> None:
        if path.parent != self.root or not self.root.is_dir():
            raise FileNotFoundError(str(path.parent))
        path.mkdir(mode=0o700)
        (path / "inblob").write_bytes(b"")
        (path / "outblob").write_bytes(b"")
        (path / "generation").write_text("0\n")
        (path / "provider").write_text(self.provider + "\n")
        self.created.append(path)

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
        self.removed.append(path)

    def read(self, path: Path) -> bytes:
        if path.name == "outblob":
            inblob = (path.parent / "inblob").read_bytes()
            if len(inblob) != 64:
                raise OSError(22, "Invalid argument")
            if self.interfere:
                self._bump(path.parent)
            return self._quote_maker(inblob)
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        if path.name != "inblob":
            raise PermissionError(str(path))
        path.write_bytes(data)
        self._bump(path.parent)

    @staticmethod
    def _bump(entry: Path) -> None:
        generation = int((entry / "generation").read_text())
        (entry / "generation").write_text(f"{generation + 1}\n")


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

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
    )
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
        )
    der: bytes = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return der


def spki_of(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a cryptography private key."""
    from cryptography.hazmat.primitives import serialization

    der: bytes = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der

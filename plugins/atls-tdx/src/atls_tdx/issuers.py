"""Server-side TDX evidence: configfs-tsm and the dstack guest agent.

``configfs_tsm_quote`` is the kernel's generic interface (Linux >= 6.7) for a
TD to get a quote for 64 bytes of report data: make a report entry, write
``inblob``, read ``outblob``, check ``generation`` (another writer on the same
entry would change it), remove the entry.  The filesystem operations are an
argument so tests can emulate configfs, which creates the entry's files itself.

``DstackGuestAgent`` speaks HTTP over the dstack guest agent's Unix socket
(``/var/run/dstack.sock``) through atls' bounded fetch (one deadline, a size
cap): ``GetQuote`` returns the quote, the event log (every event stripped since
dstack 0.5.6: runtime digests empty) and the VM configuration; ``EmitEvent``
extends RTMR3 with a runtime event (dstack 0.5.x only: dstack master, 0.6, removed
it); ``Info`` returns the TCB info (measurements, event log, the app-compose text)
that secureai clients read.

``DstackAgentIssuer`` answers ``/tdx_quote`` challenges.  Its own clients
(``tdx.dstack-challenge``) send a nonce and the server computes the report data
(``challenge-v1``, domain-separated).  secureai clients send the 64 bytes to
quote themselves (``{"report_data_hex": ...}``); quoting bytes a client chose
makes the TD a quote oracle, so that form is answered only with
``secureai_clients = true`` (see the plugin README).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import attrs

from atls_core.errors import (
    ConfigurationError,
    IssuerError,
    MalformedEvidence,
    ServiceUnavailable,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.fetch import fetch
from atls_core.interfaces import Settings
from atls_core.tsm import (
    DEFAULT_TSM_ROOT,
    REPORT_DATA_SIZE,
    OsTsmFilesystem,
    TsmFilesystem,
    check_report_data,
    tdx_quote,
)
from atls_tdx.specs import CONFIGFS_TSM_ISSUER_SPEC, DSTACK_AGENT_ISSUER_SPEC

__all__ = [
    "CONFIGFS_TSM_ISSUER_SPEC",
    "DEFAULT_DSTACK_SOCKET",
    "DEFAULT_TSM_ROOT",
    "DSTACK_AGENT_ISSUER_SPEC",
    "SECUREAI_REPORT_DATA",
    "ConfigfsTsmIssuer",
    "DstackAgentIssuer",
    "DstackGuestAgent",
    "DstackQuote",
    "IssuerError",
    "OsTsmFilesystem",
    "TsmFilesystem",
    "configfs_tsm_quote",
    "with_runtime_digests",
]

DEFAULT_DSTACK_SOCKET = "/var/run/dstack.sock"


# --- configfs-tsm ------------------------------------------------------------


configfs_tsm_quote = tdx_quote
"""The core's :func:`atls_core.tsm.tdx_quote` (this name is kept for callers of 0.2)."""


# --- the dstack guest agent ----------------------------------------------------


@attrs.frozen(kw_only=True)
class DstackQuote:
    quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    event_log: str = attrs.field(repr=lambda s: f"<{len(s)} chars>")
    """dstack's event log, a JSON text."""
    vm_config: str = ""
    report_data: bytes = b""

    def to_response(self) -> dict[str, Any]:
        """The secureai ``/tdx_quote`` answer's ``quote`` member."""
        return {
            "quote": self.quote.hex(),
            "event_log": self.event_log,
            "report_data": self.report_data.hex(),
            "vm_config": self.vm_config,
        }


class DstackGuestAgent:
    """Client of the dstack guest agent (HTTP over a Unix socket)."""

    max_response_bytes = 8 * 1024 * 1024

    def __init__(
        self, socket_path: str | os.PathLike[str] = DEFAULT_DSTACK_SOCKET, *, timeout: float = 30.0
    ) -> None:
        self.socket_path = os.fspath(socket_path)
        self.timeout = timeout

    def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = fetch(
                f"http://dstack/{method}",
                unix_socket=self.socket_path,
                method="POST",
                headers={"Content-Type": "application/json"},
                body=json.dumps(body).encode(),
                timeout=self.timeout,
                max_bytes=self.max_response_bytes,
                name="dstack guest agent",
                check="dstack_agent.unavailable",
            )
        except ServiceUnavailable as exc:
            raise IssuerError(
                f"dstack guest agent at {self.socket_path} failed ({exc.phase}): {exc.reason}",
                check="dstack_agent.response"
                if exc.phase in ("too large", "protocol")
                else "dstack_agent.unavailable",
            ) from None
        raw = response.body
        if response.status != 200:
            raise IssuerError(
                f"dstack guest agent {method} failed",
                check="dstack_agent.status",
                expected=200,
                actual=f"{response.status} {raw[:200].decode(errors='replace')}",
            )
        if not raw.strip():
            return {}
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError):
            raise IssuerError(
                f"dstack guest agent {method} answer is not JSON", check="dstack_agent.response"
            ) from None
        if not isinstance(answer, dict):
            raise IssuerError(
                f"dstack guest agent {method} answer is not an object",
                check="dstack_agent.response",
            )
        return answer

    def get_quote(self, report_data: bytes) -> DstackQuote:
        check_report_data(report_data)
        answer = self._call("GetQuote", {"report_data": report_data.hex()})
        try:
            quote = bytes.fromhex(answer["quote"])
            event_log = answer["event_log"]
            vm_config = answer.get("vm_config", "")
            if not isinstance(event_log, str) or not isinstance(vm_config, str):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise MalformedEvidence(
                "dstack guest agent GetQuote answer lacks quote/event_log",
                check="dstack_agent.response",
            ) from None
        return DstackQuote(
            quote=quote, event_log=event_log, vm_config=vm_config, report_data=report_data
        )

    def emit_event(self, event: str, payload: bytes) -> None:
        """Extend RTMR3 with a runtime event.

        dstack 0.5.x agents have EmitEvent; dstack master (0.6) removed it (upstream
        ``guest-agent: remove EmitEvent API``) and has no replacement that records an
        event in dstack's log.  An agent that does not know the method (HTTP 404 or
        400) is named as such, so a challenge-mode server fails with the way out.
        """
        try:
            self._call("EmitEvent", {"event": event, "payload": payload.hex()})
        except IssuerError as exc:
            if exc.check != "dstack_agent.status" or not str(exc.actual).startswith(("404", "400")):
                raise
            raise IssuerError(
                f"the dstack guest agent at {self.socket_path} has no EmitEvent (dstack "
                "master/0.6 removed it), so it cannot measure the 'New TLS Certificate' event "
                "the challenge mode (tdx.dstack-agent, tdx.dstack-challenge) binds the "
                "certificate with: that mode needs a dstack <= 0.5.x guest agent.  On newer "
                "agents serve dstack's RA-TLS certificate (GetTlsKey, usage_ra_tls) and "
                "appraise it with tdx.dstack",
                check="dstack_agent.emit_event",
                actual=exc.actual,
            ) from None

    def tcb_info(self) -> dict[str, Any] | None:
        """``Info``'s ``tcb_info`` (a JSON text upstream), decoded; ``None`` when the
        agent hides it (``public_tcbinfo = false`` seen from outside)."""
        text = self._call("Info", {}).get("tcb_info", "")
        if not isinstance(text, str):
            raise IssuerError(
                "dstack guest agent Info: tcb_info is not a string", check="dstack_agent.response"
            )
        if not text.strip():
            return None
        try:
            info = json.loads(text)
        except (ValueError, RecursionError):
            info = None
        if not isinstance(info, dict):
            raise IssuerError(
                "dstack guest agent Info: tcb_info is not a JSON object",
                check="dstack_agent.response",
            )
        return info


# --- issuers (their specs are facts in atls_tdx.specs) ---------------------------

SECUREAI_REPORT_DATA = "report_data_hex"
"""secureai's challenge field: the 64 bytes the client wants quoted, hex."""


def with_runtime_digests(event_log: str) -> str:
    """``event_log`` (GetQuote's JSON text) with each empty runtime-event digest filled in.

    dstack >= 0.5.6 guest agents serve runtime events without their digest, and
    secureai 0.3 replays the digests it is given (dstack-sdk 0.5.4's
    ``replay_rtmrs``, an empty one as zeros), so its RTMR3 never matched.  Each
    digest is recomputed from the event's name and payload (its V1 or V2 rule),
    which is sound: the client's replay must still reproduce the quoted RTMR3.
    Every other member of every event is kept as the agent wrote it.
    """
    from atls_tdx.dstack_eventlog import parse_event_log

    events = parse_event_log(event_log)  # refuses what is not a dstack event log
    entries = json.loads(event_log)
    for entry, event in zip(entries, events, strict=True):
        if event.is_runtime and not event.digest:
            entry["digest"] = event.measured_digest.hex()
    return json.dumps(entries)


def _str_setting(settings: Settings, name: str, default: str) -> str:
    value = settings.get(name, default)
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"settings.{name} must be a string", check="config.settings")
    return os.fspath(value)


class ConfigfsTsmIssuer:
    """Certificate-borne TDX quotes for ``atls-v1`` report data."""

    spec = CONFIGFS_TSM_ISSUER_SPEC

    def __init__(self, settings: Settings, *, fs: TsmFilesystem | None = None) -> None:
        self._root = Path(_str_setting(settings, "root", str(DEFAULT_TSM_ROOT)))
        provider = settings.get("provider", "tdx_guest")
        if provider is not None and not isinstance(provider, str):
            raise ConfigurationError("settings.provider must be a string", check="config.settings")
        self._provider = provider
        self._fs = fs

    def issue(self, report_data: bytes) -> Evidence:
        quote = configfs_tsm_quote(
            report_data, root=self._root, fs=self._fs, provider=self._provider
        )
        return Evidence(
            media_type=self.spec.media_type,
            data=quote,
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=self.spec.oid),
        )


class DstackAgentIssuer:
    """Answers ``/tdx_quote`` challenges with the guest agent's quote and event log.

    The certificate binding is an RTMR3 event: before the first quote for a
    certificate, its SHA-256 is emitted as a 'New TLS Certificate' event (once
    per certificate, so RTMR3 does not grow per request).  That needs the agent's
    EmitEvent, which only dstack 0.5.x has: on dstack master (0.6) the first
    challenge fails with ``dstack_agent.emit_event``, and the RA-TLS certificate
    (``tdx.dstack``) is the way to attest such a TD.

    ``secureai_clients = true`` also serves the secureai client: its request
    carries the report data itself, quoted as given, and its answer needs the
    agent's ``tcb_info``.  Off by default: a TD that quotes any 64 bytes a
    client names lets anyone obtain a genuine quote over report data that binds
    *their own* key under another scheme (dstack's RA-TLS ``ratls-cert``,
    ``atls-v1``) and pose as this application to a client that appraises it that
    way.  atls clients never need it: they send a nonce, and the server computes
    domain-separated report data from it.
    """

    spec = DSTACK_AGENT_ISSUER_SPEC

    def __init__(self, settings: Settings, *, agent: DstackGuestAgent | None = None) -> None:
        timeout = settings.get("timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(
                "settings.timeout must be a positive number", check="config.settings"
            )
        self._agent = agent or DstackGuestAgent(
            _str_setting(settings, "socket", DEFAULT_DSTACK_SOCKET), timeout=float(timeout)
        )
        secureai = settings.get("secureai_clients", False)
        if not isinstance(secureai, bool):
            raise ConfigurationError(
                "settings.secureai_clients must be true or false", check="config.settings"
            )
        self._secureai = secureai
        self._emitted: set[bytes] = set()
        self._lock = threading.Lock()

    def announce_certificate(self, certificate_sha256: bytes) -> None:
        from atls_tdx.dstack_eventlog import CERTIFICATE_EVENT

        if len(certificate_sha256) != 32:
            raise ConfigurationError(
                "certificate digest must be SHA-256", check="issuer.certificate"
            )
        with self._lock:
            if certificate_sha256 in self._emitted:
                return
            self._agent.emit_event(CERTIFICATE_EVENT, certificate_sha256.hex().encode())
            self._emitted.add(certificate_sha256)

    def report_data_from_request(self, body: bytes) -> bytes | None:
        """secureai's request (``{"report_data_hex": <64 bytes>}``, no nonce): the bytes to
        quote, if this issuer serves secureai clients.  ``None`` for any other body (the
        core then reads a nonce); refused by name when secureai clients are not served."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if (
            not isinstance(document, dict)
            or "nonce" in document
            or SECUREAI_REPORT_DATA not in document
        ):
            return None
        if not self._secureai:
            raise MalformedEvidence(
                "this server quotes only report data it computes from a nonce; the secureai "
                "form (report_data_hex without a nonce) needs settings.secureai_clients = true "
                "on the tdx.dstack-agent issuer",
                check="challenge.request",
            )
        value = document[SECUREAI_REPORT_DATA]
        try:
            report_data = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            report_data = b""
        if len(report_data) != REPORT_DATA_SIZE:
            raise MalformedEvidence(
                f"{SECUREAI_REPORT_DATA} must be {REPORT_DATA_SIZE} bytes of hex",
                check="challenge.request",
                expected=REPORT_DATA_SIZE,
                actual=len(report_data),
            )
        return report_data

    def issue(self, report_data: bytes, *, certificate_sha256: bytes | None = None) -> Evidence:
        """The ``/tdx_quote`` answer: ``{"success", "quote": {quote, event_log,
        report_data, vm_config}}``, plus ``tcb_info`` (the agent's Info) for secureai,
        whose event log then carries every runtime digest (:func:`with_runtime_digests`)."""
        if certificate_sha256 is not None:
            self.announce_certificate(certificate_sha256)
        answer = self._agent.get_quote(report_data)
        if self._secureai:
            answer = attrs.evolve(answer, event_log=with_runtime_digests(answer.event_log))
        document: dict[str, Any] = {"success": True, "quote": answer.to_response()}
        if self._secureai:
            tcb_info = self._agent.tcb_info()
            if tcb_info is not None:
                document["tcb_info"] = tcb_info
        body = json.dumps(document).encode()
        return Evidence(
            media_type=self.spec.media_type,
            data=body,
            source=EvidenceSource(transport=Transport.CHALLENGE, location="/tdx_quote"),
        )

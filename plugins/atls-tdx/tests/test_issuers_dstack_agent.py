"""The dstack guest agent client and issuer against a fake agent on a real Unix socket."""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.errors import ATLSError, ConfigurationError
from atls_core.interfaces import ChallengeResponse
from atls_core.policy import Policy
from atls_tdx.dstack import DstackValidator
from atls_tdx.dstack_eventlog import CERTIFICATE_EVENT, RUNTIME_EVENT_TYPE, runtime_event_digest
from atls_tdx.issuers import DstackAgentIssuer, DstackGuestAgent, IssuerError
from atls_tdx.testing.dstack import (
    FakeGuestAgent,
    agent_event_log,
    dstack_event_log,
    replay_rtmrs,
    self_signed_certificate,
    spki_of,
)


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="atls-") as directory:
        yield Path(directory) / "dstack.sock"


@pytest.fixture
def agent(socket_path: Path, synthetic: Any) -> Iterator[FakeGuestAgent]:
    def make(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        quote: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return quote

    with FakeGuestAgent(socket_path, make) as fake:
        yield fake


def test_get_quote(agent: FakeGuestAgent) -> None:
    answer = DstackGuestAgent(agent.socket_path).get_quote(b"\x07" * 64)
    assert answer.report_data == b"\x07" * 64
    served = json.loads(answer.event_log)
    assert served == agent_event_log(agent.events)
    # dstack >= 0.5.6: runtime digests and boot payloads are left out.
    assert {e["digest"] for e in served if e["imr"] == 3} == {""}
    assert {e["event_payload"] for e in served if e["imr"] in (1, 2)} == {""}
    assert answer.vm_config == agent.vm_config
    assert len(answer.quote) > 600


def test_issuer_announces_the_certificate_once_and_validates(
    agent: FakeGuestAgent, synthetic: Any
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(key)
    digest = hashlib.sha256(certificate).digest()
    issuer = DstackAgentIssuer({"socket": agent.socket_path})
    validator = DstackValidator.challenge_validator(synthetic.settings())
    deployed = next(e for e in agent.events if e["event"] == "compose-hash")["event_payload"]
    policy = Policy(options={"allowed_compose_hashes": [deployed]})
    for _ in range(2):
        nonce = b.new_nonce()
        request = validator.challenge(nonce)
        report_data = bytes.fromhex(json.loads(request.body)["report_data_hex"])
        evidence = issuer.issue(report_data, certificate_sha256=digest)
        parsed = validator.evidence_from_challenge(
            ChallengeResponse(status=200, headers={}, body=evidence.data)
        )
        result = validator.appraise(
            parsed,
            binding=b.BindingContext(
                spki_der=spki_of(key), nonce=nonce, certificate_der=certificate
            ),
            clock=synthetic.clock,
            policy=policy,
        )
        assert result.accepted, result.to_json()
        assert result.binding.freshness is b.Freshness.NONCE
    assert agent.requests.count("EmitEvent") == 1
    assert [e["event"] for e in agent.events].count(CERTIFICATE_EVENT) == 1


def test_a_new_certificate_is_announced_again(agent: FakeGuestAgent) -> None:
    issuer = DstackAgentIssuer({"socket": agent.socket_path})
    issuer.announce_certificate(b"\x01" * 32)
    issuer.announce_certificate(b"\x02" * 32)
    issuer.announce_certificate(b"\x01" * 32)
    assert agent.requests.count("EmitEvent") == 2
    with pytest.raises(ConfigurationError):
        issuer.announce_certificate(b"\x01" * 20)


def test_unreachable_agent(socket_path: Path) -> None:
    with pytest.raises(IssuerError) as info:
        DstackGuestAgent(socket_path, timeout=2).get_quote(bytes(64))
    assert info.value.check == "dstack_agent.unavailable"


class _Broken(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _BrokenServer(socketserver.UnixStreamServer):
    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)


@pytest.mark.parametrize(
    ("status", "body", "check"),
    [
        (500, b"boom", "dstack_agent.status"),
        (200, b"not json", "dstack_agent.response"),
        (200, b"[]", "dstack_agent.response"),
        (200, b'{"quote": "zz", "event_log": "[]"}', "dstack_agent.response"),
        (200, b'{"quote": "00"}', "dstack_agent.response"),
    ],
)
def test_bad_agent_answers(socket_path: Path, status: int, body: bytes, check: str) -> None:
    server = _BrokenServer(str(socket_path), _Broken)
    server.answer = (status, body)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ATLSError) as info:
            DstackGuestAgent(socket_path, timeout=5).get_quote(bytes(64))
        assert getattr(info.value, "check", None) == check
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_issuer_settings_are_checked() -> None:
    for settings in ({"timeout": 0}, {"timeout": "x"}, {"timeout": True}, {"socket": 3}):
        with pytest.raises(ConfigurationError):
            DstackAgentIssuer(settings)
    with pytest.raises(ConfigurationError):
        DstackGuestAgent("/nonexistent").get_quote(bytes(10))


def _v2_event(name: str, payload: bytes) -> dict[str, Any]:
    return {
        "imr": 3,
        "event_type": RUNTIME_EVENT_TYPE,
        "digest": runtime_event_digest(RUNTIME_EVENT_TYPE, name, payload, version=2).hex(),
        "event": name,
        "event_payload": payload.hex(),
        "version": 2,
    }


class _AgentHidingTcbInfo(FakeGuestAgent):
    def info(self) -> dict[str, Any]:
        return {"tcb_info": ""}  # public_tcbinfo = false


@pytest.mark.parametrize("secureai", [True, False])
def test_secureai_answers_carry_every_runtime_digest(
    socket_path: Path, synthetic: Any, secureai: bool
) -> None:
    # secureai 0.3 replays the digests it is given; dstack >= 0.5.6 agents serve them empty.
    def make(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        quote: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return quote

    events = [*dstack_event_log(), _v2_event("app-v2-event", b"\x01\x02")]
    with _AgentHidingTcbInfo(socket_path, make, events=events) as agent:
        issuer = DstackAgentIssuer({"socket": agent.socket_path, "secureai_clients": secureai})
        answer = json.loads(issuer.issue(bytes(64)).data)
    served = json.loads(answer["quote"]["event_log"])
    if not secureai:  # atls clients recompute the digests: the agent's log is passed on
        assert served == agent_event_log(events)
        return
    # What the client replays is the quoted RTMR3; the rest is the agent's answer unchanged.
    assert replay_rtmrs(served)[3] == replay_rtmrs(events)[3]
    assert [{**e, "digest": ""} if e["imr"] == 3 else e for e in served] == agent_event_log(events)
    assert served[-1]["preimage"] == agent_event_log(events)[-1]["preimage"]


def test_an_agent_without_emit_event_is_named(socket_path: Path, synthetic: Any) -> None:
    # dstack master (0.6) removed EmitEvent: challenge mode cannot bind its certificate there.
    def make(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        quote: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return quote

    with FakeGuestAgent(socket_path, make, emit_event=False) as agent:
        issuer = DstackAgentIssuer({"socket": agent.socket_path})
        with pytest.raises(IssuerError) as info:
            issuer.issue(bytes(64), certificate_sha256=b"\x01" * 32)
        assert agent.requests == []  # no quote without the certificate's event
        before = len(agent.events)
        issuer.issue(bytes(64))  # GetQuote itself still works
    assert info.value.check == "dstack_agent.emit_event"
    reason = info.value.reason
    assert "has no EmitEvent" in reason
    assert "dstack <= 0.5.x" in reason
    assert "RA-TLS certificate" in reason
    assert "appraise it with tdx.dstack" in reason
    assert len(agent.events) == before

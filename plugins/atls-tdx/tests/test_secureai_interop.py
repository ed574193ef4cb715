"""secureai's wire protocol both ways, with the real ``secureai`` client from PyPI.

1. The real secureai client (``secureai.httpx.Client`` + ``DstackTDXVerifier``)
   against an atls server (``ChallengeEndpoint`` + ``tdx.dstack-agent`` with
   ``secureai_clients = true``) whose guest agent quotes through the synthetic
   DCAP PKI and serves its event log as dstack >= 0.5.6 does (runtime digests
   empty: the issuer fills them in, or secureai's replay never matches).  secureai checks the quote with dcap-qvl against Intel's root; the
   one seam here gives its ``dcap_qvl`` the synthetic root and a fixed time
   (``verify_with_root_ca``), nothing else of secureai is replaced.  Its TLS
   trust (it also requires a PKI-valid certificate) comes from SSL_CERT_FILE.
2. atls's ``tdx.dstack-challenge`` against a minimal server shaped like
   secureai's README: ``POST /tdx_quote`` reads only ``report_data_hex`` and
   answers ``{"success", "quote": {quote, event_log, report_data, vm_config},
   "tcb_info": {...}}``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socketserver
import tempfile
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dcap_qvl
import pytest
import secureai.verifiers.tdx  # type: ignore[import-untyped,unused-ignore]
from dstack_sdk.get_compose_hash import get_compose_hash
from secureai.httpx import Client as SecureaiClient  # type: ignore[import-untyped,unused-ignore]
from secureai.verifiers import (  # type: ignore[import-untyped,unused-ignore]
    DstackTDXVerifier,
    RATLSVerificationError,
)

from atls_core.binding import Freshness
from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificate, ChallengeEndpoint, mint_certificate
from atls_core.testing.loopback import HTTPSServer, attested_get
from atls_core.testing.plugins import insecure_config
from atls_core.tls import ATLSContext
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote
from atls_tdx.dstack import DstackValidator, compose_hash, sdk_app_compose
from atls_tdx.dstack_eventlog import CERTIFICATE_EVENT
from atls_tdx.issuers import DstackAgentIssuer
from atls_tdx.testing.dstack import (
    FakeGuestAgent,
    agent_event_log,
    dstack_event_log,
    replay_rtmrs,
    runtime_event,
)

APP_COMPOSE: dict[str, Any] = {
    "manifest_version": 2,
    "name": "secureai-interop",
    "runner": "docker-compose",
    "docker_compose_file": "services:\n  app:\n    image: demo@sha256:" + "ab" * 32 + "\n",
    "allowed_envs": ["API_KEY"],
    "features": ["kms", "tproxy-net"],
    "kms_enabled": True,
    "gateway_enabled": True,
    "public_tcbinfo": True,
}
DEPLOYED = sdk_app_compose(APP_COMPOSE)
"""What an SDK-deployed TD measures: the SDK's serialisation of the mapping."""
OS_IMAGE = hashlib.sha256(b"atls synthetic dstack OS").digest()


def _tcb_info(events: list[dict[str, Any]], app_compose: str) -> dict[str, Any]:
    """What the guest agent's Info reports (upstream's field names)."""
    rtmrs = replay_rtmrs(events)
    return {
        "mrtd": DEFAULT_MRTD.hex(),
        **{f"rtmr{i}": rtmrs[i].hex() for i in range(4)},
        "mr_aggregated": "00" * 32,
        "os_image_hash": OS_IMAGE.hex(),
        "compose_hash": compose_hash(app_compose).hex(),
        "device_id": "00" * 32,
        "event_log": events,
        "app_compose": app_compose,
    }


# --- a guest agent with Info ------------------------------------------------------------


class _AgentWithInfo(FakeGuestAgent):
    """GetQuote (dstack >= 0.5.6's shape) and EmitEvent by a FakeGuestAgent's own logic,
    plus Info."""

    def info(self) -> dict[str, Any]:
        return {"tcb_info": json.dumps(_tcb_info(self.events, DEPLOYED))}


@pytest.fixture
def agent(synthetic: Any) -> Iterator[FakeGuestAgent]:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        made: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return made

    with tempfile.TemporaryDirectory(prefix="atls-") as directory:
        path = Path(directory) / "dstack.sock"
        with _AgentWithInfo(path, quote, events=dstack_event_log(app_compose=DEPLOYED)) as fake:
            yield fake


# --- 1. the real secureai client against an atls server ------------------------------------


class SecureaiTrust:
    """secureai's dcap-qvl under the synthetic root and a fixed time; one trusted certificate."""

    def __init__(self, synthetic: Any, monkeypatch: pytest.MonkeyPatch, bundle: Path) -> None:
        self.quotes_verified = 0
        self._monkeypatch = monkeypatch
        self._bundle = bundle
        root = synthetic.pki.root_ca_der
        at = int(synthetic.clock.now().timestamp())

        def verify(quote: bytes, collateral: Any, _now: int) -> Any:
            self.quotes_verified += 1
            return dcap_qvl.verify_with_root_ca(quote, collateral, root, at)

        shim = types.SimpleNamespace(verify=verify, QuoteCollateralV3=dcap_qvl.QuoteCollateralV3)
        monkeypatch.setattr(secureai.verifiers.tdx, "dcap_qvl", shim)

    def trust(self, certificate: AttestedCertificate) -> None:
        self._bundle.write_bytes(certificate.certificate_pem)
        self._monkeypatch.setenv("SSL_CERT_FILE", str(self._bundle))


@pytest.fixture
def secureai_trust(
    synthetic: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> SecureaiTrust:
    return SecureaiTrust(synthetic, monkeypatch, tmp_path / "trusted.pem")


def secureai_verifier(synthetic: Any, events: list[dict[str, Any]], **kw: Any) -> Any:
    rtmrs = replay_rtmrs(events)
    return DstackTDXVerifier(
        app_compose=kw.pop("app_compose", APP_COMPOSE),
        collateral=json.loads(synthetic.collateral_file().read_text()),
        expected_bootchain={
            "mrtd": DEFAULT_MRTD.hex(),
            **{f"rtmr{i}": rtmrs[i].hex() for i in range(3)},
        },
        os_image_hash=OS_IMAGE.hex(),
        **kw,
    )


def atls_server(agent: FakeGuestAgent, **settings: Any) -> tuple[HTTPSServer, ChallengeEndpoint]:
    issuer = DstackAgentIssuer({"socket": agent.socket_path, **settings})
    certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
    endpoint = ChallengeEndpoint(
        issuer, certificate_der=certificate.certificate_der, path="/tdx_quote"
    )
    server = HTTPSServer(certificate.server_context(), challenge=endpoint)
    server.certificate = certificate  # type: ignore[attr-defined]
    return server, endpoint


def test_secureai_client_is_served_by_an_atls_server(
    synthetic: Any, agent: FakeGuestAgent, secureai_trust: SecureaiTrust
) -> None:
    server, endpoint = atls_server(agent, secureai_clients=True)
    with server:
        secureai_trust.trust(server.certificate)  # type: ignore[attr-defined]
        events_before_certificate = list(agent.events)
        verifier = secureai_verifier(synthetic, events_before_certificate)
        with SecureaiClient(ratls_verifier_per_hostname={"127.0.0.1": verifier}) as client:
            response = client.get(server.url(path="/after-attestation"))
        assert response.status_code == 200
        assert server.requests == ["/after-attestation"]
        assert secureai_trust.quotes_verified == 1
    assert endpoint.answered == 1
    announced = [e for e in agent.events if e["event"] == CERTIFICATE_EVENT]
    assert [bytes.fromhex(e["event_payload"]).decode() for e in announced] == [
        server.certificate.sha256.hex()  # type: ignore[attr-defined]
    ]


def test_secureai_client_refuses_another_application(
    synthetic: Any, agent: FakeGuestAgent, secureai_trust: SecureaiTrust
) -> None:
    other = {**APP_COMPOSE, "docker_compose_file": "services:\n  app:\n    image: other\n"}
    server, _endpoint = atls_server(agent, secureai_clients=True)
    with server:
        secureai_trust.trust(server.certificate)  # type: ignore[attr-defined]
        verifier = secureai_verifier(synthetic, list(agent.events), app_compose=other)
        with (
            SecureaiClient(ratls_verifier_per_hostname={"127.0.0.1": verifier}) as client,
            pytest.raises(RATLSVerificationError),
        ):
            client.get(server.url(path="/secret"))
        assert server.requests == []


def test_secureai_request_is_refused_unless_the_server_opts_in(
    synthetic: Any, agent: FakeGuestAgent, secureai_trust: SecureaiTrust
) -> None:
    server, endpoint = atls_server(agent)
    status, _headers, body = endpoint.answer(json.dumps({"report_data_hex": "11" * 64}).encode())
    assert status == 400
    assert b"secureai_clients" in body
    with server:
        secureai_trust.trust(server.certificate)  # type: ignore[attr-defined]
        verifier = secureai_verifier(synthetic, list(agent.events))
        with (
            SecureaiClient(ratls_verifier_per_hostname={"127.0.0.1": verifier}) as client,
            pytest.raises(RATLSVerificationError),
        ):
            client.get(server.url(path="/secret"))
        assert server.requests == []
    assert endpoint.answered == 0
    assert agent.requests.count("GetQuote") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"report_data_hex": "11" * 63},
        {"report_data_hex": "zz" * 64},
        {"report_data_hex": 17},
    ],
)
def test_secureai_report_data_must_be_64_bytes_of_hex(
    agent: FakeGuestAgent, body: dict[str, Any]
) -> None:
    _server, endpoint = atls_server(agent, secureai_clients=True)
    status, _headers, answer = endpoint.answer(json.dumps(body).encode())
    assert status == 400
    assert b"report_data_hex" in answer
    assert agent.requests.count("GetQuote") == 0


def test_secureai_report_data_is_quoted_as_given_and_answered_in_its_shape(
    agent: FakeGuestAgent,
) -> None:
    _server, endpoint = atls_server(agent, secureai_clients=True)
    wanted = bytes(range(64))
    status, _headers, body = endpoint.answer(json.dumps({"report_data_hex": wanted.hex()}).encode())
    assert status == 200
    answer = json.loads(body)
    assert answer["success"] is True
    assert set(answer["quote"]) == {"quote", "event_log", "report_data", "vm_config"}
    assert answer["quote"]["report_data"] == wanted.hex()
    quote = bytes.fromhex(answer["quote"]["quote"])
    assert quote[568 : 568 + 64] == wanted  # REPORTDATA of a v4 TDX quote
    assert isinstance(answer["quote"]["event_log"], str)
    assert answer["tcb_info"]["app_compose"] == DEPLOYED
    assert answer["tcb_info"]["rtmr3"] == quote[520:568].hex()


def test_an_atls_client_keeps_its_nonce_form_on_a_secureai_enabled_server(
    synthetic: Any, agent: FakeGuestAgent
) -> None:
    server, endpoint = atls_server(agent, secureai_clients=True)
    selected = select_validator(
        "tdx.dstack-challenge",
        settings=synthetic.settings(),
        policy=Policy(options={"app_compose": DEPLOYED}),
        allow_insecure=True,
    )
    context = ATLSContext.for_validator(selected, clock=synthetic.clock)
    with server:
        result, _ = attested_get(context, server.port)
    assert result.accepted, result.to_json()
    assert result.binding.freshness is Freshness.NONCE
    assert result.claims["app_compose_sha256"] == compose_hash(DEPLOYED).hex()
    assert endpoint.answered == 1


# --- 2. atls's tdx.dstack-challenge against a secureai-shaped server ---------------------------


class _SecureaiStyleHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SecureaiStyleServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path != "/tdx_quote":
            self._send(404, b"{}")
            return
        # secureai's README: the endpoint reads report_data_hex (64 bytes) and nothing else.
        report_data = self.server.fixed_report_data or bytes.fromhex(request["report_data_hex"])
        events = self.server.events
        quote = make_tdx_quote(self.server.world.pki, report_data, rtmr=replay_rtmrs(events))
        answer = {
            "success": True,
            "quote": {
                "quote": quote.hex(),
                "event_log": json.dumps(agent_event_log(events)),  # what its agent served
                "report_data": report_data.hex(),
                "vm_config": '{"os_image_hash": "' + OS_IMAGE.hex() + '"}',
            },
            "tcb_info": _tcb_info(events, DEPLOYED),
        }
        self._send(200, json.dumps(answer).encode())

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self._send(200, b'{"hello": true}')


class SecureaiStyleServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A TDX server as secureai expects one: TLS, a measured certificate, POST /tdx_quote."""

    daemon_threads = True

    def __init__(self, world: Any, *, fixed_report_data: bytes | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _SecureaiStyleHandler)
        self.world = world
        self.fixed_report_data = fixed_report_data
        self.paths: list[str] = []
        issuer = DstackAgentIssuer({"socket": "/nonexistent/unused.sock"})
        self.certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
        # "Append new event to the event log with cert hash when doing cert renewal".
        self.events = [
            *dstack_event_log(app_compose=DEPLOYED),
            runtime_event(CERTIFICATE_EVENT, self.certificate.sha256.hex().encode()),
        ]
        self.socket = self.certificate.server_context().wrap_socket(self.socket, server_side=True)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> SecureaiStyleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def _challenge_context(synthetic: Any, policy: Policy) -> ATLSContext:
    selected = select_validator(
        "tdx.dstack-challenge", settings=synthetic.settings(), policy=policy, allow_insecure=True
    )
    return ATLSContext.for_validator(selected, clock=synthetic.clock)


def test_atls_client_appraises_a_secureai_shaped_server(synthetic: Any) -> None:
    with SecureaiStyleServer(synthetic) as server:
        context = _challenge_context(synthetic, Policy(options={"app_compose": DEPLOYED}))
        result, _ = attested_get(context, server.port)
        assert result.accepted, result.to_json()
        assert result.binding.scheme == "challenge-v1"
        assert result.binding.freshness is Freshness.NONCE
        assert result.claims["certificate_event_sha256"] == server.certificate.sha256.hex()
        assert result.measurements["compose_hash"] == compose_hash(DEPLOYED).hex()
        assert server.paths == ["/hello"]


def test_a_secureai_shaped_server_that_replays_a_quote_is_refused(synthetic: Any) -> None:
    with SecureaiStyleServer(synthetic, fixed_report_data=b"\x42" * 64) as server:
        context = _challenge_context(synthetic, Policy(options={"app_compose": DEPLOYED}))
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(context, server.port)
        assert info.value.check == "binding.report_data"
        assert server.paths == []


def test_atls_client_pins_the_mapping_a_secureai_user_configured(synthetic: Any) -> None:
    """The secureai user's ``app_compose`` dict, through ``sdk_app_compose``: same hash."""
    with SecureaiStyleServer(synthetic) as server:
        policy = Policy(options={"app_compose": sdk_app_compose(APP_COMPOSE)})
        result, _ = attested_get(_challenge_context(synthetic, policy), server.port)
        assert result.accepted, result.to_json()


# --- app_compose: a mapping has no canonical bytes --------------------------------------------


@pytest.mark.parametrize(
    "mapping",
    [
        APP_COMPOSE,
        {"runner": "docker-compose", "name": "ünïcode ✓", "docker_compose_file": 'a: "b"\n'},
        {"runner": "bash", "z": {"b": 1, "a": [{"y": None, "x": 2.5}]}, "key_provider": None},
        {"runner": "docker-compose", "docker_config": {"registry": "r", "username": None}},
        {"runner": 3, "_comment": "dropped", "n": float("nan"), "m": [float("inf")]},
    ],
)
def test_sdk_app_compose_hashes_as_the_dstack_sdk(mapping: dict[str, Any]) -> None:
    assert compose_hash(sdk_app_compose(mapping)).hex() == get_compose_hash(dict(mapping))


def _config(synthetic: Any, policy: dict[str, Any]) -> ATLSConfig:
    return insecure_config("tee.example", "tdx.dstack-challenge", synthetic.settings(), policy)


def test_a_mapping_app_compose_is_refused_when_the_configuration_is_loaded(
    synthetic: Any,
) -> None:
    config = _config(synthetic, {"app_compose": APP_COMPOSE})
    with pytest.raises(ConfigurationError) as info:
        ATLSContext(config)
    assert info.value.check == "config.policy"
    assert "app-compose.json text" in info.value.reason
    assert "sdk_app_compose" in info.value.reason
    assert compose_hash(DEPLOYED).hex() in info.value.reason
    assert info.value.expected == DEPLOYED
    ATLSContext(_config(synthetic, {"app_compose": DEPLOYED}))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("app_compose", 7),
        ("allowed_compose_hashes", ["abcd"]),
        ("allowed_app_ids", "00" * 20),
        ("allowed_os_image_hashes", []),
    ],
)
def test_dstack_option_values_are_checked_at_load(synthetic: Any, option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSContext(_config(synthetic, {option: value}))
    assert info.value.check == "config.policy"


def test_a_mapping_that_bypasses_selection_is_still_refused(synthetic: Any) -> None:
    validator = DstackValidator.challenge_validator(synthetic.settings())
    with pytest.raises(ConfigurationError):
        validator.check_policy(Policy(options={"app_compose": {"runner": "bash"}}))

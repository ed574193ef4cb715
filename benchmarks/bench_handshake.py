"""aTLS client handshakes vs plain TLS handshakes with the same client set-up, on loopback.

    python benchmarks/bench_handshake.py

Every server runs in a process of its own (forked), so it never competes with the client for
the interpreter lock, and each baseline talks to the same server as the case it is compared
with.  The plain client context is built exactly like an ``ATLSContext`` minus appraisal
(TLS client protocol, no certificate or host-name check, no renegotiation or compression,
TLS 1.2 minimum), not from the system trust store.

* static certificate, simulated TEE: aTLS with a warm appraisal cache vs plain; each
  connection also sends one byte and reads one back (so both read the server's session
  tickets and close alike);
* TDX through the real dcap-qvl (synthetic DCAP PKI, collateral file), appraisal cache off:
  aTLS vs a plain handshake plus one bare ``dcap_qvl.verify_with_root_ca`` of the same quote
  with collateral parsed once; two more cases split the difference: the plain handshake with
  atls_dcap's ``DcapVerifier.verify`` in place of the bare verification, and with the whole
  ``tdx.dcap`` appraisal of the connection's certificate and key (what ``ATLSContext`` runs,
  outside its TLS layer), each between the handshake and the byte exchanged;
* dstack challenge (``tdx.dstack-challenge`` against a guest agent emulation): aTLS vs a
  plain handshake to the same server; the server's quote generation, timed in the same
  round through the same kind of agent, is subtracted, as the target is "x plus quote
  generation"; a floor case does what any client of the protocol must (plain handshake, the
  challenge exchange, the quote out of the JSON answer, one bare ``dcap_qvl`` verify, RTMR3
  replayed from the event log);
* informational: simulated TEE without cache, simulated challenge.

Ratios are of elapsed time per connection; the ``.cpu`` lines are the client thread's CPU
time (they leave out machine load and the server's own work, so they read higher).
Finishes in about a minute.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dcap_qvl
import harness
from plain_tls import plain_context

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.challenge import exchange as challenge_exchange
from atls_core.clock import SystemClock
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates, ChallengeEndpoint, mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.tls import AppraisalCache, ATLSContext
from atls_dcap import DcapSettings, DcapVerifier
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote
from atls_tdx.issuers import ConfigfsTsmIssuer, DstackAgentIssuer
from atls_tdx.testing.dstack import FakeConfigfsTsm, FakeGuestAgent, dstack_event_log

ROUNDS = 60
PER_ROUND = 4
HOST = "localhost"


# --- servers, each in a process of its own ----------------------------------------------


def in_child(start: Callable[[], int]) -> tuple[int, Callable[[], None]]:
    """Fork; ``start`` builds and starts a server there and returns its port."""
    parent_end, child_end = multiprocessing.Pipe()

    def run() -> None:
        child_end.send(start())
        signal.pause()

    process = multiprocessing.get_context("fork").Process(target=run, daemon=True)
    process.start()
    if not parent_end.poll(120):
        process.terminate()
        raise SystemExit(f"the server process did not start (exit code {process.exitcode})")
    port = int(parent_end.recv())

    def stop() -> None:
        process.terminate()
        process.join(5)

    return port, stop


def echo_server(context: ssl.SSLContext) -> int:
    """One connection at a time: handshake, answer one byte, wait for the client to close."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)

    def serve() -> None:
        while True:
            raw, _ = listener.accept()
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    if tls.recv(1):
                        tls.sendall(b"y")
                    tls.recv(1)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def http_server(server: HTTPSServer) -> int:
    return server.start().port


# --- one connection -----------------------------------------------------------------------


def connect(port: int) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
    return raw


def exchange(context: ssl.SSLContext, port: int) -> None:
    """Connect, handshake (and appraise), one byte each way, close."""
    with connect(port) as raw, context.wrap_socket(raw, server_hostname=HOST) as tls:
        tls.sendall(b"x")
        tls.recv(1)


def handshake(context: ssl.SSLContext, port: int) -> None:
    """Connect, handshake (and appraise), close."""
    with connect(port) as raw, context.wrap_socket(raw, server_hostname=HOST):
        pass


def report_pair(name: str, times: harness.Timings, case: str, base: str, target: str) -> None:
    harness.report(name, harness.ratios(times.wall[case], times.wall[base]), target)
    harness.report(f"{name}.cpu", harness.ratios(times.cpu[case], times.cpu[base]), "none")


# --- the three comparisons ------------------------------------------------------------


def static_certificate() -> None:
    tee = SimulatedTEE()
    port, stop = in_child(
        lambda: echo_server(tee.certificates().server_context(per_connection=False))
    )
    plain = plain_context()
    cached = ATLSContext.for_validator(tee.selected())
    uncached = ATLSContext.for_validator(tee.selected(), cache=AppraisalCache(max_entries=0))
    try:
        times = harness.interleave(
            {
                "plain": lambda: exchange(plain, port),
                "hit": lambda: exchange(cached, port),
                "no_cache": lambda: exchange(uncached, port),
            },
            rounds=ROUNDS,
            per_round=PER_ROUND,
        )
    finally:
        stop()
    if cached.cache.hits < ROUNDS * PER_ROUND:
        raise SystemExit("the cached context did not hit its cache")
    print("static certificate, simulated TEE (handshake + one byte each way):")
    harness.time_line("plain TLS", times.wall["plain"])
    harness.time_line("aTLS, appraisal cache hit", times.wall["hit"])
    harness.time_line("aTLS, no cache (simulated appraisal)", times.wall["no_cache"])
    report_pair("tls.static_cache_hit_vs_plain", times, "hit", "plain", "<=1.05")
    report_pair("tls.simulated_no_cache_vs_plain", times, "no_cache", "plain", "none")


def tdx_without_cache(pki: DcapTestPki, directory: Path) -> None:
    collateral_json = pki.collateral_json("tdx")
    (directory / "collateral.json").write_text(collateral_json)
    (directory / "root.pem").write_text(pki.root_ca_pem)
    reports = directory / "report"
    reports.mkdir()
    tsm = FakeConfigfsTsm(reports, lambda report_data: make_tdx_quote(pki, report_data))
    certificates = AttestedCertificates(
        ConfigfsTsmIssuer({"root": str(reports)}, fs=tsm), hostnames=(HOST,)
    )
    static = certificates.static()  # minted before the fork: the client reads its quote
    selected = select_validator(
        "tdx.dcap",
        settings={
            "collateral_file": str(directory / "collateral.json"),
            "root_ca": str(directory / "root.pem"),
            "allow_custom_root": True,
            "cache_dir": "none",
        },
        policy=Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()}),
        allow_insecure=True,  # the synthetic root is a tests-only setting
    )
    quote = selected.validator.evidence_from_certificate(
        PeerCertificate.from_der(static.certificate_der)
    ).data
    collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)

    def bare_verify() -> None:
        dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, int(time.time()))

    port, stop = in_child(lambda: echo_server(static.server_context()))
    plain = plain_context()
    atls = ATLSContext.for_validator(selected, cache=AppraisalCache(max_entries=0))
    verifier = DcapVerifier(
        DcapSettings.for_validator(
            {"collateral_file": str(directory / "collateral.json"), "root_ca": pki.root_ca_der}
            | {"allow_custom_root": True, "cache_dir": "none"}
        )
    )
    clock = SystemClock()

    def plain_and_verify() -> None:
        exchange(plain, port)
        bare_verify()

    def plain_then(step: Callable[[bytes], object]) -> Callable[[], None]:
        """A plain handshake, ``step`` on the server's certificate, then the byte exchange."""

        def run() -> None:
            with connect(port) as raw, plain.wrap_socket(raw, server_hostname=HOST) as tls:
                step(tls.getpeercert(binary_form=True) or b"")
                tls.sendall(b"x")
                tls.recv(1)

        return run

    def appraisal(der: bytes) -> None:
        """What ATLSContext runs on a certificate, outside its TLS layer (a fresh nonce)."""
        certificate = PeerCertificate.from_der(der)
        evidence = selected.validator.evidence_from_certificate(certificate)
        binding = BindingContext(
            spki_der=certificate.spki_der, nonce=os.urandom(32), certificate_der=der
        )
        selected.appraise(evidence, binding=binding, clock=clock).raise_for_status()

    try:
        times = harness.interleave(
            {
                "plain_verify": plain_and_verify,
                "atls": lambda: exchange(atls, port),
                "verifier": plain_then(lambda _der: verifier.verify(quote, now=clock.now())),
                "appraisal": plain_then(appraisal),
            },
            rounds=ROUNDS,
            per_round=PER_ROUND,
        )
    finally:
        stop()
    print("static TDX certificate, real dcap-qvl, no appraisal cache:")
    harness.time_line("plain TLS + bare dcap_qvl verify", times.wall["plain_verify"])
    harness.time_line("plain TLS + DcapVerifier.verify", times.wall["verifier"])
    harness.time_line("plain TLS + tdx.dcap appraisal (no TLS layer)", times.wall["appraisal"])
    harness.time_line("aTLS tdx.dcap", times.wall["atls"])
    report_pair("tls.tdx_no_cache_vs_plain_plus_verify", times, "atls", "plain_verify", "<=1.10")
    # Where the difference goes: atls_dcap's verifier, then the whole appraisal; what is left
    # to the line above is ATLSContext's TLS layer (plan, nonce in SNI, state, peer certificate).
    for name, case in (("verifier", "verifier"), ("appraisal_no_tls_layer", "appraisal")):
        report_pair(
            f"tls.tdx_split.{name}_vs_plain_plus_verify", times, case, "plain_verify", "none"
        )


def dstack_challenge(pki: DcapTestPki, directory: Path) -> None:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        return make_tdx_quote(pki, report_data, rtmr=rtmrs, mr_config_id=mr_config_id)

    def dstack_server() -> int:
        agent = FakeGuestAgent(directory / "server-agent.sock", quote).__enter__()
        issuer = DstackAgentIssuer({"socket": agent.socket_path})
        certificate = mint_certificate(issuer, hostnames=(HOST,))
        endpoint = ChallengeEndpoint(
            issuer,
            certificate_der=certificate.certificate_der,
            path="/tdx_quote",
            **harness.UNLIMITED,
        )
        return http_server(HTTPSServer(certificate.server_context(), challenge=endpoint))

    tee = SimulatedTEE()
    port, stop = in_child(dstack_server)
    simulated_port, stop_simulated = in_child(
        lambda: http_server(tee.challenge_server(**harness.UNLIMITED))
    )
    compose = next(e for e in dstack_event_log() if e["event"] == "compose-hash")
    selected = select_validator(
        "tdx.dstack-challenge",
        settings={
            "collateral_file": str(directory / "collateral.json"),
            "root_ca": str(directory / "root.pem"),
            "allow_custom_root": True,
            "cache_dir": "none",
        },
        policy=Policy(options={"allowed_compose_hashes": [compose["event_payload"]]}),
        allow_insecure=True,
    )
    atls = ATLSContext.for_validator(selected)
    simulated = ATLSContext.for_validator(tee.selected(challenge=True))
    plain = plain_context()
    collateral = dcap_qvl.QuoteCollateralV3.from_json((directory / "collateral.json").read_text())

    parts: dict[str, list[float]] = {
        name: [] for name in ("handshake", "exchange", "json", "verify", "replay")
    }

    def floor() -> None:
        """What any client of this protocol must do, and nothing of ours but the HTTP framing:
        a plain handshake, the challenge exchange, the quote out of the JSON, one bare verify,
        and RTMR3 replayed from the event log (the compose hash means something only then).
        Each part's time is kept for the breakdown printed below (it is not compared)."""
        start = time.perf_counter()
        with connect(port) as raw, plain.wrap_socket(raw, server_hostname=HOST) as tls:
            shaken = time.perf_counter()
            request = selected.validator.challenge(os.urandom(32))
            response = challenge_exchange(
                request, host=HOST, send_all=tls.sendall, receive=lambda: tls.recv(65536)
            )
            exchanged = time.perf_counter()
        closed = time.perf_counter()
        answer = json.loads(response.body)["quote"]  # dstack's answer
        quote = bytes.fromhex(answer["quote"])
        parsed = time.perf_counter()
        dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, int(time.time()))
        verified = time.perf_counter()
        rtmr3 = bytes(48)
        for event in json.loads(answer["event_log"]):
            if event["imr"] == 3:  # dstack's runtime events: type || ":" || name || ":" || payload
                measured = b"%s:%s:%s" % (
                    event["event_type"].to_bytes(4, "little"),
                    event["event"].encode(),
                    bytes.fromhex(event["event_payload"]),
                )
                rtmr3 = hashlib.sha384(rtmr3 + hashlib.sha384(measured).digest()).digest()
        if rtmr3 != dcap_qvl.parse_quote(quote).report.rt_mr3:
            raise SystemExit("the floor's replay does not reproduce RTMR3")
        done = time.perf_counter()
        for name, seconds in (
            ("handshake", shaken - start + closed - exchanged),
            ("exchange", exchanged - shaken),
            ("json", parsed - closed),
            ("verify", verified - parsed),
            ("replay", done - verified),
        ):
            parts[name].append(seconds)

    # The server's quote generation, timed here through an agent of the same kind.
    with FakeGuestAgent(directory / "timing-agent.sock", quote) as agent:
        issuer = DstackAgentIssuer({"socket": agent.socket_path})
        try:
            times = harness.interleave(
                {
                    "plain": lambda: handshake(plain, port),
                    "dstack": lambda: handshake(atls, port),
                    "quote": lambda: issuer.issue(os.urandom(64)),
                    "floor": floor,
                    "plain_simulated": lambda: handshake(plain, simulated_port),
                    "simulated": lambda: handshake(simulated, simulated_port),
                },
                rounds=ROUNDS // 2,
                per_round=PER_ROUND,
            )
        finally:
            stop()
            stop_simulated()
    wall = times.wall
    print("challenge transport (handshake, then evidence fetched over the connection):")
    harness.time_line("plain TLS (dstack server)", wall["plain"])
    harness.time_line("aTLS tdx.dstack-challenge", wall["dstack"])
    harness.time_line("quote generation (guest agent)", wall["quote"])
    harness.time_line("floor: plain TLS + exchange + verify + replay", wall["floor"])
    # The floor's parts, per connection (warm-up included): connect, handshake and close,
    # the exchange (request, the server's quote generation and answer, HTTP framing), the
    # quote out of the JSON, the bare verify, and the RTMR3 replay (event log JSON included).
    for name, label in (
        ("handshake", "connect + TLS handshake + close"),
        ("exchange", "exchange, quote generation included"),
        ("json", "answer JSON + quote hex"),
        ("verify", "bare dcap_qvl verify"),
        ("replay", "RTMR3 replay + event log JSON"),
    ):
        harness.time_line(f"  floor part: {label}", parts[name])
    harness.time_line("aTLS simulated challenge", wall["simulated"])
    minus_quote = [
        (a - q) / b for a, q, b in zip(wall["dstack"], wall["quote"], wall["plain"], strict=True)
    ]
    harness.report("tls.dstack_challenge_minus_quote_vs_plain", minus_quote, "<=2.0")
    floor_minus_quote = [
        (f - q) / b for f, q, b in zip(wall["floor"], wall["quote"], wall["plain"], strict=True)
    ]
    harness.report("tls.dstack_floor_minus_quote_vs_plain", floor_minus_quote, "none")
    harness.report(
        "tls.dstack_challenge_vs_plain.cpu",
        harness.ratios(times.cpu["dstack"], times.cpu["plain"]),
        "none",
    )
    report_pair("tls.simulated_challenge_vs_plain", times, "simulated", "plain_simulated", "none")


def main() -> None:
    harness.quiet_logs()
    harness.header("aTLS handshakes vs plain TLS (same client set-up, same loopback server)")
    static_certificate()
    pki = DcapTestPki.generate(seed=b"bench_handshake")
    with tempfile.TemporaryDirectory(prefix="atls-bench-") as folder:
        tdx_without_cache(pki, Path(folder))
        dstack_challenge(pki, Path(folder))


if __name__ == "__main__":
    main()

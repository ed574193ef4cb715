"""ATLSContext over real sockets on 127.0.0.1 with the simulated TEE."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import ssl

import attrs
import pytest

from atls_core.binding import Freshness, decode_sni
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.evidence import Evidence
from atls_core.policy import Policy, ReferenceValue
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, tls_connect
from atls_core.testing.simulated import SimulatedValidator
from atls_core.tls import AppraisalCache, ATLSContext, result_of

REQUEST = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _exchange(sock: ssl.SSLSocket) -> bytes:
    sock.sendall(REQUEST)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_accepts_fresh_certificate_and_exposes_result(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    context = ATLSContext.for_validator(tee.selected())
    with (
        HTTPSServer(certificates.server_context()) as server,
        tls_connect(context, server.port) as s,
    ):
        result = s.attestation_result
        assert result is not None
        assert result.accepted
        assert result_of(s) is result
        assert result.binding.freshness is Freshness.NONCE
        # The result is bound to the key of the certificate this very socket uses.
        peer = PeerCertificate.from_der(s.getpeercert(binary_form=True) or b"")
        assert result.binding.key_digest == hashlib.sha256(peer.spki_der).hexdigest()
        # The nonce travelled in SNI and the server minted a certificate for it.
        nonce, _ = decode_sni(s.server_hostname)
        assert nonce is not None
        assert result.binding.nonce == nonce.hex()
        assert b'"/ping"' in _exchange(s)
    assert certificates.minted == 1


def test_each_connection_gets_its_own_nonce(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().server_context()) as server:
        nonces = set()
        for _ in range(3):
            with tls_connect(context, server.port) as s:
                result = s.attestation_result
                assert result is not None
                nonces.add(result.binding.nonce)
    assert len(nonces) == 3


def test_evidence_bound_to_another_key_is_rejected_with_zero_bytes(tee: SimulatedTEE) -> None:
    honest = tee.certificates().static()
    liar = mint_certificate(tee.issuer, hostnames=("127.0.0.1",), evidence=honest.evidence)
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(liar.server_context()) as server:
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(context, server.port)
        assert caught.value.check == "binding.report_data"
        assert isinstance(caught.value, ssl.SSLCertVerificationError)
        assert server.wait_finished(1)
        assert server.handshakes == 1  # the TLS handshake itself completed...
        assert server.received == 0  # ...and not one application byte followed
    # Control: the same counter does see bytes from an accepted client.
    with HTTPSServer(tee.certificates().server_context()) as server:
        with tls_connect(context, server.port) as s:
            _exchange(s)
        assert server.wait_finished(1)
        assert server.received == len(REQUEST)


def test_evidence_replayed_with_an_old_nonce_is_rejected(tee: SimulatedTEE) -> None:
    old = mint_certificate(tee.issuer, nonce=os.urandom(32), hostnames=("127.0.0.1",))
    context = ATLSContext.for_validator(tee.selected())
    with (
        HTTPSServer(old.server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(context, server.port)
    assert caught.value.check == "binding.report_data"


def test_static_certificate_is_key_only_and_refused_when_nonce_required(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    with HTTPSServer(certificates.server_context(per_connection=False)) as server:
        with tls_connect(ATLSContext.for_validator(tee.selected()), server.port) as s:
            assert s.attestation_result is not None
            assert s.attestation_result.binding.freshness is Freshness.KEY_ONLY
        strict = ATLSContext.for_validator(tee.selected(policy=Policy(require_nonce=True)))
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(strict, server.port)
    assert "nonce" in caught.value.check


def test_deferred_handshake_appraises_before_first_byte(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().server_context()) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(
            raw, server_hostname="127.0.0.1", do_handshake_on_connect=False
        ) as s:
            before = s.attestation_result  # a local: mypy would keep the property narrowed
            assert before is None
            s.sendall(REQUEST)  # the implicit handshake appraises first
            assert s.attestation_result is not None
            assert b"200 OK" in _exchange(s)
        # Explicit do_handshake() appraises too.
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(
            raw, server_hostname="127.0.0.1", do_handshake_on_connect=False
        ) as s:
            s.do_handshake()
            assert s.attestation_result is not None
            assert s.attestation_result.accepted


def test_deferred_handshake_failure_sends_nothing(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(liar.server_context()) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s = context.wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
        with pytest.raises(ATLSVerificationError):
            s.sendall(REQUEST)
        with pytest.raises(OSError):
            s.sendall(REQUEST)  # closed: never falls through to an unappraised write
        raw.close()
        assert server.wait_finished(1)
        assert server.received == 0


def test_wrapping_an_unconnected_socket_appraises_ontls_connect(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().server_context()) as server:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(10)
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            s.connect(("127.0.0.1", server.port))
            assert s.attestation_result is not None
            assert s.attestation_result.accepted


def test_callers_cannot_switch_appraisal_off(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    context.verify_mode = ssl.CERT_NONE
    context.check_hostname = False
    context.options &= ~ssl.OP_NO_RENEGOTIATION
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with HTTPSServer(liar.server_context()) as server, pytest.raises(ATLSVerificationError):
        tls_connect(context, server.port)


def test_certificate_changed_between_connections_is_reappraised(tee: SimulatedTEE) -> None:
    """A static, cached certificate swapped for one whose key the evidence does not bind."""
    certificates = tee.certificates()
    original = certificates.static()
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(original.server_context()) as server:
        with tls_connect(context, server.port) as s:
            assert s.attestation_result is not None
        with tls_connect(context, server.port) as s:
            assert context.cache.hits == 1  # identical static certificate: cache hit
        # The server rotates to a new key but keeps presenting the old evidence.
        swapped = mint_certificate(tee.issuer, hostnames=("127.0.0.1",), evidence=original.evidence)
        server.context = swapped.server_context()
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(context, server.port)
    assert caught.value.check == "binding.report_data"
    assert context.cache.hits == 1


def test_cache_honours_expiry_and_nonce_policy(tee: SimulatedTEE) -> None:
    static = tee.certificates().static()

    @attrs.define
    class MovableClock:
        at: dt.datetime

        def now(self) -> dt.datetime:
            return self.at

    clock = MovableClock(dt.datetime.now(dt.UTC))
    context = ATLSContext.for_validator(tee.selected(), clock=clock)
    with HTTPSServer(static.server_context()) as server:
        with tls_connect(context, server.port):
            pass
        with tls_connect(context, server.port):
            assert context.cache.hits == 1
        clock.at += dt.timedelta(hours=2)  # past the evidence's not_after
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(context, server.port)
        assert caught.value.check == "simulated.validity"
        no_cache = ATLSContext.for_validator(tee.selected(), cache=AppraisalCache(max_entries=0))
        for _ in range(2):
            with tls_connect(no_cache, server.port):
                pass
        assert no_cache.cache.hits == 0


def test_nonce_fresh_results_are_never_cached(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().server_context()) as server:
        for _ in range(2):
            with tls_connect(context, server.port):
                pass
    assert len(context.cache) == 0
    assert context.cache.hits == 0


def test_config_selects_validator_per_host(tee: SimulatedTEE) -> None:
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))
    context = ATLSContext(config)
    with HTTPSServer(tee.certificates().server_context()) as server:
        with tls_connect(context, server.port) as s:
            assert s.attestation_result is not None
            assert s.attestation_result.verifier.validator == "insecure.simulated"
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(context, server.port, host="other.example")
    assert caught.value.check == "config.hosts"


def test_insecure_validator_refused_without_opt_in(tee: SimulatedTEE) -> None:
    mapping = tee.config_mapping("127.0.0.1")
    mapping["atls"]["allow_insecure_test_validators"] = False
    with pytest.raises(ConfigurationError) as at_load:
        ATLSConfig.from_mapping(mapping)
    assert at_load.value.check == "config.insecure"
    with pytest.raises(ConfigurationError) as at_context:
        ATLSContext(ATLSConfig.from_mapping(mapping, check=False))
    assert at_context.value.check == "config.insecure"


def test_other_hardware_key_is_untrusted(tee: SimulatedTEE) -> None:
    stranger = SimulatedTEE()
    context = ATLSContext.for_validator(tee.selected())
    with (
        HTTPSServer(stranger.certificates().server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(context, server.port)
    assert caught.value.check == "simulated.signature"


def test_policy_rejection_carries_the_result(tee: SimulatedTEE) -> None:
    debug_tee = SimulatedTEE(debug=True)
    context = ATLSContext.for_validator(debug_tee.selected())
    with (
        HTTPSServer(debug_tee.certificates().server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(context, server.port)
    assert caught.value.result is not None
    assert not caught.value.result.accepted
    assert "debug" in caught.value.check


def test_plain_certificate_without_evidence_is_rejected(tee: SimulatedTEE) -> None:
    plain = tee.challenge_server()  # a plain certificate, no evidence extension
    context = ATLSContext.for_validator(tee.selected())
    with plain as server, pytest.raises(ATLSVerificationError) as caught:
        tls_connect(context, server.port)
    assert caught.value.check == "evidence.extension"


def test_validator_bug_fails_closed(tee: SimulatedTEE, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SimulatedValidator):
        def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
            raise RuntimeError("boom")

    working = tee.selected()
    broken = Broken(tee.hardware.validator_settings(), spec=working.spec)
    selected = attrs.evolve(working, validator=broken)
    context = ATLSContext.for_validator(selected)
    caplog.set_level(logging.DEBUG, logger="atls.appraisal")
    with HTTPSServer(tee.certificates().server_context()) as server:
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(context, server.port)
        assert server.wait_finished(1)
        assert server.received == 0
    assert caught.value.check == "tls.appraisal.internal"
    assert isinstance(caught.value.__cause__, RuntimeError)
    # A defect, named with the distribution to report it to, and logged beside the verdicts.
    plugin = working.plugin
    assert f"(plugin {plugin.distribution} {plugin.version}) raised RuntimeError: boom" in str(
        caught.value
    )
    (record,) = [r for r in caplog.records if r.name == "atls.appraisal"]
    assert "internal error" in record.getMessage()
    assert record.exc_info is not None  # the traceback, at DEBUG


def test_context_arguments_are_checked(tee: SimulatedTEE) -> None:
    with pytest.raises(ConfigurationError):
        ATLSContext()
    with pytest.raises(ConfigurationError):
        ATLSContext(ATLSConfig.from_mapping(tee.config_mapping()), validator=tee.selected())
    context = ATLSContext.for_validator(tee.selected())
    with socket.socket() as raw, pytest.raises(ValueError, match="clients"):
        context.wrap_socket(raw, server_side=True)


def test_recorded_clock_is_used(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(
        tee.selected(), clock=FixedClock(dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    )
    with (
        HTTPSServer(tee.certificates().server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(context, server.port)
    assert caught.value.check == "simulated.validity"


def test_a_shared_cache_never_serves_a_result_appraised_under_another_policy(
    tee: SimulatedTEE,
) -> None:
    # Regression (R3 review): entries were keyed by host rule and certificate only, so a
    # cache shared by two contexts (or two configurations with the same host pattern)
    # handed a result accepted under a lenient policy to a strict one.
    static = tee.certificates().static()
    shared = AppraisalCache()
    lenient = ATLSContext.for_validator(tee.selected(), cache=shared)
    strict_policy = Policy(reference_values={"image": ReferenceValue(accepted=["11" * 32])})
    strict = ATLSContext.for_validator(tee.selected(policy=strict_policy), cache=shared)
    with HTTPSServer(static.server_context()) as server:
        with tls_connect(lenient, server.port) as s:
            assert s.attestation_result is not None
        assert len(shared) == 1
        with pytest.raises(ATLSVerificationError) as caught:
            tls_connect(strict, server.port)
        assert caught.value.check == "reference.image"
        with tls_connect(lenient, server.port):
            assert shared.hits == 1  # the lenient context still hits its own entry


@pytest.mark.parametrize("timeout", [None, 0, -1.0, float("inf"), float("nan"), "5", True])
def test_a_challenge_timeout_that_bounds_nothing_is_refused_when_the_context_is_made(
    tee: SimulatedTEE, timeout: object
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSContext.for_validator(tee.selected(challenge=True), challenge_timeout=timeout)
    assert info.value.check == "tls.context"

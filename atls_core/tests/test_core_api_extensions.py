"""Key-bound issuers, validator-like objects and the media-type helper, over real TLS on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl

import attrs
import pytest

from atls_core.binding import BindingContext, Freshness, encode_sni, report_data_for
from atls_core.clock import Clock, SystemClock
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Issuer, IssuerSpec, KeyBoundIssuer, Validator, ValidatorSpec
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.server import AttestedCertificates, ChallengeEndpoint, mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.testing.simulated import MEDIA_TYPE, SimulatedIssuer
from atls_core.tls import ATLSContext, result_of


class KeyBoundSimulatedIssuer:
    """Like MAA: receives the key and nonce and computes the report data itself."""

    def __init__(self, inner: SimulatedIssuer) -> None:
        self._inner = inner
        self.calls: list[tuple[bytes, bytes | None]] = []

    @property
    def spec(self) -> IssuerSpec:
        return self._inner.spec

    def issue_for_key(self, spki_der: bytes, nonce: bytes | None) -> Evidence:
        self.calls.append((spki_der, nonce))
        return self._inner.issue(report_data_for("atls-v1", spki_der=spki_der, nonce=nonce))


class BothWaysIssuer(KeyBoundSimulatedIssuer):
    """Has ``issue`` too; the core must prefer the key-bound path."""

    def issue(self, report_data: bytes) -> Evidence:
        raise AssertionError("the core called issue() although issue_for_key() exists")


def _handshake(context: ssl.SSLContext, port: int) -> AttestationResult | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /x HTTP/1.0\r\nHost: localhost\r\n\r\n")
        while tls.recv(65536):
            pass
        return result_of(tls)


# -- key-bound issuers -------------------------------------------------------------


def test_protocols_tell_the_two_issuer_kinds_apart(tee: SimulatedTEE) -> None:
    keyed = KeyBoundSimulatedIssuer(tee.issuer)
    assert isinstance(keyed, KeyBoundIssuer)
    assert not isinstance(keyed, Issuer)
    assert isinstance(tee.issuer, Issuer)
    assert not isinstance(tee.issuer, KeyBoundIssuer)


def test_mint_hands_the_certificate_key_and_nonce(tee: SimulatedTEE) -> None:
    issuer = KeyBoundSimulatedIssuer(tee.issuer)
    nonce = bytes(range(32))
    minted = mint_certificate(issuer, nonce=nonce)
    assert issuer.calls == [(minted.spki_der, nonce)]
    static = mint_certificate(issuer)
    assert issuer.calls[-1] == (static.spki_der, None), "a static certificate has no nonce"


def test_key_bound_issuer_is_preferred_when_both_exist(tee: SimulatedTEE) -> None:
    issuer = BothWaysIssuer(tee.issuer)
    minted = mint_certificate(issuer, nonce=bytes(32))
    assert issuer.calls == [(minted.spki_der, bytes(32))]


def test_per_connection_handshake_with_key_bound_issuer(tee: SimulatedTEE) -> None:
    issuer = KeyBoundSimulatedIssuer(tee.issuer)
    certificates = AttestedCertificates(issuer, hostnames=("localhost",))
    with HTTPSServer(certificates.server_context()) as https:
        result = _handshake(ATLSContext.for_validator(tee.selected()), https.port)
    assert result is not None
    assert result.accepted
    assert result.binding.freshness is Freshness.NONCE
    assert certificates.minted == 1
    # static + this connection's certificate; the latter got the client's nonce
    assert len(issuer.calls) == 2
    assert issuer.calls[0][1] is None
    nonce = issuer.calls[1][1]
    assert nonce is not None
    assert len(nonce) == 32


def test_an_object_that_cannot_issue_is_refused() -> None:
    @attrs.frozen
    class NotAnIssuer:
        spec: object = None

    with pytest.raises(ConfigurationError) as info:
        AttestedCertificates(NotAnIssuer())
    assert info.value.check == "server.issuer"


def test_challenge_endpoint_refuses_a_key_bound_only_issuer(tee: SimulatedTEE) -> None:
    """The challenge path binds the certificate digest through report data: refuse at set-up."""
    with pytest.raises(ConfigurationError) as info:
        ChallengeEndpoint(
            KeyBoundSimulatedIssuer(tee.challenge_issuer),
            certificate_der=mint_certificate(tee.challenge_issuer).certificate_der,
            path="/atls/challenge",
        )
    assert info.value.check == "server.issuer"


def test_custom_sni_nonce_reader(tee: SimulatedTEE) -> None:
    """A plugin can accept an older client's SNI form; other names keep the static certificate."""
    seen: list[str | None] = []

    legacy = "ab" * 16 + "." + "cd" * 16  # hex of a 32-byte nonce in two labels

    def reader(server_name: str | None) -> bytes | None:
        seen.append(server_name)
        return bytes.fromhex(server_name.replace(".", "")) if server_name == legacy else None

    certificates = AttestedCertificates(tee.issuer, nonce_from_sni=reader)
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.check_hostname = False
    plain.verify_mode = ssl.CERT_NONE
    with HTTPSServer(certificates.server_context()) as https:
        for name in (legacy, "localhost", encode_sni(bytes(32), "h")):
            with (
                socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw,
                plain.wrap_socket(raw, server_hostname=name),
            ):
                pass
    assert seen == [legacy, "localhost", encode_sni(bytes(32), "h")]
    assert certificates.minted == 1, "only the name the reader understood got its own certificate"


# -- validator-like objects ----------------------------------------------------------


class PinnedAppraiser:
    """Not a SelectedValidator: a validator that carries its own policy (like AciValidator)."""

    pki = False

    def __init__(self, validator: Validator, policy: Policy) -> None:
        self.validator = validator
        self.policy = policy
        self.appraised = 0

    @property
    def spec(self) -> ValidatorSpec:
        return self.validator.spec

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> AttestationResult:
        self.appraised += 1
        return self.validator.appraise(
            evidence, binding=binding, clock=clock or SystemClock(), policy=self.policy
        )


def test_selected_validator_is_appraiser_like(tee: SimulatedTEE) -> None:
    assert isinstance(tee.selected(), AppraiserLike)


def test_context_accepts_any_appraiser_like(tee: SimulatedTEE) -> None:
    appraiser = PinnedAppraiser(tee.selected().validator, tee.pinned(Policy(require_nonce=True)))
    certificates = AttestedCertificates(tee.issuer, hostnames=("localhost",))
    with HTTPSServer(certificates.server_context()) as https:
        result = _handshake(ATLSContext(validator=appraiser), https.port)
    assert result is not None
    assert result.accepted
    assert appraiser.appraised == 1


def test_appraiser_like_policy_still_refuses(tee: SimulatedTEE) -> None:
    appraiser = PinnedAppraiser(tee.selected().validator, Policy(accepted_tcb_statuses=["Nope"]))
    certificates = AttestedCertificates(tee.issuer, hostnames=("localhost",))
    with (
        HTTPSServer(certificates.server_context()) as https,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        _handshake(ATLSContext(validator=appraiser), https.port)
    assert appraiser.appraised == 1


# -- the media-type helper -----------------------------------------------------------


def _evidence(media_type: str) -> Evidence:
    return Evidence(
        media_type=media_type,
        data=b"{}",
        source=EvidenceSource(transport=Transport.FILE, location="x"),
    )


def test_require_media_type_accepts_listed_types() -> None:
    _evidence(MEDIA_TYPE).require_media_type(MEDIA_TYPE)
    _evidence("b").require_media_type("a", "b")


def test_require_media_type_refuses_others() -> None:
    with pytest.raises(MalformedEvidence) as info:
        _evidence("application/other").require_media_type(MEDIA_TYPE)
    assert info.value.check == "evidence.media_type"
    assert info.value.expected == MEDIA_TYPE
    assert info.value.actual == "application/other"
    with pytest.raises(MalformedEvidence) as several:
        _evidence("c").require_media_type("a", "b")
    assert several.value.expected == ["a", "b"]
    with pytest.raises(MalformedEvidence):
        _evidence(MEDIA_TYPE.upper()).require_media_type(MEDIA_TYPE)
    with pytest.raises(MalformedEvidence):
        _evidence(MEDIA_TYPE).require_media_type()


def test_simulated_validator_uses_the_helper(tee: SimulatedTEE) -> None:
    selected = tee.selected()
    with pytest.raises(MalformedEvidence) as info:
        selected.appraise(
            _evidence("application/other"),
            binding=BindingContext(spki_der=b"k", nonce=None),
        )
    assert info.value.check == "evidence.media_type"

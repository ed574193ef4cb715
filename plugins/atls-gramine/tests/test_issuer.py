"""gramine.dev-attestation against a fake /dev/attestation backed by synthetic SGX quotes."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from atls_core.binding import BindingContext, report_data_for
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.connection import HTTPAConnection
from atls_core.errors import ATLSVerificationError, ConfigurationError, MalformedEvidence
from atls_core.policy import Policy, ReferenceValue
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult, Status
from atls_core.selection import select_validator
from atls_core.tls import ATLSContext, result_of
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRENCLAVE, make_sgx_quote
from atls_gramine.issuer import DevAttestation, DevAttestationIssuer
from atls_gramine.ratls import LEGACY_OID_DER, parse_tcg_evidence
from atls_gramine.specs import LEGACY_OID, TCG_OID
from atls_gramine.testing.certs import INSIDE_WINDOW
from atls_gramine.testing.dev_attestation import FakeDevAttestation
from atls_gramine.validator import GramineRatlsValidator

POLICY = Policy(reference_values={"mrenclave": ReferenceValue(accepted=[DEFAULT_MRENCLAVE.hex()])})
GRAMINE_ENV = {
    "RA_TLS_MRENCLAVE": DEFAULT_MRENCLAVE.hex(),
    "RA_TLS_MRSIGNER": "any",
    "RA_TLS_ISV_PROD_ID": "0",
    "RA_TLS_ISV_SVN": "0",
}


@pytest.fixture
def device(tmp_path: Path, pki: DcapTestPki) -> Iterator[FakeDevAttestation]:
    with FakeDevAttestation(tmp_path / "attestation", lambda rd: make_sgx_quote(pki, rd)) as fake:
        yield fake
    assert not fake.errors


def _issuer(device: FakeDevAttestation, **settings: Any) -> DevAttestationIssuer:
    return DevAttestationIssuer({"attestation_dir": str(device.root), **settings})


def test_quote_carries_the_report_data_written(device: FakeDevAttestation) -> None:
    report_data = bytes(range(64))
    quote = DevAttestation(device.root).quote(report_data)
    assert device.report_data_seen == [report_data]
    assert quote[368:432] == report_data
    evidence = _issuer(device).issue(bytes(reversed(range(64))))
    assert evidence.source.oid == LEGACY_OID
    assert device.report_data_seen[-1] == bytes(reversed(range(64)))


def test_certificate_has_gramines_shape_and_passes_the_validator(
    device: FakeDevAttestation, validator: GramineRatlsValidator
) -> None:
    credentials = _issuer(device).create_credentials()
    certificate = x509.load_der_x509_certificate(credentials.certificate_der)
    assert certificate.subject.rfc4514_string() == "C=US,O=GramineDevelopers,CN=RATLS"
    assert certificate.issuer == certificate.subject
    assert certificate.serial_number == 1
    assert certificate.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    assert certificate.not_valid_before_utc.year == 2001
    assert certificate.not_valid_after_utc.year == 2030
    assert b"\x06\x0b" + LEGACY_OID_DER in credentials.certificate_der

    peer = PeerCertificate.from_der(credentials.certificate_der)
    spki = peer.spki_der
    legacy = peer.extension(LEGACY_OID)
    tcg = peer.extension(TCG_OID)
    assert legacy is not None
    assert tcg is not None
    assert legacy[368:432] == report_data_for("gramine-legacy", spki_der=spki)
    assert len(device.report_data_seen) == 2  # one quote per extension
    assert parse_tcg_evidence(tcg).pubkey_hash_alg == "sha256"

    result = _appraised(validator, peer, BindingContext(spki_der=spki, certificate_der=peer.der))
    assert result.accepted, result.to_json()
    assert result.binding.scheme == "gramine-tcg"


def _appraised(
    validator: GramineRatlsValidator, peer: PeerCertificate, binding: BindingContext | None = None
) -> AttestationResult:
    """The certificate's evidence appraised inside the collateral window (key-bound)."""
    return validator.appraise(
        validator.evidence_from_certificate(peer),
        binding=binding or BindingContext(spki_der=peer.spki_der),
        clock=FixedClock(INSIDE_WINDOW),
        policy=POLICY,
    )


def test_sha512_pubkey_hash_setting(
    device: FakeDevAttestation, validator: GramineRatlsValidator
) -> None:
    credentials = _issuer(device, pubkey_hash_alg="sha512").create_credentials()
    peer = PeerCertificate.from_der(credentials.certificate_der)
    tcg = peer.extension(TCG_OID)
    assert tcg is not None
    assert parse_tcg_evidence(tcg).pubkey_hash_alg == "sha512"
    result = _appraised(validator, peer)
    assert result.accepted


def test_files_are_private(device: FakeDevAttestation, tmp_path: Path) -> None:
    out = tmp_path / "tls"
    out.mkdir(mode=0o750)
    out.chmod(0o750)
    key_path, cert_path = _issuer(device).write_credentials(out)
    for path in (key_path, cert_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750  # an existing directory is left as is


def test_write_credentials_creates_a_missing_directory_0700(
    device: FakeDevAttestation, tmp_path: Path
) -> None:
    out = tmp_path / "run" / "tls"
    key_path, cert_path = _issuer(device).write_credentials(out)
    assert out.is_dir()
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert (key_path.parent, cert_path.parent) == (out, out)
    for path in (key_path, cert_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_credentials_refuses_a_file_in_the_way(
    device: FakeDevAttestation, tmp_path: Path
) -> None:
    blocker = tmp_path / "tls"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError) as info:
        _issuer(device).write_credentials(blocker)
    assert info.value.check == "gramine.credentials_dir"


def test_key_is_never_in_a_repr(device: FakeDevAttestation) -> None:
    credentials = _issuer(device).create_credentials()
    assert "PRIVATE" not in repr(credentials)
    assert "PRIVATE" not in repr(credentials.private_key_pem)


@contextlib.contextmanager
def _gramine_style_server(key_path: Path, cert_path: Path) -> Iterator[int]:
    """uvicorn serving the issuer's key and certificate files on 127.0.0.1; yields the port."""
    uvicorn = pytest.importorskip("uvicorn")

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"attested hello"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        ssl_keyfile=str(key_path),
        ssl_certfile=str(cert_path),
        log_level="error",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_uvicorn_serves_the_certificate_and_an_atls_client_accepts_it(
    device: FakeDevAttestation, settings_for: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """Issuer -> files -> uvicorn (real TLS on 127.0.0.1) -> atls client with gramine.ratls."""
    key_path, cert_path = _issuer(device).write_credentials(tmp_path)

    def get(port: int, policy: Policy) -> tuple[int, bytes, AttestationResult | None]:
        selected = select_validator(
            "gramine.ratls",
            settings=settings_for(),
            policy=policy,
            manager=PluginManager(),
            allow_insecure=True,
        )
        context = ATLSContext.for_validator(selected, clock=FixedClock(INSIDE_WINDOW))
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            return response.status, response.read(), result_of(connection.sock)
        finally:
            connection.close()

    with _gramine_style_server(key_path, cert_path) as port:
        status, body, result = get(port, POLICY)
        assert (status, body) == (200, b"attested hello")
        assert result is not None
        assert result.accepted
        assert result.binding.scheme == "gramine-tcg"
        wrong = Policy(reference_values={"mrenclave": ReferenceValue(accepted=["00" * 32])})
        with pytest.raises(ATLSVerificationError) as info:
            get(port, wrong)
        assert info.value.check == "reference.mrenclave"
        assert isinstance(info.value, ssl.SSLCertVerificationError)
        with pytest.raises(ATLSVerificationError) as info:
            get(port, Policy())
        assert info.value.check == "workload.unpinned"


def test_from_gramine_env_is_usable_directly_with_httpa_connection(
    device: FakeDevAttestation, settings_for: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """Issue 14: ``HTTPAConnection(validator=from_gramine_env(...))`` connects and appraises.

    The system clock decides here (HTTPAConnection builds its own context), so the
    synthetic collateral is made valid around now.
    """
    key_path, cert_path = _issuer(device).write_credentials(tmp_path / "tls")
    now = dt.datetime.now(dt.UTC)
    settings = settings_for(
        issue_date=now - dt.timedelta(days=1), next_update=now + dt.timedelta(days=30)
    )

    def get(**environ: str) -> tuple[int, bytes, AttestationResult | None]:
        selected = GramineRatlsValidator.from_gramine_env(
            {**GRAMINE_ENV, **environ},
            settings=settings,
            manager=PluginManager(),
            allow_insecure=True,
        )
        connection = HTTPAConnection("127.0.0.1", port, validator=selected, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            return response.status, response.read(), connection.attestation_result
        finally:
            connection.close()

    with _gramine_style_server(key_path, cert_path) as port:
        status, body, result = get()
        assert (status, body) == (200, b"attested hello")
        assert result is not None
        # The synthetic DCAP root is a tests-only setting: a warning, for that reason only.
        assert result.status is Status.WARNING, result.to_json()
        assert [w.split(":")[0] for w in result.warnings] == ["insecure.test_knob"]
        assert result.policy_id == "gramine-env"
        assert result.measurements["mrenclave"] == DEFAULT_MRENCLAVE.hex()

        status, _, anything = get(RA_TLS_MRENCLAVE="any")  # and RA_TLS_MRSIGNER=any
        assert status == 200
        assert anything is not None
        assert anything.status is Status.WARNING
        assert any(w.startswith("workload.unpinned") for w in anything.warnings)

        with pytest.raises(ATLSVerificationError) as info:
            get(RA_TLS_MRENCLAVE="00" * 32)
        assert info.value.check == "reference.mrenclave"


def test_quote_for_other_report_data_is_refused(tmp_path: Path, pki: DcapTestPki) -> None:
    stale = make_sgx_quote(pki, bytes(64))
    with (
        FakeDevAttestation(tmp_path / "a", lambda _rd: stale) as fake,
        pytest.raises(MalformedEvidence) as info,
    ):
        DevAttestation(fake.root).quote(b"\x01" * 64)
    assert info.value.check == "gramine.quote_report_data"


def test_non_dcap_attestation_is_refused(tmp_path: Path, pki: DcapTestPki) -> None:
    with (
        FakeDevAttestation(
            tmp_path / "a", lambda rd: make_sgx_quote(pki, rd), attestation_type="none"
        ) as fake,
        pytest.raises(ConfigurationError) as info,
    ):
        DevAttestation(fake.root).quote(bytes(64))
    assert info.value.check == "gramine.dev_attestation"
    assert info.value.actual == "none"


def test_outside_an_enclave(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        DevAttestationIssuer({"attestation_dir": str(tmp_path / "absent")}).create_credentials()
    assert info.value.check == "gramine.dev_attestation"


def test_report_data_size(device: FakeDevAttestation) -> None:
    with pytest.raises(ValueError):
        DevAttestation(device.root).quote(b"short")


@pytest.mark.parametrize(
    "settings",
    [
        {"bogus": True},
        {"pubkey_hash_alg": "md5"},
        {"not_before": "yesterday"},
        {"not_before": "20300101000000", "not_after": "20200101000000"},
    ],
)
def test_issuer_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DevAttestationIssuer(settings)


def test_validity_settings_in_gramines_format(device: FakeDevAttestation) -> None:
    credentials = _issuer(
        device, not_before="20250101000000", not_after="2027-06-30T00:00:00Z"
    ).create_credentials()
    certificate = x509.load_der_x509_certificate(credentials.certificate_der)
    assert certificate.not_valid_before_utc.year == 2025
    assert certificate.not_valid_after_utc.year == 2027


def test_the_cores_certificate_minting_works_with_this_issuer(
    device: FakeDevAttestation, validator: GramineRatlsValidator
) -> None:
    """atls_core.server mints its own certificate around issue(): the legacy extension."""
    from atls_core.server import mint_certificate

    minted = mint_certificate(_issuer(device), hostnames=("enclave.test",), key_type="p384")
    peer = PeerCertificate.from_der(minted.certificate_der)
    assert peer.extension(TCG_OID) is None
    result = _appraised(validator, peer)
    assert result.accepted
    assert result.binding.scheme == "gramine-legacy"

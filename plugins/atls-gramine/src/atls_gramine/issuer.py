"""``gramine.dev-attestation``: Gramine-format RA-TLS certificates from inside an enclave.

Gramine exposes SGX attestation as a pseudo-filesystem: write 64 bytes of
report data to ``/dev/attestation/user_report_data``, read the quote from
``/dev/attestation/quote``.  The certificate made here has Gramine's own shape
(self-signed, CN=RATLS, O=GramineDevelopers, C=US, serial 1, P-384 key, valid
2001-01-01 .. 2030-12-31 by default, basic constraints / SKI / AKI) and carries
both extensions, each with its own quote: the legacy one (report data
``SHA-256(SPKI) || 0^32``) and the TCG DICE one (report data
``SHA-256(claims) || 0^32``), so Gramine verifiers old and new accept it.
Report data comes from :func:`atls_core.binding.report_data_for`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atls_core.binding import report_data_for
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings, refuse_unknown_names
from atls_core.secret import Secret, reveal
from atls_core.self_signed import private_key_pem as key_pem
from atls_gramine.ratls import HASH_ALGORITHMS, encode_claims, encode_tcg_evidence
from atls_gramine.specs import (
    ISSUER_SPEC,
    LEGACY_OID,
    MEDIA_TYPE_LEGACY,
    SCHEME_LEGACY,
    SCHEME_TCG,
    TCG_OID,
)

__all__ = [
    "DEFAULT_ATTESTATION_DIR",
    "DevAttestation",
    "DevAttestationIssuer",
    "RatlsCredentials",
    "build_ratls_certificate",
]

DEFAULT_ATTESTATION_DIR = Path("/dev/attestation")
DEFAULT_NOT_BEFORE = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
DEFAULT_NOT_AFTER = dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
REPORT_DATA_SIZE = 64
_SGX_REPORT_DATA_OFFSET = 48 + 320
"""Report data in an SGX quote v3: after the 48-byte header, at offset 320 of the report body."""
_MAX_QUOTE = 64 * 1024
_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "RATLS"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GramineDevelopers"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
)

_device_locks: dict[Path, threading.Lock] = {}
_device_locks_guard = threading.Lock()


def _lock_for(root: Path) -> threading.Lock:
    """``user_report_data`` then ``quote`` is a two-step protocol: one caller at a time."""
    with _device_locks_guard:
        return _device_locks.setdefault(root, threading.Lock())


class DevAttestation:
    """Gramine's ``/dev/attestation`` (or a directory shaped like it, for tests)."""

    def __init__(self, root: Path | str = DEFAULT_ATTESTATION_DIR) -> None:
        self.root = Path(root)
        self._lock = _lock_for(self.root.resolve())

    def attestation_type(self) -> str | None:
        """``dcap``, ``epid`` or ``none`` as Gramine reports it; ``None`` if not exposed."""
        try:
            return (self.root / "attestation_type").read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read {self.root}/attestation_type: {exc.strerror}",
                check="gramine.dev_attestation",
            ) from None

    def quote(self, report_data: bytes) -> bytes:
        """An SGX quote over ``report_data`` (64 bytes), checked to carry exactly that."""
        if len(report_data) != REPORT_DATA_SIZE:
            raise ValueError(f"report data must be {REPORT_DATA_SIZE} bytes")
        if not (self.root / "quote").exists():
            raise ConfigurationError(
                f"{self.root} has no quote: not running inside a Gramine SGX enclave?",
                check="gramine.dev_attestation",
            )
        kind = self.attestation_type()
        if kind is not None and kind != "dcap":
            raise ConfigurationError(
                "Gramine's remote attestation is not DCAP (set sgx.remote_attestation = "
                '"dcap" in the manifest)',
                check="gramine.dev_attestation",
                expected="dcap",
                actual=kind,
            )
        with self._lock:
            try:
                self._write(report_data)
                quote = self._read_quote()
            except OSError as exc:
                raise ConfigurationError(
                    f"{self.root}: {exc.strerror or exc}", check="gramine.dev_attestation"
                ) from None
        carried = quote[_SGX_REPORT_DATA_OFFSET : _SGX_REPORT_DATA_OFFSET + REPORT_DATA_SIZE]
        if carried != report_data:
            raise MalformedEvidence(
                "the quote from /dev/attestation does not carry the report data written",
                check="gramine.quote_report_data",
                expected=report_data,
                actual=carried,
            )
        return quote

    def _write(self, report_data: bytes) -> None:
        fd = os.open(self.root / "user_report_data", os.O_WRONLY)
        try:
            written = os.write(fd, report_data)
        finally:
            os.close(fd)
        if written != len(report_data):
            raise OSError(f"short write to user_report_data ({written} bytes)")

    def _read_quote(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        with open(self.root / "quote", "rb", buffering=0) as stream:
            while chunk := stream.read(_MAX_QUOTE):
                chunks.append(chunk)
                size += len(chunk)
                if size > _MAX_QUOTE:
                    raise OSError("quote larger than 64 KiB")
        return b"".join(chunks)


@attrs.frozen(kw_only=True)
class RatlsCredentials:
    """A private key and its RA-TLS certificate."""

    private_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    certificate_der: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")

    @property
    def certificate_pem(self) -> bytes:
        return x509.load_der_x509_certificate(self.certificate_der).public_bytes(
            serialization.Encoding.PEM
        )

    @property
    def private_key_pem(self) -> Secret:
        return Secret(key_pem(self.private_key).decode(), "RA-TLS private key")

    def write(
        self,
        directory: Path | str,
        *,
        key_name: str = "ratls-key.pem",
        cert_name: str = "ratls-cert.pem",
    ) -> tuple[Path, Path]:
        """Write key and certificate (PEM, mode 0600); returns (key path, certificate path).

        A missing ``directory`` is created with mode 0700 (an existing one is left as is).

        Usable as ``uvicorn --ssl-keyfile KEY --ssl-certfile CERT``.
        """
        folder = Path(directory)
        _private_directory(folder)
        key_path, cert_path = folder / key_name, folder / cert_name
        _write_private(key_path, reveal(self.private_key_pem).encode())
        _write_private(cert_path, self.certificate_pem)
        return key_path, cert_path


def _private_directory(folder: Path) -> None:
    """Create ``folder`` (and missing parents) for a private key; the folder itself 0700."""
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not folder.is_dir():
            raise ConfigurationError(
                f"{folder} exists and is not a directory", check="gramine.credentials_dir"
            ) from None
        return
    os.chmod(folder, 0o700)  # mkdir's mode is reduced by the umask; say exactly 0700


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def build_ratls_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    legacy_quote: bytes | None,
    tcg_evidence: bytes | None,
    not_before: dt.datetime = DEFAULT_NOT_BEFORE,
    not_after: dt.datetime = DEFAULT_NOT_AFTER,
) -> bytes:
    """A self-signed certificate in Gramine's RA-TLS shape; returns DER."""
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_SUBJECT)
        .issuer_name(_SUBJECT)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(ski.digest, None, None),
            critical=False,
        )
    )
    if legacy_quote is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(LEGACY_OID), legacy_quote),
            critical=False,
        )
    if tcg_evidence is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(TCG_OID), tcg_evidence),
            critical=False,
        )
    certificate = builder.sign(key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.DER)


def _time_setting(settings: Settings, name: str, default: dt.datetime) -> dt.datetime:
    value = settings.get(name)
    if value is None:
        return default
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            # Gramine's RA_TLS_CERT_TIMESTAMP_* form: YYYYMMDDhhmmss
            parsed = (
                dt.datetime.strptime(text, "%Y%m%d%H%M%S")
                if text.isdigit() and len(text) == 14
                else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            )
        except ValueError:
            raise ConfigurationError(
                f"settings.{name}: expected YYYYMMDDhhmmss or ISO-8601",
                check="config.settings",
                actual=value,
            ) from None
    else:
        raise ConfigurationError(
            f"settings.{name}: expected a time", check="config.settings", actual=value
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class DevAttestationIssuer:
    """Makes Gramine RA-TLS certificates from ``/dev/attestation``."""

    spec = ISSUER_SPEC

    def __init__(self, settings: Settings) -> None:
        refuse_unknown_names("settings", settings, self.spec.settings, where=self.spec.id)
        self.device = DevAttestation(settings.get("attestation_dir", DEFAULT_ATTESTATION_DIR))
        algorithm = settings.get("pubkey_hash_alg", "sha256")
        if algorithm not in HASH_ALGORITHMS.values():
            raise ConfigurationError(
                "settings.pubkey_hash_alg: unsupported",
                check="config.settings",
                expected=sorted(HASH_ALGORITHMS.values()),
                actual=algorithm,
            )
        self._algorithm: str = algorithm
        self._not_before = _time_setting(settings, "not_before", DEFAULT_NOT_BEFORE)
        self._not_after = _time_setting(settings, "not_after", DEFAULT_NOT_AFTER)
        if self._not_after <= self._not_before:
            raise ConfigurationError(
                "settings.not_after must be later than not_before", check="config.settings"
            )

    def issue(self, report_data: bytes) -> Evidence:
        """A raw SGX quote over ``report_data`` (the legacy extension's content)."""
        return Evidence(
            media_type=MEDIA_TYPE_LEGACY,
            data=self.device.quote(report_data),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=LEGACY_OID),
        )

    def create_credentials(self, key: ec.EllipticCurvePrivateKey | None = None) -> RatlsCredentials:
        """A fresh P-384 key (unless given) and its RA-TLS certificate with both extensions."""
        key = key or ec.generate_private_key(ec.SECP384R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        legacy_quote = self.device.quote(report_data_for(SCHEME_LEGACY, spki_der=spki))
        claims = encode_claims(spki, algorithm=self._algorithm)
        material = {
            "claims": claims,
            "pubkey_hash_alg": self._algorithm.encode(),
            "pubkey_hash": hashlib.new(self._algorithm, spki).digest(),
        }
        tcg_quote = self.device.quote(report_data_for(SCHEME_TCG, spki_der=spki, material=material))
        der = build_ratls_certificate(
            key,
            legacy_quote=legacy_quote,
            tcg_evidence=encode_tcg_evidence(tcg_quote, claims),
            not_before=self._not_before,
            not_after=self._not_after,
        )
        return RatlsCredentials(private_key=key, certificate_der=der)

    def write_credentials(self, directory: Path | str) -> tuple[Path, Path]:
        """Create credentials and write them for a TLS server: (key path, cert path), 0600.

        ``directory`` is created (mode 0700) when missing.
        """
        return self.create_credentials().write(directory)

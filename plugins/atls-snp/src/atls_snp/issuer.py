"""Server side: SEV-SNP reports from the kernel's configfs-tsm interface (provider ``sev_guest``).

configfs-tsm (Linux >= 6.7) gives a guest a report for 64 bytes of report
data: make a report entry, optionally write ``privlevel`` (the VMPL to request
at), write ``inblob``, read ``outblob`` (the 1184-byte report) and ``auxblob``
(the host's certificate table, empty when the host has none), check that
``generation`` moved by exactly our writes (another writer on the same entry
would change it), remove the entry.  The filesystem is an argument so tests
can emulate configfs, which creates an entry's files itself.

The issued evidence is our envelope: the report and whatever certificates the
host supplied (or ``certificates`` from the settings, e.g. a VCEK fetched at
deployment), so a client can verify without calling AMD's service.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Protocol

from atls_core.errors import ATLSError, ConfigurationError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import IssuerSpec, Settings
from atls_snp.certs import split_certificates
from atls_snp.envelope import encode_envelope, parse_certificate_table
from atls_snp.report import REPORT_SIZE
from atls_snp.specs import (
    CHALLENGE_PATH,
    CONFIGFS_CHALLENGE_ISSUER_SPEC,
    CONFIGFS_ISSUER_SPEC,
    SNP_EVIDENCE_MEDIA_TYPE,
)

__all__ = [
    "DEFAULT_TSM_ROOT",
    "ConfigfsSnpIssuer",
    "IssuerError",
    "OsTsmFilesystem",
    "TsmFilesystem",
    "TsmReport",
    "configfs_snp_report",
]

DEFAULT_TSM_ROOT = Path("/sys/kernel/config/tsm/report")
REPORT_DATA_SIZE = 64


class IssuerError(ATLSError):
    """The guest could not produce a report (no SEV-SNP guest, kernel refused...)."""

    default_check = "issuer"


class TsmFilesystem(Protocol):
    """The few filesystem operations configfs-tsm needs."""

    def mkdir(self, path: Path) -> None: ...
    def rmdir(self, path: Path) -> None: ...
    def read(self, path: Path) -> bytes: ...
    def write(self, path: Path, data: bytes) -> None: ...


class OsTsmFilesystem:
    """The real thing: configfs under /sys/kernel/config."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path, 0o700)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def read(self, path: Path) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    def write(self, path: Path, data: bytes) -> None:
        with open(path, "wb", buffering=0) as handle:
            handle.write(data)


class TsmReport:
    """A report and the certificate table the host returned with it."""

    def __init__(self, report: bytes, auxblob: bytes) -> None:
        self.report = report
        self.auxblob = auxblob


def _generation(fs: TsmFilesystem, entry: Path) -> int:
    text = fs.read(entry / "generation").decode("ascii", errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        raise IssuerError(
            "configfs-tsm generation is not a number", check="tsm.generation", actual=text
        ) from None


def _auxblob(fs: TsmFilesystem, entry: Path) -> bytes:
    try:
        return fs.read(entry / "auxblob")
    except FileNotFoundError:
        return b""  # kernels before auxblob, or a provider without it


def configfs_snp_report(
    report_data: bytes,
    *,
    root: Path = DEFAULT_TSM_ROOT,
    fs: TsmFilesystem | None = None,
    provider: str = "sev_guest",
    privlevel: int | None = None,
) -> TsmReport:
    """An SEV-SNP report over ``report_data`` and the host's certificate table."""
    if len(report_data) != REPORT_DATA_SIZE:
        raise ConfigurationError(
            "report data must be exactly 64 bytes",
            check="issuer.report_data",
            expected=REPORT_DATA_SIZE,
            actual=len(report_data),
        )
    fs = fs or OsTsmFilesystem()
    entry = Path(root) / f"atls-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        fs.mkdir(entry)
    except FileNotFoundError:
        raise IssuerError(
            f"{root} does not exist: not an SEV-SNP guest with configfs-tsm (Linux >= 6.7)",
            check="tsm.unavailable",
        ) from None
    except OSError as exc:
        raise IssuerError(
            f"cannot create a configfs-tsm report entry: {exc.strerror}", check="tsm.unavailable"
        ) from None
    try:
        found = fs.read(entry / "provider").decode("ascii", errors="replace").strip()
        if found != provider:
            raise IssuerError(
                "configfs-tsm provider is not the expected one",
                check="tsm.provider",
                expected=provider,
                actual=found,
            )
        before = _generation(fs, entry)
        writes = 1
        if privlevel is not None:
            fs.write(entry / "privlevel", str(privlevel).encode())
            writes += 1
        fs.write(entry / "inblob", report_data)
        report = fs.read(entry / "outblob")
        auxblob = _auxblob(fs, entry)
        after = _generation(fs, entry)
        if after != before + writes:
            raise IssuerError(
                "configfs-tsm report entry was written concurrently; the report may not be ours",
                check="tsm.generation",
                expected=before + writes,
                actual=after,
            )
    except OSError as exc:
        raise IssuerError(f"configfs-tsm failed: {exc.strerror or exc}", check="tsm.io") from None
    finally:
        with contextlib.suppress(OSError):
            fs.rmdir(entry)
    if len(report) != REPORT_SIZE or report[0x50:0x90] != report_data:
        raise IssuerError(
            "configfs-tsm returned something other than a report over our report data",
            check="tsm.outblob",
            expected=f"{REPORT_SIZE} bytes with our report data",
            actual=len(report),
        )
    return TsmReport(report, auxblob)


def _privlevel(settings: Settings) -> int | None:
    value = settings.get("privlevel")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise ConfigurationError(
            "settings.privlevel must be an integer 0..3", check="config.settings", actual=value
        )
    return value


def _extra_certificates(settings: Settings) -> list[bytes]:
    value = settings.get("certificates")
    if value is None:
        return []
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(
            "settings.certificates must be a file path", check="config.settings"
        )
    try:
        data = Path(os.fspath(value)).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"settings.certificates: cannot read {value}: {exc.strerror}", check="config.settings"
        ) from None
    return split_certificates(data, check="config.settings")


class ConfigfsSnpIssuer:
    """Reports for ``atls-v1`` report data, in a certificate or answered to a challenge."""

    def __init__(
        self,
        settings: Settings,
        *,
        spec: IssuerSpec = CONFIGFS_ISSUER_SPEC,
        fs: TsmFilesystem | None = None,
    ) -> None:
        self.spec = spec
        root = settings.get("root", str(DEFAULT_TSM_ROOT))
        provider = settings.get("provider", "sev_guest")
        if not isinstance(root, (str, os.PathLike)) or not isinstance(provider, str):
            raise ConfigurationError(
                "settings.root and settings.provider must be strings", check="config.settings"
            )
        self._root = Path(os.fspath(root))
        self._provider = provider
        self._privlevel = _privlevel(settings)
        self._extra = _extra_certificates(settings)
        self._fs = fs

    @classmethod
    def challenge_issuer(
        cls, settings: Settings, *, fs: TsmFilesystem | None = None
    ) -> ConfigfsSnpIssuer:
        return cls(settings, spec=CONFIGFS_CHALLENGE_ISSUER_SPEC, fs=fs)

    def issue(self, report_data: bytes, *, certificate_sha256: bytes | None = None) -> Evidence:
        """``certificate_sha256`` is accepted and unused: atls-v1 report data binds the key."""
        del certificate_sha256
        answer = configfs_snp_report(
            report_data,
            root=self._root,
            fs=self._fs,
            provider=self._provider,
            privlevel=self._privlevel,
        )
        table = parse_certificate_table(answer.auxblob) if answer.auxblob.strip(b"\0") else []
        certificates = [cert for _role, cert in table] + self._extra
        if self.spec.transport is Transport.CERTIFICATE:
            source = EvidenceSource(transport=Transport.CERTIFICATE, oid=self.spec.oid)
        else:
            source = EvidenceSource(transport=Transport.CHALLENGE, location=CHALLENGE_PATH)
        return Evidence(
            media_type=SNP_EVIDENCE_MEDIA_TYPE,
            data=encode_envelope(answer.report, certificates),
            source=source,
        )

"""Server side: SEV-SNP reports from the kernel's configfs-tsm interface (provider ``sev_guest``).

:func:`atls_core.tsm.tsm_report` makes the report entry (with ``privlevel``, the
VMPL to request at) and reads ``outblob`` (the 1184-byte report) and ``auxblob``
(the host's certificate table, empty when the host has none); this module checks
that the report is one over our report data.

The issued evidence is our envelope: the report and whatever certificates the
host supplied (or ``certificates`` from the settings, e.g. a VCEK fetched at
deployment), so a client can verify without calling AMD's service.
"""

from __future__ import annotations

import os
from pathlib import Path

from atls_core.errors import ConfigurationError, IssuerError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import IssuerSpec, Settings
from atls_core.tsm import DEFAULT_TSM_ROOT, OsTsmFilesystem, TsmBlobs, TsmFilesystem, tsm_report
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
    "configfs_snp_report",
]


def configfs_snp_report(
    report_data: bytes,
    *,
    root: Path = DEFAULT_TSM_ROOT,
    fs: TsmFilesystem | None = None,
    provider: str = "sev_guest",
    privlevel: int | None = None,
) -> TsmBlobs:
    """An SEV-SNP report (``outblob``) over ``report_data`` and the host's certificate table."""
    answer = tsm_report(
        report_data,
        guest="an SEV-SNP",
        provider=provider,
        root=root,
        fs=fs,
        privlevel=privlevel,
        auxblob=True,
    )
    report = answer.outblob
    if len(report) != REPORT_SIZE or report[0x50:0x90] != report_data:
        raise IssuerError(
            "configfs-tsm returned something other than a report over our report data",
            check="tsm.outblob",
            expected=f"{REPORT_SIZE} bytes with our report data",
            actual=len(report),
        )
    return answer


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
            data=encode_envelope(answer.outblob, certificates),
            source=source,
        )

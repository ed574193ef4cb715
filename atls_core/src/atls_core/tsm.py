"""configfs-tsm: the kernel's one interface for a confidential guest's evidence.

Linux >= 6.7 gives a guest evidence over 64 bytes of report data the same way
whatever the TEE (a TDX quote, an SEV-SNP report): make a report entry, check
its ``provider``, optionally write ``privlevel``, write ``inblob``, read
``outblob`` (and ``auxblob``, the host's certificates, where the provider has
it), check that ``generation`` moved by exactly our writes (another writer on
the same entry would change it), remove the entry.  The TEE plugins check what
``outblob`` holds.  The filesystem is an argument so tests can emulate configfs,
which creates an entry's files itself (:mod:`atls_core.testing.tsm`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Protocol

import attrs

from atls_core.errors import ConfigurationError, IssuerError

__all__ = [
    "DEFAULT_TSM_ROOT",
    "REPORT_DATA_SIZE",
    "OsTsmFilesystem",
    "TsmBlobs",
    "TsmFilesystem",
    "check_report_data",
    "tdx_quote",
    "tsm_report",
]

DEFAULT_TSM_ROOT = Path("/sys/kernel/config/tsm/report")
REPORT_DATA_SIZE = 64


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


@attrs.frozen
class TsmBlobs:
    """What the kernel returned: ``outblob`` and ``auxblob`` (empty when there is none)."""

    outblob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    auxblob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


def check_report_data(report_data: bytes) -> None:
    """Every TEE's report data is exactly 64 bytes; anything else is a caller's mistake."""
    if len(report_data) != REPORT_DATA_SIZE:
        raise ConfigurationError(
            "report data must be exactly 64 bytes",
            check="issuer.report_data",
            expected=REPORT_DATA_SIZE,
            actual=len(report_data),
        )


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


def tsm_report(
    report_data: bytes,
    *,
    guest: str,
    provider: str | None,
    root: Path = DEFAULT_TSM_ROOT,
    fs: TsmFilesystem | None = None,
    privlevel: int | None = None,
    auxblob: bool = False,
) -> TsmBlobs:
    """``outblob`` and ``auxblob`` over ``report_data`` from one fresh report entry.

    ``guest`` names the TEE in the error for a machine without configfs-tsm;
    ``provider`` (when not ``None``) must match the entry's ``provider`` file, so
    evidence from another TEE's provider is never passed off as this one's.
    ``auxblob`` reads the host's certificates as well (SEV-SNP's certificate table).
    """
    check_report_data(report_data)
    fs = fs or OsTsmFilesystem()
    entry = Path(root) / f"atls-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        fs.mkdir(entry)
    except FileNotFoundError:
        raise IssuerError(
            f"{root} does not exist: not {guest} guest with configfs-tsm (Linux >= 6.7)",
            check="tsm.unavailable",
        ) from None
    except OSError as exc:
        raise IssuerError(
            f"cannot create a configfs-tsm report entry: {exc.strerror or exc}",
            check="tsm.unavailable",
        ) from None
    try:
        if provider is not None:
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
        blobs = TsmBlobs(fs.read(entry / "outblob"), _auxblob(fs, entry) if auxblob else b"")
        after = _generation(fs, entry)
        if after != before + writes:
            raise IssuerError(
                "configfs-tsm report entry was written concurrently; the evidence may not be ours",
                check="tsm.generation",
                expected=before + writes,
                actual=after,
            )
        return blobs
    except OSError as exc:
        raise IssuerError(f"configfs-tsm failed: {exc.strerror or exc}", check="tsm.io") from None
    finally:
        with contextlib.suppress(OSError):
            fs.rmdir(entry)


def tdx_quote(
    report_data: bytes,
    *,
    root: Path = DEFAULT_TSM_ROOT,
    fs: TsmFilesystem | None = None,
    provider: str | None = "tdx_guest",
) -> bytes:
    """A TDX quote over ``report_data`` from configfs-tsm (the ``tdx_guest`` provider).

    Every plugin whose server side quotes a TD asks here (atls-tdx's issuers,
    atls-ita's attester), so none imports another for it.
    """
    quote = tsm_report(report_data, guest="a TDX", provider=provider, root=root, fs=fs).outblob
    if not quote:
        raise IssuerError("configfs-tsm returned an empty quote", check="tsm.outblob")
    return quote

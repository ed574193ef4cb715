"""An emulated configfs-tsm (provider ``sev_guest``) over a real directory, and certificate tables.

A real configfs creates ``inblob``, ``outblob``, ``auxblob``, ``privlevel``,
``generation`` and ``provider`` when userspace makes an entry, bumps
``generation`` on every write and produces the report (and the host's
certificate table) when ``outblob``/``auxblob`` are read.  Pass an instance as
``fs=`` to :class:`atls_snp.issuer.ConfigfsSnpIssuer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["GUIDS", "FakeConfigfsTsm", "certificate_table"]

GUIDS = {
    "ark": "c0b406a4-a803-4952-9743-3fb6014cd0ae",
    "ask": "4ab7b379-bbac-4fe4-a02f-05aef327c782",
    "vcek": "63da758d-e664-4564-adc5-f4b93be8accd",
    "vlek": "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
    "crl": "92f81bc3-5811-4d3d-97ff-d19f88dc67ea",
}


def certificate_table(
    entries: Sequence[tuple[str, bytes]], *, little_endian: bool = False
) -> bytes:
    """A GHCB certificate table: (role, blob) entries, then the all-zero terminator."""
    header = bytearray()
    payload = bytearray()
    start = 24 * (len(entries) + 1)
    for role, blob in entries:
        guid = uuid.UUID(GUIDS[role])
        header += guid.bytes_le if little_endian else guid.bytes
        header += (start + len(payload)).to_bytes(4, "little") + len(blob).to_bytes(4, "little")
        payload += blob
    header += bytes(24)
    return bytes(header + payload)


class FakeConfigfsTsm:
    """configfs-tsm report entries emulated in ``root`` (see the module doc).

    ``report_maker(report_data, privlevel)`` makes the report; ``auxblob`` is the
    host's certificate table (``None``: the kernel has no auxblob file).
    ``interfere`` simulates another process writing the same entry.
    """

    def __init__(
        self,
        root: Path,
        report_maker: Callable[[bytes, int], bytes],
        *,
        auxblob: bytes | None = b"",
        provider: str = "sev_guest",
        interfere: bool = False,
    ) -> None:
        self.root = root
        self._report_maker = report_maker
        self.auxblob = auxblob
        self.provider = provider
        self.interfere = interfere
        self.created: list[Path] = []
        self.removed: list[Path] = []

    def mkdir(self, path: Path) -> None:
        if path.parent != self.root or not self.root.is_dir():
            raise FileNotFoundError(str(path.parent))
        path.mkdir(mode=0o700)
        for name in ("inblob", "outblob"):
            (path / name).write_bytes(b"")
        if self.auxblob is not None:
            (path / "auxblob").write_bytes(b"")
        (path / "privlevel").write_text("0\n")
        (path / "generation").write_text("0\n")
        (path / "provider").write_text(self.provider + "\n")
        self.created.append(path)

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
        self.removed.append(path)

    def read(self, path: Path) -> bytes:
        entry = path.parent
        if path.name == "outblob":
            inblob = (entry / "inblob").read_bytes()
            if len(inblob) != 64:
                raise OSError(22, "Invalid argument")
            if self.interfere:
                self._bump(entry)
            privlevel = int((entry / "privlevel").read_text())
            return self._report_maker(inblob, privlevel)
        if path.name == "auxblob":
            if self.auxblob is None:
                raise FileNotFoundError(str(path))
            return self.auxblob
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        if path.name not in ("inblob", "privlevel"):
            raise PermissionError(str(path))
        if path.name == "privlevel" and int(data) > 3:
            raise OSError(22, "Invalid argument")
        path.write_bytes(data)
        self._bump(path.parent)

    @staticmethod
    def _bump(entry: Path) -> None:
        generation = int((entry / "generation").read_text())
        (entry / "generation").write_text(f"{generation + 1}\n")

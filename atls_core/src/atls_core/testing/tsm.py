"""An emulated configfs-tsm over a real directory, for any TEE's issuer tests.

A real configfs creates ``inblob``, ``outblob``, ``privlevel``, ``generation``,
``provider`` (and ``auxblob`` where the provider has it) when userspace makes an
entry, bumps ``generation`` on every write and produces the evidence when
``outblob`` is read.  Pass an instance as ``fs=`` to
:func:`atls_core.tsm.tsm_report` or to a plugin's configfs-tsm issuer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

__all__ = ["EmulatedConfigfsTsm"]


class EmulatedConfigfsTsm:
    """configfs-tsm report entries emulated in ``root``.

    ``maker(report_data, privlevel)`` makes ``outblob``; ``auxblob`` is the
    host's certificate table (``None``: the entry has no auxblob file).
    ``interfere`` simulates another process writing the same entry.  Plugins
    subclass it to set ``default_provider``.
    """

    default_provider: ClassVar[str] = "tdx_guest"

    def __init__(
        self,
        root: Path,
        maker: Callable[[bytes, int], bytes],
        *,
        auxblob: bytes | None = None,
        provider: str | None = None,
        interfere: bool = False,
    ) -> None:
        self.root = root
        self._maker = maker
        self.auxblob = auxblob
        self.provider = provider or self.default_provider
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
            return self._maker(inblob, int((entry / "privlevel").read_text()))
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

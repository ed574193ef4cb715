"""Installed distributions' entry points and metadata, read from their ``*.dist-info`` folders.

``importlib.metadata`` answers the same questions but costs a command-line start
more than the rest of ``atls plugins``: it imports ``email``, ``zipfile``,
``csv`` and more.  The registry needs only three things: the entry points of
one group, the distribution's name and version, and its ``Requires-Dist``
lines.  This reader gets them by listing the folders on ``sys.path`` and reading
``entry_points.txt`` and the header of ``METADATA`` (``PKG-INFO`` for
``*.egg-info``), with the same rules as ``importlib.metadata``: path order, the
first distribution of a normalised name wins, empty path entries mean the
current folder.  One difference: an ``entry_points.txt`` line without ``=``
is skipped, where ``importlib.metadata`` raises (for every group, so one
malformed distribution would hide every plugin).

Whatever it does not read itself, it hands to ``importlib.metadata``: a zip
archive on the path or a meta-path finder that supplies distributions of its
own (then every answer comes from ``importlib.metadata``), and an
``*.egg-info``'s ``requires.txt``.  A test checks its answers against
``importlib.metadata``'s for the installed environment.
"""

from __future__ import annotations

import os
import re
import sys

TYPE_CHECKING = False  # not typing's: the CLI's start is what this module saves
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

__all__ = ["Distribution", "EntryPoint", "entry_points"]

_SUFFIXES = (".dist-info", ".egg-info")


class _Unreadable(Exception):
    """The path holds something only importlib.metadata reads (a zip archive)."""


def _dotted(text: str) -> bool:
    """``[\\w.]+``: word characters (Unicode, as ``re`` reads them) and dots."""
    return bool(text) and all(c.isalnum() or c in "_." for c in text)


def _target(value: str) -> tuple[str, str | None] | None:
    """``(module, attr)`` of ``module[:attr] [extras]``, read as ``importlib.metadata``'s
    pattern reads it (``[\\w.]+\\s*(:\\s*[\\w.]+\\s*)?(\\[.*\\]\\s*)?``), else None.

    String methods rather than that pattern: compiling it cost each ``atls plugins`` more
    than reading every target with them.
    """
    head, bracket, extras = value.partition("[")
    inside = extras.rstrip()  # whitespace may follow the closing bracket, newlines included
    if bracket and (not inside.endswith("]") or "\n" in inside):
        return None
    module, colon, attr = head.partition(":")
    module, attr = module.rstrip(), attr.strip()  # spaces around the colon; none before
    if not _dotted(module) or (colon and not _dotted(attr)):
        return None
    return module, attr if colon else None


def normalize(name: str) -> str:
    """``importlib.metadata``'s key for a distribution name (``Foo.Bar-baz`` -> ``foo_bar_baz``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


class Distribution:
    """One ``*.dist-info`` (or ``*.egg-info``) folder; its files are read on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._headers: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"Distribution({self.path!r})"

    def _read(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.path, name), encoding="utf-8") as file:
                return file.read()
        except OSError:
            return None

    def _header(self) -> dict[str, list[str]]:
        """The metadata's RFC 822 header (the body, a long description, is never read)."""
        if self._headers is None:
            text = self._read("METADATA") or self._read("PKG-INFO") or ""
            head = text.partition("\n\n")[0]  # the body (often a whole README) is never split
            headers: dict[str, list[str]] = {}
            values: list[str] | None = None
            for line in head.splitlines():
                if not line:
                    break
                if line[0] in " \t":  # a folded line continues the previous value
                    if values:
                        values[-1] += "\n" + line
                    continue
                key, sep, value = line.partition(":")
                if not sep:
                    values = None
                    continue
                values = headers.setdefault(key.strip().lower(), [])
                values.append(value.strip())
            self._headers = headers
        return self._headers

    def header(self, key: str) -> list[str]:
        """Every value of ``key`` (case-insensitive) in the metadata, in order."""
        return list(self._header().get(key.lower(), ()))

    @property
    def metadata(self) -> dict[str, str]:
        """First value of each header, keyed as ``importlib.metadata`` spells the common ones."""
        return {"Name": self.name, "Version": self.version}

    @property
    def name(self) -> str:
        return next(iter(self.header("Name")), "")

    @property
    def version(self) -> str:
        return next(iter(self.header("Version")), "")

    @property
    def requires(self) -> list[str] | None:
        """``Requires-Dist`` lines, as ``importlib.metadata.Distribution.requires``."""
        found = self.header("Requires-Dist")
        if found:
            return found
        if not os.path.exists(os.path.join(self.path, "requires.txt")):
            return None
        import importlib.metadata as md  # egg-info sections become markers: its conversion
        from pathlib import Path

        return md.PathDistribution(Path(self.path)).requires

    def entry_points(self) -> list[EntryPoint]:
        """The ``entry_points.txt`` entries (``importlib.metadata``'s reading of that file)."""
        found: list[EntryPoint] = []
        group: str | None = None
        for raw in (self._read("entry_points.txt") or "").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                group = line.strip("[]")
                continue
            name, sep, value = line.partition("=")
            if group is not None and sep:
                found.append(EntryPoint(name.strip(), value.strip(), group, dist=self))
        return found


class EntryPoint:
    """A named target ``module`` or ``module:attr``, as in ``importlib.metadata``."""

    def __init__(
        self, name: str, value: str, group: str, *, dist: Distribution | None = None
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    def load(self) -> Any:
        """Import the target module and return it, or its attribute."""
        import importlib

        target = _target(self.value)
        if target is None:
            raise ValueError(f"entry point {self.name!r} has an invalid target {self.value!r}")
        module, attr = target
        loaded: Any = importlib.import_module(module)
        for part in filter(None, (attr or "").split(".")):
            loaded = getattr(loaded, part)
        return loaded


def _folders(entry: str) -> Iterator[tuple[str, str]]:
    """(normalised name, folder) of each distribution in one path entry, in listing order."""
    root = entry or "."
    try:
        children = os.listdir(root)
    except NotADirectoryError:
        raise _Unreadable(root) from None
    except OSError:
        return
    for child in children:
        if child.lower().endswith(_SUFFIXES):
            yield normalize(child.lower().rpartition(".")[0].partition("-")[0]), child


def distributions(path: Sequence[str] | None = None) -> list[Distribution]:
    """The distributions on ``path`` (default ``sys.path``), first of each name only."""
    seen: set[str] = set()
    found: list[Distribution] = []
    for entry in sys.path if path is None else path:
        root = str(entry)  # as importlib.metadata does (a Path entry is a folder too)
        for key, child in _folders(root):
            if key not in seen:
                seen.add(key)
                found.append(Distribution(os.path.join(root or ".", child)))
    return found


def _only_path_finder() -> bool:
    """Whether ``importlib.metadata`` would look only where this reader looks."""
    import importlib.machinery

    return all(
        finder is importlib.machinery.PathFinder or not hasattr(finder, "find_distributions")
        for finder in sys.meta_path
    )


def entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group``, each knowing its distribution.

    :class:`EntryPoint` objects, or ``importlib.metadata``'s where this reader
    would not see everything it sees; both have ``name``, ``value``, ``dist``
    (``metadata["Name"]``, ``version``, ``requires``) and ``load()``.
    """
    if _only_path_finder():
        try:
            return [ep for dist in distributions() for ep in _of_group(dist, group)]
        except _Unreadable:
            pass
    import importlib.metadata as md

    return list(md.entry_points(group=group))


def _of_group(dist: Distribution, group: str) -> Iterable[EntryPoint]:
    return [ep for ep in dist.entry_points() if ep.group == group]

"""The metadata reader gives importlib.metadata's answers, without importing it."""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import textwrap
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from atls_core import installed
from atls_core.testing.plugins import modules_loaded_by

Row = tuple[str, str, str, str, str, tuple[str, ...] | None]


def _rows(entry_points: Iterable[Any]) -> list[Row]:
    """What the registry reads of each entry point, in order."""
    rows = []
    for ep in entry_points:
        dist = ep.dist
        requires = dist.requires
        rows.append(
            (
                ep.group,
                ep.name,
                ep.value,
                dist.metadata["Name"],
                dist.version,
                None if requires is None else tuple(requires),
            )
        )
    return rows


def _groups() -> set[str]:
    return {ep.group for dist in md.distributions() for ep in dist.entry_points}


def test_the_installed_environment_reads_the_same() -> None:
    assert installed._only_path_finder(), "the reader itself must answer here, not its fallback"
    assert all(isinstance(ep, installed.EntryPoint) for ep in installed.entry_points("atls"))
    groups = _groups()
    assert "atls" in groups
    assert "console_scripts" in groups
    for group in sorted(groups):
        assert _rows(installed.entry_points(group)) == _rows(md.entry_points(group=group)), group


def _dist_info(site: Path, folder: str, metadata: str, entry_points: str) -> None:
    info = site / folder
    info.mkdir(parents=True)
    (info / "METADATA").write_text(textwrap.dedent(metadata).lstrip())
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two path entries with tricky metadata; ``sys.path`` is exactly them (and a missing one)."""
    first, second = tmp_path / "first", tmp_path / "second"
    _dist_info(
        first,
        "Foo.Bar-1.0.dist-info",
        """
        Metadata-Version: 2.1
        Name: Foo.Bar
        Version: 1.0
        Summary: a summary
          folded onto a second line
        Requires-Dist: atls-core<0.3,>=0.2
        Requires-Dist: other; extra == 'test'

        Name: not-a-header (the body starts after the blank line)
        """,
        """
        # a comment
        [atls]
        foo = foo_plugin
          spaced   =   spaced.module : attr.inner [extra]

        [console_scripts]
        foo-cli = foo_plugin:main
        """,
    )
    _dist_info(
        first,
        "no_requirements-3.dist-info",
        """
        Metadata-Version: 2.1
        Name: no-requirements
        Version: 3
        """,
        """
        [atls]
        bare = bare_plugin
        """,
    )
    # the same distribution again, later on the path: shadowed, as importlib.metadata does
    _dist_info(
        second,
        "foo_bar-2.0.dist-info",
        """
        Metadata-Version: 2.1
        Name: foo_bar
        Version: 2.0
        """,
        """
        [atls]
        shadowed = shadowed_plugin
        """,
    )
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    return first, second


def test_fake_sites_read_the_same(sites: tuple[Path, Path]) -> None:
    assert all(isinstance(ep, installed.EntryPoint) for ep in installed.entry_points("atls"))
    for group in ("atls", "console_scripts"):
        assert _rows(installed.entry_points(group)) == _rows(md.entry_points(group=group))
    names = [(ep.name, ep.value) for ep in installed.entry_points("atls")]
    assert sorted(names) == [
        ("bare", "bare_plugin"),
        ("foo", "foo_plugin"),
        ("spaced", "spaced.module : attr.inner [extra]"),
    ]


def test_the_header_ends_at_the_first_blank_line(sites: tuple[Path, Path]) -> None:
    (dist,) = [d for d in installed.distributions() if d.name == "Foo.Bar"]
    assert dist.header("name") == ["Foo.Bar"]
    assert dist.header("Summary") == ["a summary\n  folded onto a second line"]
    assert dist.requires == ["atls-core<0.3,>=0.2", "other; extra == 'test'"]
    (bare,) = [d for d in installed.distributions() if d.name == "no-requirements"]
    assert bare.requires is None


def test_a_line_without_a_target_is_skipped(sites: tuple[Path, Path]) -> None:
    """importlib.metadata raises on it, for every plugin; the reader skips that line only."""
    first, _ = sites
    (first / "no_requirements-3.dist-info" / "entry_points.txt").write_text(
        "[atls]\nbroken\nbare = bare_plugin\n"
    )
    assert [ep.name for ep in installed.entry_points("atls") if ep.value == "bare_plugin"] == [
        "bare"
    ]


def test_a_zip_archive_on_the_path_is_read_by_importlib_metadata(
    tmp_path: Path, sites: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[atls]\nzipped = z\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    found = installed.entry_points("atls")
    assert "zipped" in [ep.name for ep in found]
    assert _rows(found) == _rows(md.entry_points(group="atls"))


def test_an_egg_info_gives_importlib_metadata_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "legacy-0.1.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: legacy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[atls]\nlegacy = legacy_plugin\n")
    (info / "requires.txt").write_text(
        "atls-core>=0.2\n\n[test]\npytest\n\n[:python_version < '4']\nx\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    (ep,) = installed.entry_points("atls")
    assert ep.dist is not None
    assert ep.dist.requires is not None
    assert "atls-core>=0.2" in ep.dist.requires
    assert _rows([ep]) == _rows(md.entry_points(group="atls"))


def test_load_returns_the_module_or_its_attribute() -> None:
    module = installed.EntryPoint("x", "atls_core.installed", "atls").load()
    assert module is installed
    attribute = installed.EntryPoint("x", "atls_core.installed:EntryPoint.load", "atls").load()
    assert attribute is installed.EntryPoint.load
    with pytest.raises(ValueError, match="invalid target"):
        installed.EntryPoint("x", "not a target!", "atls").load()


def test_reading_entry_points_imports_no_metadata_library() -> None:
    modules = modules_loaded_by(
        "from atls_core import installed\nassert installed.entry_points('atls')"
    )
    assert "importlib.metadata" not in modules
    assert "email" not in modules
    assert "zipfile" not in modules


class _ExtraFinder:
    """A meta-path finder that supplies a distribution from outside ``sys.path``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, *_args: object) -> None:
        return None

    def find_distributions(self, context: object = None) -> list[md.Distribution]:
        return [md.PathDistribution(self.folder)]


def test_a_finder_with_distributions_of_its_own_is_asked_through_importlib_metadata(
    tmp_path: Path, sites: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere" / "hidden-1.0.dist-info"
    elsewhere.mkdir(parents=True)
    (elsewhere / "METADATA").write_text("Name: hidden\nVersion: 1.0\n")
    (elsewhere / "entry_points.txt").write_text("[atls]\nhidden = hidden_plugin\n")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _ExtraFinder(elsewhere)])
    found = installed.entry_points("atls")
    assert "hidden" in [ep.name for ep in found]
    assert _rows(found) == _rows(md.entry_points(group="atls"))


_TARGET_PATTERN = re.compile(r"(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+)\s*)?(?:\[.*\]\s*)?\Z")
"""How entry-point targets were read with a pattern (importlib.metadata's, anchored at the end)."""


@pytest.mark.parametrize(
    "value",
    [
        "pkg.mod",
        "pkg.mod:attr.inner",
        "pkg.mod : attr ",
        "pkg.mod [extra]",
        "pkg.mod:attr [a, b] \n",
        "pkg.mod:attr [a\nb]",
        " pkg.mod",
        "pkg.mod:",
        "pkg.mod:a:b",
        "pkg-mod",
        "pkg.mod [extra",
        "pkg.mod[x]y",
        "pkg.mod\n",
        "péché.mod:ß",
        "",
    ],
)
def test_targets_are_read_as_the_pattern_reads_them(value: str) -> None:
    match = _TARGET_PATTERN.match(value)
    expected = (match.group("module"), match.group("attr")) if match else None
    assert installed._target(value) == expected

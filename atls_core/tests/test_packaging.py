"""A package index shows the installed metadata, not pyproject.toml: check it where users get it.

Under nox these tests read the wheels built from the sdists (the integration session reads all).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
from pathlib import Path

import pytest

REPOSITORY = "https://github.com/atls-project/atls"
# atls-core and every plugin folder of this repository (only atls-core when run from its sdist).
PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
OURS = ["atls-core", *sorted(p.parent.name for p in PLUGINS.glob("*/pyproject.toml"))]
CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Topic :: Security :: Cryptography",
    "Typing :: Typed",
}


def _editable(dist: md.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    return text is not None and bool(json.loads(text).get("dir_info", {}).get("editable"))


def _built(name: str) -> bool:
    """Installed from a built distribution: an editable install's metadata is a snapshot of the
    source tree when it was installed, not what an index receives (and has no LICENSE)."""
    try:
        return not _editable(md.distribution(name))
    except md.PackageNotFoundError:
        return False


BUILT = [name for name in OURS if _built(name)]
pytestmark = pytest.mark.skipif(
    not BUILT, reason="no atls distribution installed from a wheel here (nox installs them)"
)


@pytest.fixture(params=BUILT)
def dist(request: pytest.FixtureRequest) -> md.Distribution:
    name: str = request.param
    return md.distribution(name)


def test_license_text_is_installed(dist: md.Distribution) -> None:
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    (license_file,) = [f for f in dist.files or () if f.parts[-2:] == ("licenses", "LICENSE")]
    text = license_file.read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_long_description_says_what_it_is_and_how_to_install(dist: md.Distribution) -> None:
    name = dist.metadata["Name"]
    assert dist.metadata["Description-Content-Type"] == "text/markdown"
    description = str(dist.metadata.json["description"])
    lines = description.strip().splitlines()
    assert len(lines) > 30, lines
    assert lines[0] == f"# {name}"
    assert f"pip install {name}" in description
    # An index cannot follow links relative to the repository: every link must be absolute.
    targets = re.findall(r"\]\(([^)]+)\)", description)
    assert targets, "no links to the rest of the project"
    relative = [t for t in targets if not t.startswith(("https://", "#"))]
    assert relative == []


def test_classifiers(dist: md.Distribution) -> None:
    classifiers = set(dist.metadata.get_all("Classifier") or ())
    assert classifiers >= CLASSIFIERS
    assert any(c.startswith("Operating System ::") for c in classifiers)
    # The SPDX License-Expression supersedes license classifiers, which build tools refuse beside it.
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_project_urls_and_python(dist: md.Distribution) -> None:
    urls = dict(entry.split(", ", 1) for entry in dist.metadata.get_all("Project-URL") or ())
    assert set(urls) == {"Homepage", "Repository", "Issues", "Changelog"}
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    assert dist.metadata["Requires-Python"] == ">=3.11"

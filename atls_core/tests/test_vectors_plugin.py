"""The recorded-evidence plugin: skip without a folder, never when one was named or under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = {
    "conftest.py": (
        "def pytest_configure(config):\n"
        "    config.pluginmanager.import_plugin('atls_core.testing.vectors')\n"
    ),
    "test_needs_vectors.py": "def test_reads(atls_vectors):\n    assert atls_vectors.is_dir()\n",
}


def _run(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("ATLS_VECTORS", "CI")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_without_a_folder_the_vector_tests_skip_with_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "ATLS_VECTORS is unset" in done.stdout


@pytest.mark.parametrize("environ", [{"ATLS_VECTORS": "missing-folder"}, {"CI": "true"}])
def test_a_named_folder_that_is_missing_or_ci_fails_the_run(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    done = _run(tmp_path, **environ)
    assert done.returncode != 0
    assert "need the recorded evidence" in done.stdout + done.stderr


def test_a_named_folder_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    folder.mkdir()
    done = _run(tmp_path, ATLS_VECTORS=str(folder))
    assert done.returncode == 0, done.stdout
    assert "1 passed" in done.stdout

"""Recorded real evidence for tests, found through ``$ATLS_VECTORS``.

The evidence is not shipped with the code, so a fresh checkout has none: the tests that need it
are skipped, and the run ends with one line saying how many and why, instead of a failure per
file read.  Under ``CI=true`` a missing folder is an error instead, so continuous integration can
never pass by silently skipping the recorded evidence; so is a ``$ATLS_VECTORS`` naming a folder
that is not there (a typo must not read as "no vectors here").

A test needs the evidence when it carries the ``vectors`` marker or uses the ``atls_vectors`` /
``atls_vector`` fixtures (directly or through another fixture); :func:`vectors_root` and
:func:`vector` serve helpers that are not fixtures.  A test suite opts in from its conftest::

    def pytest_configure(config):
        config.pluginmanager.import_plugin("atls_core.testing.vectors")

(rather than ``pytest_plugins``, which pytest refuses in a conftest below the rootdir when that
directory is only reached during collection).

PYTEST_DONT_REWRITE: this module has no asserts, and conftests may import it before registering it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = [
    "ENVIRONMENT",
    "MARKER",
    "Vector",
    "missing_reason",
    "vector",
    "vectors_root",
    "atls_vectors",
    "atls_vector",
    "vectors",
]

ENVIRONMENT = "ATLS_VECTORS"
MARKER = "vectors"
ROOT_FIXTURE = "atls_vectors"
# The report category of tests skipped for want of vectors: kept apart from other skips so the
# short summary does not list them file by file (the one line below says it all).
CATEGORY = "skipped without vectors"

Vector = Callable[..., Path]
"""``vector("tdx", "dcap-sample", "quote.bin")`` or ``vector("tdx/dcap-sample/quote.bin")``."""


def missing_reason() -> str | None:
    """Why the recorded evidence cannot be read, or None when it can."""
    value = os.environ.get(ENVIRONMENT, "")
    if not value:
        return (
            f"{ENVIRONMENT} is unset (set it to the recorded-evidence folder; nox uses "
            "../shared/vectors beside the checkout when it is there)"
        )
    path = Path(value)
    if not path.exists():
        return f"{ENVIRONMENT} points at {value} which does not exist"
    if not path.is_dir():
        return f"{ENVIRONMENT} points at {value} which is not a folder"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _must_run() -> bool:
    """Under CI, or when the folder was named: a wrong path is a mistake, not a reason to skip."""
    return _in_ci() or bool(os.environ.get(ENVIRONMENT))


def vectors_root() -> Path:
    """The recorded-evidence folder; skips the calling test without one (fails it in CI)."""
    reason = missing_reason()
    if reason is not None:
        if _must_run():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return Path(os.environ[ENVIRONMENT]).absolute()


def vector(*parts: str | os.PathLike[str]) -> Path:
    """One recorded file.  A folder that exists but lacks the file fails the test: a partial
    or misplaced recording must not look like a pass."""
    path = vectors_root().joinpath(*parts)
    if not path.is_file():
        pytest.fail(f"{ENVIRONMENT} is set but {path} is missing", pytrace=False)
    return path


@pytest.fixture
def atls_vectors() -> Path:
    """The recorded-evidence folder (the test is skipped without one)."""
    return vectors_root()


@pytest.fixture
def atls_vector(atls_vectors: Path) -> Vector:
    """:func:`vector`, as a fixture; depending on ``atls_vectors`` marks the test as needing them."""
    del atls_vectors
    return vector


@pytest.fixture
def vectors(atls_vector: Vector) -> Vector:
    """``vectors("tdx/dcap-sample/quote.bin")``: :func:`atls_vector` under the name test suites
    use (a suite's own ``vectors`` fixture takes precedence)."""
    return atls_vector


def _needs_vectors(item: pytest.Item) -> bool:
    if item.get_closest_marker(MARKER) is not None:
        return True
    return ROOT_FIXTURE in getattr(item, "fixturenames", ())


def pytest_configure(config: pytest.Config) -> None:
    declared = (line.split(":", 1)[0].strip() for line in config.getini("markers"))
    if MARKER not in declared:
        config.addinivalue_line(
            "markers", f"{MARKER}: needs the recorded evidence under ${ENVIRONMENT}"
        )


def pytest_itemcollected(item: pytest.Item) -> None:
    # Marked while collecting (before -m selects), so `-m vectors` also finds fixture users.
    if item.get_closest_marker(MARKER) is None and _needs_vectors(item):
        item.add_marker(MARKER)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (or, in CI, refuse) the selected vector tests before any of them starts."""
    reason = missing_reason()
    if reason is None:
        return
    needing = [item for item in items if _needs_vectors(item)]
    if not needing:
        return
    if _must_run():
        why = (
            "CI=true does not allow skipping them"
            if _in_ci()
            else f"unset {ENVIRONMENT} to skip them"
        )
        raise pytest.UsageError(
            f"atls: {_tests(len(needing))} need the recorded evidence, but {reason}; {why}"
        )
    skip = pytest.mark.skip(reason=reason)
    for item in needing:
        item.add_marker(skip)


def _skipped_for_vectors(report: pytest.TestReport | pytest.CollectReport) -> bool:
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return False
    reason = missing_reason()
    return reason is not None and report.longrepr[2].removeprefix("Skipped: ") == reason


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport | pytest.CollectReport,
) -> tuple[str, str, str] | None:
    if _skipped_for_vectors(report):
        return CATEGORY, "s", "SKIPPED"
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = len(terminalreporter.stats.get(CATEGORY, []))
    if skipped:
        terminalreporter.write_line(f"atls: {_tests(skipped)} skipped: {missing_reason()}")


def _tests(count: int) -> str:
    return f"{count} vector test{'' if count == 1 else 's'}"

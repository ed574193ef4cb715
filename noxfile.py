"""Build every distribution once, then test each from its built wheel.

`nox` runs the default sessions in order: lint, typecheck, build, the
per-distribution tests (each in a fresh virtualenv, installed from dist/),
the integration tests with all wheels together, and the third-party plugin
tests.  `nox -s demo` runs the demo; `nox -s benchmarks` prints the benchmarks.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
DISTRIBUTIONS: dict[str, Path] = {"atls-core": ROOT / "atls_core"} | {p.name: p for p in PLUGINS}
THIRD_PARTY = ROOT / "tests" / "third_party"

nox.options.sessions = ["lint", "typecheck", "build", "tests", "integration", "third_party"]
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "uv|virtualenv"

PYTHON = "3.11"
TOOLS = ["ruff==0.17.6", "mypy==2.4.1", "types-requests"]


def _vectors() -> str | None:
    """The recorded-evidence folder for the tests: $ATLS_VECTORS, else ../shared/vectors if present.

    An explicit value is passed on even when wrong, so the tests can say what is wrong with it;
    without either, the vector tests skip with one summary line (or fail the run under CI=true).
    """
    explicit = os.environ.get("ATLS_VECTORS")
    if explicit:
        return str(Path(explicit).absolute())  # sessions run in other directories
    beside = ROOT.parent / "shared" / "vectors"
    return str(beside) if beside.is_dir() else None


def _env() -> dict[str, str]:
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if (vectors := _vectors()) is not None:
        env["ATLS_VECTORS"] = vectors
    return env


def _wheel(distribution: str) -> Path:
    """The distribution's wheel in dist/; an error if missing or older than its sources."""
    stem = distribution.replace("-", "_")
    wheels = sorted(DIST.glob(f"{stem}-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(
            f"expected one {stem} wheel in {DIST}, found {wheels}: run `nox -s build`"
        )
    if _newest_source(distribution) > wheels[0].stat().st_mtime:
        raise RuntimeError(f"{wheels[0].name} is older than its sources: run `nox -s build`")
    return wheels[0]


@functools.cache
def _newest_source(distribution: str) -> float:
    """When the files a wheel is built from last changed (tests and caches aside; read once
    per run: every session asks for its wheels, and the sources do not change meanwhile)."""
    folder = DISTRIBUTIONS[distribution]
    files = [folder / "pyproject.toml", folder / "README.md", folder / "CHANGELOG.md"]
    files += [f for f in (folder / "src").rglob("*") if "__pycache__" not in f.parts]
    return max(f.stat().st_mtime for f in files if f.is_file())


def _ours(distribution: str, *, with_test: bool = True) -> list[str]:
    """Our distributions that `distribution` requires (its test extra too), transitively.

    Read from the pyproject files, so a new plugin or a new dependency between plugins needs no
    edit here, and none of ours is ever resolved from a package index instead of dist/.
    """
    project = tomllib.loads((DISTRIBUTIONS[distribution] / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    if with_test:
        requirements += project.get("optional-dependencies", {}).get("test", [])
    found: list[str] = []
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name in DISTRIBUTIONS and name != distribution:
            found += [d for d in [name, *_ours(name, with_test=False)] if d not in found]
    return found


def _dependencies(distribution: str) -> list[str]:
    """Our own distributions that `distribution` needs, as wheel paths."""
    return [str(_wheel(d)) for d in _ours(distribution)]


def _install_wheels(session: nox.Session, *distributions: str, extras: str = "test") -> None:
    """Install built wheels (with their test extras); never the source tree."""
    targets: dict[str, str] = {}
    for distribution in distributions:
        for dep in _dependencies(distribution):
            targets.setdefault(dep, dep)
        targets[str(_wheel(distribution))] = f"{_wheel(distribution)}[{extras}]"
    session.install(*targets.values())


def _assert_installed(session: nox.Session, *modules: str) -> None:
    """Prove the imports come from site-packages, not from the repository."""
    code = (
        "import importlib, pathlib, sys\n"
        f"root = pathlib.Path({str(ROOT)!r})\n"
        f"for name in {list(modules)!r}:\n"
        "    path = pathlib.Path(importlib.import_module(name).__file__).resolve()\n"
        "    assert 'site-packages' in path.parts, (name, path)\n"
        "    assert not path.is_relative_to(root) or '.nox' in path.parts, (name, path)\n"
        "print('installed from site-packages:', ', '.join(sys.argv[1:]) or 'ok')\n"
    )
    session.run("python", "-c", code, *modules)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(TOOLS[0])
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy (strict, from pyproject.toml) over every package, then over every test folder.

    One run per test folder: each distribution's tests have their own conftest.py, and
    one run over several would see a module named ``conftest`` twice.
    """
    editable = [arg for p in PLUGINS for arg in ("-e", f"{p}[test]")]
    session.install(*TOOLS[1:], "-e", "atls_core[requests,httpx,test]", *editable)
    packages = ["atls_core"] + [p.name.replace("-", "_") for p in PLUGINS]
    session.run("mypy", *[arg for pkg in packages for arg in ("-p", pkg)])
    typed = [ROOT / "atls_core" / "tests", *(p / "tests" for p in PLUGINS)]
    typed += [ROOT / "tests" / "integration", THIRD_PARTY, ROOT / "benchmarks"]
    for folder in typed:
        session.run("mypy", str(folder.relative_to(ROOT)))


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Sdists of atls-core and every plugin into dist/, and wheels built from those sdists."""
    session.install("build", "hatchling>=1.21")
    shutil.rmtree(DIST, ignore_errors=True)
    for path in DISTRIBUTIONS.values():
        session.run("python", "-m", "build", "--no-isolation", "--outdir", str(DIST), str(path))


@nox.session(python=PYTHON)
@nox.parametrize("distribution", list(DISTRIBUTIONS))
def tests(session: nox.Session, distribution: str) -> None:
    """One distribution's own tests against its installed wheel."""
    path = DISTRIBUTIONS[distribution]
    _install_wheels(session, distribution)
    module = distribution.replace("-", "_")
    _assert_installed(session, module)
    with session.chdir(path):
        session.run(
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(path),
            "-c",
            str(ROOT / "pyproject.toml"),
            "tests",
            *session.posargs,
            env=_env(),
        )


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-distribution tests with every wheel installed together (and every wheel's metadata)."""
    _install_wheels(session, *DISTRIBUTIONS)
    _assert_installed(session, *(d.replace("-", "_") for d in DISTRIBUTIONS))
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        str(ROOT / "tests" / "integration"),
        *session.posargs,
        env=_env(),
    )
    # Every wheel's index metadata (atls-core's own session sees only its own). Rooted in
    # atls_core/, as there: from the repository root, --import-mode=importlib would name the
    # module atls_core.tests.* and shadow the installed atls_core.
    core = DISTRIBUTIONS["atls-core"]
    with session.chdir(core):
        session.run(
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(core),
            "-c",
            str(ROOT / "pyproject.toml"),
            "tests/test_packaging.py",
            env=_env(),
        )


@nox.session(python=PYTHON)
def third_party(session: nox.Session) -> None:
    """An out-of-tree example plugin and a broken one, built and installed as wheels."""
    _install_wheels(session, "atls-core")
    outdir = Path(session.create_tmp()) / "third-party-dist"
    shutil.rmtree(outdir, ignore_errors=True)
    session.install("build", "hatchling>=1.21")
    for project in sorted(p for p in THIRD_PARTY.iterdir() if (p / "pyproject.toml").is_file()):
        session.run(
            "python",
            "-m",
            "build",
            "--no-isolation",
            "--wheel",
            "--outdir",
            str(outdir),
            str(project),
        )
    session.install("--no-deps", *[str(w) for w in sorted(outdir.glob("*.whl"))])
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        str(THIRD_PARTY / "test_third_party.py"),
        *session.posargs,
        env=_env(),
    )


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: a local attested server, three clients, and two refusals."""
    session.install(str(_wheel_or_build(session, "atls-core")) + "[requests,httpx]")
    session.run("atls", "demo", env=_env())


def _wheel_or_build(session: nox.Session, distribution: str) -> Path:
    """The wheel in dist/, built first when missing or stale (sessions run on their own)."""
    try:
        return _wheel(distribution)
    except RuntimeError:
        session.install("build", "hatchling>=1.21")
        stem = distribution.replace("-", "_")
        for old in DIST.glob(f"{stem}-*"):
            old.unlink()
        # sdist first, wheel from it (no --wheel): that is how the wheel gets the LICENSE.
        session.run(
            "python",
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(DIST),
            str(DISTRIBUTIONS[distribution]),
        )
        return _wheel(distribution)


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Speed and memory ratios against baselines measured in the same run.

    Each script prints its ratios as ``name: median (p10-p90) target X``; they are
    repeated together at the end.  The soak runs 5,000 connections here (10,000 take
    over two minutes on two shared cores): ``python benchmarks/bench_soak.py`` for 10,000.
    """
    from nox.command import CommandFailed

    for distribution in DISTRIBUTIONS:
        _wheel_or_build(session, distribution)  # never time a stale wheel
    _install_wheels(session, *DISTRIBUTIONS)
    arguments = {"bench_soak.py": ["--connections", "5000"]}
    ratio = re.compile(r"^\S+: \d+\.\d+ \(.*\) target .*$")
    summary: list[str] = []
    failed: list[str] = []
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        try:
            output = session.run(
                "python", str(script), *arguments.get(script.name, []), env=_env(), silent=True
            )
        except CommandFailed:  # nox has printed its output; the others still run
            failed.append(script.name)
            continue
        print(output, end="", flush=True)
        summary += [line for line in str(output).splitlines() if ratio.match(line)]
    print("== every ratio (median, p10-p90, target)")
    print("\n".join(summary))
    if failed:
        session.error(f"benchmarks that failed: {', '.join(failed)}")

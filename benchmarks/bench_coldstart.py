"""Cold start: whole processes that import atls or run the CLI vs ``python -c pass``.

    python benchmarks/bench_coldstart.py [--runs N]

Each case is a fresh interpreter (``subprocess``), timed from start to exit, against
``python -c pass`` started the same way, in alternating order; the ratio is taken pair by
pair.  Byte code is compiled once beforehand into a private cache folder
(PYTHONPYCACHEPREFIX), so the figures are of a warm install, not of compiling it.
Also reported: the children's CPU time (user + system), which machine load moves less.

The floor case imports only the third-party and standard modules every listing needs
before any atls code runs: attrs (specs and results are attrs classes), ssl (atls' errors
are ssl errors, so a TLS library can catch them) and pluggy (the plugin hooks).  No atls
command that loads a spec can start faster than it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def _command(case: str) -> list[str]:
    if case == "atls plugins":
        script = Path(sys.executable).with_name("atls")
        found = str(script) if script.exists() else shutil.which("atls")
        if found is None:
            raise SystemExit("the atls command is not installed next to this interpreter")
        return [found, "plugins"]
    return [sys.executable, "-c", case]


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(elapsed, CPU) seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


CASES = (
    ("coldstart.import_atls_core_vs_python", "import atls_core", "<=3"),
    ("coldstart.import_atls_core_tls_vs_python", "import atls_core.tls", "none"),
    ("coldstart.atls_plugins_vs_python", "atls plugins", "<=6"),
    ("coldstart.floor_attrs_ssl_pluggy_vs_python", "import attrs, ssl, pluggy", "none"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="pairs per case (default 21)")
    args = parser.parse_args()
    harness.header("cold start (whole process) vs python -c pass")
    with tempfile.TemporaryDirectory(prefix="atls-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        baseline = [sys.executable, "-c", "pass"]
        commands = {name: _command(code) for name, code, _ in CASES}
        for command in [baseline, *commands.values()]:
            for _ in range(2):  # compile and cache byte code; warm the file cache
                _run(command, env)
        for name, code, target in CASES:
            wall: list[float] = []
            cpu: list[float] = []
            base_wall: list[float] = []
            for index in range(args.runs):
                order = ("case", "base") if index % 2 == 0 else ("base", "case")  # ABBA...
                runs = {
                    label: _run(commands[name] if label == "case" else baseline, env)
                    for label in order
                }
                wall.append(runs["case"][0])
                base_wall.append(runs["base"][0])
                cpu.append(runs["case"][1] / runs["base"][1])
            print(f"{code}:")
            harness.time_line("  this command", wall)
            harness.time_line("  python -c pass", base_wall)
            harness.report(name, harness.ratios(wall, base_wall), target)
            harness.report(f"{name}.cpu", cpu, "none")


if __name__ == "__main__":
    main()

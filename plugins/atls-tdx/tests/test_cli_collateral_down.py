"""``atls verify-evidence --validator tdx.dcap --pccs-url <down>`` exits 3, every time.

The command used to print its one-line error and then die of SIGSEGV (exit
139) in about one run in six: dcap-qvl's collateral fetch left a native async
runtime running in threads still alive at interpreter shutdown.  Collateral is
now fetched in Python (atls-dcap), so there is nothing left to crash.

A crash shows only across many runs.  A fresh interpreter per run costs about
half a second of CPU here (imports compile: no bytecode cache), so most runs
are forked from a helper that has imported everything once, exactly as the CLI
would: each child runs ``atls_core.cli.main`` and then exits through the
interpreter's normal shutdown (``sys.exit``), where the crash happened.  Sixteen
real ``python -m atls_core.cli`` processes run the command as a user does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from atls_core.testing.plugins import run_atls
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote

pytestmark = pytest.mark.slow

EXIT_UNDECIDED = 3
FORKED_RUNS = 200
FRESH_RUNS = 16

HELPER = r"""
import encodings.idna, json, os, sys
import atls_core.cli as cli
import atls_core.selection, atls_dcap.pcs, atls_dcap.verifier, atls_tdx.dcap_validator
import dcap_qvl, platformdirs  # everything the command imports, imported once
from atls_core.errors import ServiceUnavailable
from atls_core.fetch import fetch
from atls_core.registry import default_manager

runs, batch, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
manager = default_manager()
manager.validator_spec("tdx.dcap")
try:  # warms atls-core's fetch (its TLS context) in plain Python: no DCAP code runs here
    fetch(args[args.index("--pccs-url") + 1], timeout=10)
except ServiceUnavailable:
    pass
outcomes = {}
started = 0
while started < runs:
    children = []
    for _ in range(min(batch, runs - started)):
        pid = os.fork()
        if pid == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            sys.exit(cli.main(args, manager=manager))
        children.append(pid)
    started += len(children)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            key = f"signal {os.WTERMSIG(status)}"
        else:
            key = f"exit {os.WEXITSTATUS(status)}"
        outcomes[key] = outcomes.get(key, 0) + 1
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def closed_url() -> Iterator[str]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture(scope="module")
def quote_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pki = DcapTestPki.generate(seed="atls-tdx collateral down")
    path = tmp_path_factory.mktemp("down") / "quote.bin"
    path.write_bytes(make_tdx_quote(pki, bytes(64)))
    return path


def command(closed_url: str, quote_file: Path) -> list[str]:
    return ["verify-evidence", "--validator", "tdx.dcap", "--pccs-url", closed_url, str(quote_file)]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ATLS_DISABLE_PLUGINS"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_runs_never_crash_at_exit(closed_url: str, quote_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELPER, str(FORKED_RUNS), "8", *command(closed_url, quote_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {f"exit {EXIT_UNDECIDED}": FORKED_RUNS}


def test_the_command_exits_undecided_every_time(closed_url: str, quote_file: Path) -> None:
    def run(_: int) -> subprocess.CompletedProcess[str]:
        return run_atls(*command(closed_url, quote_file), env=_env())

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(FRESH_RUNS)))
    assert [r.returncode for r in results] == [EXIT_UNDECIDED] * FRESH_RUNS
    for result in results:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("atls: collateral.fetch: ")
        assert closed_url.rstrip("/") in lines[0]

"""Collateral fetching leaves no native runtime behind: forked workers fetch like their parent.

dcap-qvl's own fetcher ran on a native async runtime that a forked child (every
pre-forking web server's worker) could not use: the child got
CollateralUnavailable unless its collateral was cached.  Collateral is now
fetched in Python on the caller's thread.  The helper script runs in its own
process (forking the test runner itself, with its server threads, would be
unsafe): it warms a verifier up through a loopback PCCS, checks that no thread
was left running, forks, and the child appraises with a cold cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not Path("/proc/self/task").is_dir(),
    reason="needs fork() and /proc/self/task",
)

HELPER = r"""
import datetime as dt, json, os, sys
from atls_dcap import DcapSettings, DcapVerifier

pccs_url, root, quote_path, now_text = sys.argv[1:5]
quote = open(quote_path, "rb").read()
now = dt.datetime.fromisoformat(now_text)


def verifier():
    return DcapVerifier(DcapSettings.from_settings({
        "collateral": "pccs", "pccs_url": pccs_url, "cache_dir": "none",
        "root_ca": root, "allow_custom_root": True, "collateral_timeout": 20,
    }))


def threads():
    return len(os.listdir("/proc/self/task"))


warm = verifier()
parent = {"status": warm.verify(quote, now=now).tcb_status, "threads": threads()}
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    answers = {}
    try:
        warm.cache.clear_memory()  # the inherited verifier, cold
        answers["inherited"] = warm.verify(quote, now=now).tcb_status
        answers["fresh"] = verifier().verify(quote, now=now).tcb_status
    except Exception as exc:
        answers["error"] = f"{type(exc).__name__}: {exc}"
    answers["threads"] = threads()
    os.write(write_end, json.dumps(answers).encode())
    os.close(write_end)
    sys.exit(0)  # a normal interpreter exit, not os._exit: shutdown must be clean too
os.close(write_end)
child = json.loads(os.read(read_end, 65536).decode())
_, status = os.waitpid(pid, 0)
child["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
print(json.dumps({"parent": parent, "child": child}))
"""


@pytest.fixture
def pcs(pki: DcapTestPki) -> Iterator[FakePcs]:
    with FakePcs(pki.collateral_json("tdx", issue_date=ISSUED)) as server:
        yield server


def test_a_forked_child_fetches_with_a_cold_cache(
    pki: DcapTestPki, pcs: FakePcs, tmp_path: Path
) -> None:
    quote = tmp_path / "quote.bin"
    quote.write_bytes(make_tdx_quote(pki, hashlib.sha512(b"fork").digest()))
    root = tmp_path / "root.der"
    root.write_bytes(pki.root_ca_der)
    done = subprocess.run(
        [sys.executable, "-c", HELPER, pcs.url, str(root), str(quote), NOW.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The warm-up fetched over the loopback PCCS and left no thread running.
    assert report["parent"] == {"status": "UpToDate", "threads": 1}
    # The child fetched twice more (inherited verifier, then a new one), both accepted.
    assert report["child"] == {
        "inherited": "UpToDate",
        "fresh": "UpToDate",
        "threads": 1,
        "exit": 0,
    }
    assert pcs.requests["tcb"] == 3
    assert pcs.requests["pckcrl"] == 3

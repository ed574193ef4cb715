"""`atls verify-evidence` with the TDX validators, run as a real subprocess.

A policy file pins the workload (``pinned_policy``) unless a test is about pinning.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from atls_core.testing.plugins import run_atls
from atls_dcap.report import parse_report_fields
from atls_tdx.tdx_common import quote_from_bytes

Vectors = Callable[[str], Path]


def atls(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ATLS_DISABLE_PLUGINS"}
    return run_atls(*args, env=env, cwd=cwd)


def verify_evidence(
    validator: str, collateral: Path, at: str, *arguments: str | Path
) -> subprocess.CompletedProcess[str]:
    """``atls verify-evidence`` with recorded collateral, at a recorded time."""
    return atls(
        "verify-evidence",
        "--validator",
        validator,
        "--collateral",
        collateral,
        "--at",
        at,
        *arguments,
    )


def pinned_policy(tmp_path: Path, quote: Path, top: str = "") -> Path:
    """A policy file pinning the MRTD of ``quote`` (top-level keys ``top`` first)."""
    mrtd = parse_report_fields(quote_from_bytes(quote.read_bytes()))[2]["mrtd"]
    assert isinstance(mrtd, bytes)
    path = tmp_path / "pinned.toml"
    path.write_text(f'{top}[reference_values]\nmrtd = "{mrtd.hex()}"\n')
    return path


def test_dcap_quote_is_accepted_and_printed_in_full(vectors: Vectors, tmp_path: Path) -> None:
    quote = vectors("tdx/dcap-sample/quote.bin")
    expected = json.loads(vectors("tdx/dcap-sample/expected.json").read_text())
    done = verify_evidence(
        "tdx.dcap",
        vectors("tdx/dcap-sample/collateral.json"),
        "1750331763",
        "--policy",
        pinned_policy(tmp_path, quote),
        "--json",
        quote,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["accepted"] is True
    assert result["tcb"]["status"] == "UpToDate"
    assert result["tcb"]["advisory_ids"] == []
    report = expected["report"]["TD10"]
    assert result["measurements"]["mrtd"] == report["mr_td"]
    assert result["measurements"]["rtmr0"] == report["rt_mr0"]
    assert result["claims"]["report_data"] == report["report_data"]
    assert result["claims"]["tee_tcb_svn"] == report["tee_tcb_svn"]


def test_hex_quote_file_is_accepted(vectors: Vectors, tmp_path: Path) -> None:
    hex_file = tmp_path / "quote.hex"
    hex_file.write_text("0x" + vectors("tdx/dcap-sample/quote.bin").read_bytes().hex() + "\n")
    done = verify_evidence(
        "tdx.dcap",
        vectors("tdx/dcap-sample/collateral.json"),
        "1750331763",
        "--policy",
        pinned_policy(tmp_path, hex_file),
        hex_file,
    )
    assert done.returncode == 0, done.stderr
    assert "UpToDate" in done.stdout


def test_out_of_date_quote_is_rejected_without_traceback(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/outofdate-v4-00806f05"
    done = verify_evidence(
        "tdx.dcap",
        vectors(f"{folder}/collateral_2025-01.json"),
        "1740048927",
        "--policy",
        pinned_policy(tmp_path, vectors(f"{folder}/zkdcap_quote.bin")),
        vectors(f"{folder}/zkdcap_quote.bin"),
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "tcb.status" in lines[0]
    assert "OutOfDate" in lines[0]


def test_out_of_date_quote_is_accepted_with_a_lenient_policy(
    vectors: Vectors, tmp_path: Path
) -> None:
    folder = "tdx/outofdate-v4-00806f05"
    policy = pinned_policy(
        tmp_path,
        vectors(f"{folder}/zkdcap_quote.bin"),
        'accepted_tcb_statuses = ["UpToDate", "OutOfDate"]\n'
        'accepted_advisory_ids = ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]\n',
    )
    done = verify_evidence(
        "tdx.dcap",
        vectors(f"{folder}/collateral_2025-01.json"),
        "1740048927",
        "--policy",
        policy,
        "--json",
        vectors(f"{folder}/zkdcap_quote.bin"),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tcb"]["status"] == "OutOfDate"


def test_unpinned_quote_is_a_one_line_refusal_saying_what_to_pin(
    vectors: Vectors, tmp_path: Path
) -> None:
    folder = "tdx/dcap-sample"
    mrtd = json.loads(vectors(f"{folder}/expected.json").read_text())["report"]["TD10"]["mr_td"]
    args = (
        "verify-evidence",
        "--validator",
        "tdx.dcap",
        "--collateral",
        vectors(f"{folder}/collateral.json"),
        "--at",
        "1750331763",
    )
    done = atls(*args, vectors(f"{folder}/quote.bin"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "workload.unpinned" in done.stderr
    assert f'mrtd = "{mrtd}"' in done.stderr
    explore = tmp_path / "explore.toml"
    explore.write_text("allow_any_workload = true\n")
    explored = atls(*args, "--policy", explore, "--json", vectors(f"{folder}/quote.bin"))
    assert explored.returncode == 0, explored.stderr
    result = json.loads(explored.stdout)
    assert result["status"] == "warning"
    assert any(w.startswith("workload.unpinned:") for w in result["warnings"])


def test_no_tcb_level_is_a_one_line_rejection(vectors: Vectors) -> None:
    folder = "tdx/dcap-sample-no-tcb-level"
    done = verify_evidence(
        "tdx.dcap",
        vectors(f"{folder}/collateral.json"),
        "1771415931",
        vectors(f"{folder}/quote.bin"),
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "dcap.tcb_level" in done.stderr


def test_dstack_quote_response_is_accepted(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/dstack-quote-report"
    policy = tmp_path / "policy.toml"
    # The app id is checked but does not pin (the host chooses it): the compose hash pins.
    policy.write_text(
        'allowed_app_ids = ["3763bc34552cf3a27ff71ad5f7a90471562a1a2d"]\n'
        'allowed_compose_hashes = ["3763bc34552cf3a27ff71ad5f7a90471562a1a2d'
        'f552dfc1998cba2d60da27e7"]\n'
    )
    done = verify_evidence(
        "tdx.dstack",
        vectors(f"{folder}/collateral.json"),
        "1763539264",
        "--policy",
        policy,
        "--json",
        vectors(f"{folder}/get_quote_response.json"),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tcb"]["status"] == "UpToDate"
    assert result["measurements"]["app_id"] == "3763bc34552cf3a27ff71ad5f7a90471562a1a2d"
    assert result["measurements"]["rtmr3"].startswith("0f787c38")


def test_dstack_tampered_event_log_is_rejected(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/dstack-quote-report"
    response = json.loads(vectors(f"{folder}/get_quote_response.json").read_text())
    events = json.loads(response["event_log"])
    next(e for e in events if e["event"] == "app-id")["event_payload"] = "00" * 20
    response["event_log"] = json.dumps(events)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(response))
    done = verify_evidence(
        "tdx.dstack", vectors(f"{folder}/collateral.json"), "1763539264", tampered
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "dstack.event_digest" in done.stderr


def test_collateral_option_is_offered() -> None:
    done = atls("verify-evidence", "--validator", "tdx.dstack-challenge", "--help")
    assert done.returncode == 0
    assert "--collateral" in done.stdout


def test_config_check_refuses_a_measurement_of_the_wrong_length(tmp_path: Path) -> None:
    """A digit short, it would pin what no TD shows: every connection refused, found only then."""
    config = tmp_path / "atls.toml"
    config.write_text(
        '[hosts."td.example"]\nvalidator = "tdx.dcap"\n'
        f'[hosts."td.example".policy.reference_values]\nmrtd = "{"ab" * 47}"\n'
    )
    done = run_atls("config", "check", config)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "reference_values.mrtd" in done.stderr
    assert "is not 48 bytes of hex (96 digits; it has 94)" in done.stderr

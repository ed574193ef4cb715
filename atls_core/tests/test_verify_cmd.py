"""``atls verify``'s body against loopback servers."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import pytest

from atls_core.errors import ATLSVerificationError
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.verify_command import run


def _config(tee: SimulatedTEE, tmp_path: Path, *, insecure: bool = True, pin: bool = True) -> str:
    settings = tee.hardware.validator_settings()
    text = (
        "[atls]\n"
        f"allow_insecure_test_validators = {'true' if insecure else 'false'}\n"
        '[hosts."127.0.0.1"]\n'
        'validator = "insecure.simulated"\n'
        '[hosts."127.0.0.1".settings]\n'
        f'hardware_key = "{settings["hardware_key"]}"\n'
    )
    if pin:
        text += f'[hosts."127.0.0.1".policy.reference_values]\nimage = "{tee.image}"\n'
    path = tmp_path / "atls.toml"
    path.write_text(text)
    return str(path)


def _args(url: str, **kwargs: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "config": None,
        "validator": None,
        "json": False,
        "allow_insecure": False,
        "timeout": 10.0,
    }
    defaults.update(kwargs)
    return argparse.Namespace(url=url, **defaults)


def test_accepted_server_prints_report(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        code = run(_args(server.url(), config=_config(tee, tmp_path)))
    out = capsys.readouterr().out
    assert code == 0
    assert "ACCEPTED" in out
    assert "insecure.simulated" in out
    assert "nonce" in out


def test_json_output(tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        code = run(_args(server.url(), config=_config(tee, tmp_path), json=True))
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["accepted"] is True
    assert document["binding"]["freshness"] == "nonce"


def test_rejection_names_the_check(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with HTTPSServer(liar.server_context()) as server:
        code = run(_args(server.url(), config=_config(tee, tmp_path)))
        captured = capsys.readouterr()
        assert code == 1
        assert "binding.report_data" in captured.err
        assert "Traceback" not in captured.err + captured.out
        code = run(_args(server.url(), config=_config(tee, tmp_path), json=True))
        document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["error"]["check"] == "binding.report_data"


def test_policy_rejection_prints_result_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    debug_tee = SimulatedTEE(debug=True)
    with HTTPSServer(debug_tee.certificates().server_context()) as server:
        code = run(_args(server.url(), config=_config(debug_tee, tmp_path)))
    captured = capsys.readouterr()
    assert code == 1
    assert "debug" in captured.err
    assert "REJECTED" in captured.out.upper()


def test_insecure_needs_opt_in_and_usage_errors(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        code = run(_args(server.url(), config=_config(tee, tmp_path, insecure=False)))
        assert code == 2, "a configuration error is not a refusal"
        assert "config.insecure" in capsys.readouterr().err
        code = run(
            _args(server.url(), config=_config(tee, tmp_path, insecure=False), allow_insecure=True)
        )
        assert code == 0
        capsys.readouterr()
    assert run(_args("https://127.0.0.1:1/")) == 2  # neither --config nor --validator
    assert run(_args("ftp://127.0.0.1/", validator="insecure.simulated")) == 2
    assert run(_args("https://127.0.0.1/", validator="nosuch.validator")) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unpinned_is_refused_and_can_be_explored(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {"config": _config(tee, tmp_path, pin=False)}
    with HTTPSServer(tee.certificates().server_context()) as server:
        assert run(_args(server.url(), **settings)) == 1
        assert "workload.unpinned" in capsys.readouterr().err
        code = run(_args(server.url(), allow_any_workload=True, **settings))
        assert code == 0
        assert "WARNING" in capsys.readouterr().out.upper()
        pin = [f"image={tee.image}"]
        assert run(_args(server.url(), reference=pin, **settings)) == 0


def test_a_host_the_configuration_does_not_name_is_a_usage_error_before_connecting(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on that name: exit 3 would mean it tried to connect first.
    code = run(_args("https://unconfigured.invalid/", config=_config(tee, tmp_path)))
    assert code == 2
    assert "config.hosts" in capsys.readouterr().err


def test_unreachable_server(
    tee: SimulatedTEE, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        code = run(_args(f"https://127.0.0.1:{port}/", config=_config(tee, tmp_path)))
    assert code == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"cannot connect to 127.0.0.1:{port}" in err


def test_a_validator_bug_is_an_internal_error_not_a_refusal(
    tee: SimulatedTEE,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exit 70 naming the plugin, and --traceback shows the plugin's frame (as offline)."""
    from atls_core import cli
    from atls_core.testing.simulated import SimulatedValidator

    def broken(self: object, certificate: object) -> None:
        raise KeyError("report_data")

    monkeypatch.setattr(SimulatedValidator, "evidence_from_certificate", broken)
    with HTTPSServer(tee.certificates().server_context()) as server:
        argv = ["verify", server.url(), "--config", _config(tee, tmp_path)]
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == cli.EXIT_INTERNAL
        assert "raised KeyError: 'report_data'" in err
        assert "(plugin atls-core " in err
        assert "--traceback" in err
        with pytest.raises(ATLSVerificationError) as caught:
            cli.main(["--traceback", *argv])
        assert isinstance(caught.value.__cause__, KeyError)

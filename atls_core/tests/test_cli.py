"""The ``atls`` command: plugins, verify-evidence (with plugin options), verify/demo wiring.

In-process through ``main(argv, manager=...)`` with the core's simulated TEE and
small fake plugin modules, plus the installed console script in a subprocess.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import io
import json
import re
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from atls_core import cli
from atls_core._version import __version__ as core_version
from atls_core.appraisal import Appraisal
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, Transport
from atls_core.hookspecs import hookimpl
from atls_core.interfaces import CliOption, ReportData, Settings, ValidatorBase
from atls_core.registry import PluginManager
from atls_core.testing import simulated
from atls_core.testing.facts import unit_spec
from atls_core.testing.plugins import manager_with, run_atls
from atls_core.testing.simulated import SimulatedHardware, SimulatedIssuer

HARDWARE = SimulatedHardware.generate()
ISSUED = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
INSIDE = str(int(ISSUED.timestamp()) + 60)
SIM_UNPINNED = ["--validator", "insecure.simulated", "--hardware-key", HARDWARE.public_key_hex]
SIM = [*SIM_UNPINNED, "--reference", "image=" + "ab" * 32]
ATLS = Path(sys.executable).with_name("atls")


def _manager(
    *extra: types.ModuleType, environ: dict[str, str] | None = None, **eps: str
) -> PluginManager:
    return manager_with(*extra, named=dict(eps), environ=environ)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, str, str]:
    status = cli.main(argv, manager=kw.pop("manager", None) or _manager())
    out, err = capsys.readouterr()
    return status, out, err


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def evidence_file(tmp_path: Path) -> Callable[..., Path]:
    def make(**settings: Any) -> Path:
        issuer = SimulatedIssuer(
            HARDWARE.issuer_settings(measurements={"image": "ab" * 32}, **settings),
            clock=FixedClock(ISSUED),
        )
        evidence = issuer.issue(bytes(64))
        path = tmp_path / f"evidence-{len(list(tmp_path.iterdir()))}.json"
        path.write_bytes(evidence.data)
        return path

    return make


@pytest.fixture
def evidence(evidence_file: Callable[..., Path]) -> Path:
    """A file of the simulated TEE's evidence, good at ``INSIDE``."""
    return evidence_file()


# -- a fake plugin whose validator records what it was given -------------------------------------


PROBE_SPEC = unit_spec(
    "probe.v", transport=Transport.CHALLENGE, media_type="x/probe", settings=("paths", "mode")
)


class _Probe(ValidatorBase):
    spec = PROBE_SPEC
    settings_seen: ClassVar[list[Settings]] = []
    raises: ClassVar[BaseException | None] = None
    refuses: ClassVar[ConfigurationError | None] = None

    def __init__(self, settings: Settings) -> None:
        _Probe.settings_seen.append(dict(settings))
        if _Probe.refuses is not None:
            raise _Probe.refuses

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        if _Probe.raises is not None:
            raise _Probe.raises
        raise MalformedEvidence("probe evidence is never valid", check="probe.format")


def _probe_module(options: list[Any]) -> types.ModuleType:
    module = types.ModuleType("probe")
    spec = attrs.evolve(PROBE_SPEC, cli_options=options)

    class Probe(_Probe):
        pass

    Probe.spec = spec

    @hookimpl
    def atls_register_validators(registry: Any) -> None:
        registry.register(spec, Probe)

    module.atls_register_validators = atls_register_validators  # type: ignore[attr-defined]
    return module


@pytest.fixture(autouse=True)
def _reset_probe() -> None:
    _Probe.settings_seen = []
    _Probe.raises = None
    _Probe.refuses = None


# -- atls plugins -------------------------------------------------------------------------------


def test_plugins_json_shows_ok_broken_and_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    manager = _manager(
        _probe_module([]),
        environ={"ATLS_DISABLE_PLUGINS": "off"},
        broken="atls_no_such_module_for_cli_test",
        off="atls_never_imported_either",
    )
    status, out, err = _run(["plugins", "--json"], capsys, manager=manager)
    assert status == 2  # a broken plugin fails the listing as a deployment check
    assert err == ""
    data = json.loads(out)
    assert data["atls_core"] == core_version
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["insecure"]["status"] == "ok"
    sim = {v["id"]: v for v in plugins["insecure"]["validators"]}["insecure.simulated"]
    assert sim["oids"] == [simulated.OID]
    assert sim["insecure"] is True
    assert sim["transport"] == "certificate"
    assert sim["binding_scheme"] == "atls-v1"
    assert sim["media_types"] == [simulated.MEDIA_TYPE]
    assert sim["settings"] == ["hardware_key"]
    assert sim["measurements"] == ["image", "config"]
    assert sim["policy_options"] == []
    assert {i["id"] for i in plugins["insecure"]["issuers"]} == {
        "insecure.simulated",
        "insecure.simulated-challenge",
    }
    assert plugins["broken"]["status"] == "broken"
    assert "plugins.import" in plugins["broken"]["error"]
    assert "ModuleNotFoundError" in plugins["broken"]["error"]
    assert plugins["off"]["status"] == "disabled"
    assert plugins["off"]["error"] is None
    assert plugins["probe"]["validators"][0]["transport"] == "challenge"
    assert "atls_never_imported_either" not in sys.modules


def test_plugins_text(capsys: pytest.CaptureFixture[str]) -> None:
    manager = _manager(broken="atls_no_such_module_for_cli_test")
    status, out, _ = _run(["plugins"], capsys, manager=manager)
    assert status == 2
    assert out.startswith(f"atls-core {core_version}\n")
    assert "validator insecure.simulated [INSECURE: test only]" in out
    assert f"      {simulated.VALIDATOR_SPEC.description}\n" in out
    assert f"oids: {simulated.OID}" in out
    assert "settings: hardware_key" in out
    assert "measurements: image, config" in out
    assert "issuer insecure.simulated -> insecure.simulated" in out
    assert "plugin broken (atls_no_such_module_for_cli_test): BROKEN: plugins.import" in out


def test_plugins_shows_a_plugin_with_a_misspelt_hook_broken(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = types.ModuleType("atls_test_misspelt")

    @hookimpl
    def atls_register_validatorz(registry: Any) -> None:
        raise AssertionError("pluggy never calls a hook it has no spec for")

    module.atls_register_validatorz = atls_register_validatorz  # type: ignore[attr-defined]
    status, out, _ = _run(["plugins"], capsys, manager=_manager(module))
    assert status == 2
    assert "plugin atls_test_misspelt (atls_test_misspelt): BROKEN: plugins.hooks:" in out
    assert "(did you mean 'atls_register_validators'?)" in out


def test_plugins_exit_0_when_every_plugin_loads_or_is_disabled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    manager = _manager(environ={"ATLS_DISABLE_PLUGINS": "off"}, off="atls_never_imported_either")
    status, out, _ = _run(["plugins"], capsys, manager=manager)
    assert status == 0
    assert "plugin off" in out


# -- atls verify-evidence: acceptance -------------------------------------------------------------


def test_verify_evidence_accepts(capsys: pytest.CaptureFixture[str], evidence: Path) -> None:
    status, out, err = _run(
        ["verify-evidence", str(evidence), *SIM, "--at", INSIDE, "--allow-insecure"], capsys
    )
    assert status == 0, err
    assert err == ""
    assert out.startswith("ACCEPTED (status: warning)")
    assert "image: " + "ab" * 32 in out
    assert "not checked (offline: no TLS connection to bind to)" in out
    assert "2025-06-01T12:01:00Z" in out


def test_verify_evidence_json_and_iso_time(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    argv = ["verify-evidence", str(evidence), *SIM, "--allow-insecure", "--json"]
    status, out, _ = _run([*argv, "--at", "2025-06-01T12:30:00Z"], capsys)
    assert status == 0
    result = json.loads(out)
    assert result["accepted"] is True
    assert result["issued_at"] == "2025-06-01T12:30:00Z"
    assert result["binding"] == {
        "scheme": "atls-v1",
        "freshness": "unbound",
        "verified": False,
        "nonce": None,
        "key_digest": None,
    }
    naive = _run([*argv, "--at", "2025-06-01 12:30:00"], capsys)
    assert json.loads(naive[1])["issued_at"] == "2025-06-01T12:30:00Z"


def test_verify_evidence_from_stdin(
    capsys: pytest.CaptureFixture[str],
    evidence: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = evidence.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    status, out, _ = _run(
        ["verify-evidence", "-", *SIM, "--at", INSIDE, "--allow-insecure", "--json"], capsys
    )
    assert status == 0
    assert json.loads(out)["accepted"] is True


# -- atls verify-evidence: rejection ------------------------------------------------------------------


def test_rejected_by_policy(
    capsys: pytest.CaptureFixture[str], evidence_file: Callable[..., Path]
) -> None:
    path = evidence_file(tcb_status="OutOfDate", advisory_ids=["INTEL-SA-00615"])
    status, out, err = _run(
        ["verify-evidence", str(path), *SIM, "--at", INSIDE, "--allow-insecure"], capsys
    )
    assert status == 1
    assert out.startswith("REJECTED (status: contraindicated)")
    assert "tcb.status: TCB status is not in the policy's accepted_tcb_statuses" in out
    line = _one_line(err)
    assert line == (
        "atls: tcb.status: TCB status is not in the policy's accepted_tcb_statuses (+1 more) "
        "(expected ['UpToDate'], got OutOfDate)"
    )


def test_policy_file_can_accept_and_can_pin(
    capsys: pytest.CaptureFixture[str], evidence_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = evidence_file(tcb_status="OutOfDate", advisory_ids=["INTEL-SA-00615"])
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(
        'id = "lenient"\naccepted_tcb_statuses = ["UpToDate", "OutOfDate"]\n'
        'accepted_advisory_ids = ["INTEL-SA-00615"]\n'
    )
    argv = ["verify-evidence", str(path), *SIM_UNPINNED, "--at", INSIDE, "--allow-insecure"]
    pin = ["--reference", "image=" + "ab" * 32]
    status, out, _ = _run([*argv, *pin, "--policy", str(lenient), "--json"], capsys)
    assert status == 0
    assert json.loads(out)["policy"]["id"] == "lenient"
    pinned = tmp_path / "pinned.toml"
    pinned.write_text(
        'accepted_tcb_statuses = ["UpToDate", "OutOfDate"]\n'
        'accepted_advisory_ids = ["INTEL-SA-00615"]\n'
        '[reference_values]\nimage = "' + "cd" * 32 + '"\n'
    )
    status, _, err = _run([*argv, "--policy", str(pinned)], capsys)
    assert status == 1
    assert _one_line(err).startswith("atls: reference.image:")


def _configuration(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atls.toml"
    path.write_text(text)
    return path


def test_verify_evidence_takes_settings_and_policy_from_a_configuration(
    capsys: pytest.CaptureFixture[str], evidence: Path, tmp_path: Path
) -> None:
    config = _configuration(
        tmp_path,
        "[atls]\nallow_insecure_test_validators = true\n"
        '[hosts."other.example"]\nvalidator = "tdx.dcap"\n'
        '[hosts."tee.example"]\nvalidator = "insecure.simulated"\n'
        f'settings = {{ hardware_key = "{HARDWARE.public_key_hex}" }}\n'
        f'[hosts."tee.example".policy]\nid = "configured"\n'
        f'reference_values = {{ image = "{"ab" * 32}" }}\n',
    )
    argv = ["verify-evidence", str(evidence), "--validator", "insecure.simulated"]
    for rule in (["--host", "tee.example"], []):  # without --host: the rule naming it
        status, out, err = _run([*argv, "--config", str(config), *rule, "--at", INSIDE], capsys)
        assert status == 0, err
        assert out.startswith("ACCEPTED")
        assert re.search(r"policy: +configured \(sha256", out)


def test_verify_evidence_honours_the_configurations_disabled_plugins(
    capsys: pytest.CaptureFixture[str], evidence: Path, tmp_path: Path
) -> None:
    """As online: a plugin the file disables runs neither as the rule's validator nor in a
    hand-over (both go through the same refusing manager)."""
    config = _simulated_config(
        tmp_path, extra='disable_plugins = ["insecure"]\n', pin=f'image = "{"ab" * 32}"\n'
    )
    argv = ["verify-evidence", str(evidence), "--validator", "insecure.simulated"]
    status, out, err = _run([*argv, "--config", str(config), "--at", INSIDE], capsys)
    assert status == 2
    assert out == ""
    assert "atls.disable_plugins" in _one_line(err)


def test_verify_evidence_flags_override_configured_settings(
    capsys: pytest.CaptureFixture[str], evidence: Path, tmp_path: Path
) -> None:
    """``paths`` has no flag: before --config, a validator requiring it was unusable offline."""
    config = _configuration(
        tmp_path,
        '[hosts."box.example"]\nvalidator = "probe.v"\n'
        'settings = { paths = ["a", "b"], mode = "strict" }\n',
    )
    manager = _manager(_probe_module([CliOption(flag="--mode", setting="mode", help="h")]))
    argv = ["verify-evidence", str(evidence), "--validator", "probe.v", "--config", str(config)]
    status, _, _ = _run([*argv, "--host", "box.example", "--mode", "lax"], capsys, manager=manager)
    assert status == 1  # the probe refuses all evidence, after it was built
    assert _Probe.settings_seen == [{"paths": ("a", "b"), "mode": "lax"}]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["--host", "other.example"],
            "uses validator tdx.dcap, not --validator insecure.simulated",
        ),
        (["--host", "nowhere.example"], "no validator is configured for host 'nowhere.example'"),
        ([], "no host rule uses validator insecure.simulated"),
    ],
)
def test_verify_evidence_refuses_a_rule_of_another_validator(
    capsys: pytest.CaptureFixture[str],
    evidence: Path,
    tmp_path: Path,
    argv: list[str],
    named: str,
) -> None:
    config = _configuration(tmp_path, '[hosts."other.example"]\nvalidator = "tdx.dcap"\n')
    status, _, err = _run(
        ["verify-evidence", str(evidence), *SIM, "--config", str(config), *argv], capsys
    )
    assert status == 2
    assert named in _one_line(err)


def test_verify_evidence_host_needs_a_configuration(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    status, _, err = _run(["verify-evidence", str(evidence), *SIM, "--host", "x"], capsys)
    assert status == 2
    assert _one_line(err) == "atls: cli.host: --host names a rule of --config FILE"


def test_a_configuration_given_as_policy_says_to_use_config(
    capsys: pytest.CaptureFixture[str], evidence: Path, tmp_path: Path
) -> None:
    config = _configuration(tmp_path, '[hosts."x.example"]\nvalidator = "insecure.simulated"\n')
    status, _, err = _run(
        ["verify-evidence", str(evidence), *SIM, "--allow-insecure", "--policy", str(config)],
        capsys,
    )
    assert status == 2
    line = _one_line(err)
    assert "--policy takes a bare policy table" in line
    assert "pass it as --config FILE [--host NAME]" in line


def test_nothing_pinned_is_refused_and_can_be_explored(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    argv = ["verify-evidence", str(evidence), *SIM_UNPINNED, "--at", INSIDE]
    status, out, err = _run([*argv, "--allow-insecure"], capsys)
    assert status == 1
    line = _one_line(err)
    assert line.startswith("atls: workload.unpinned:")
    assert 'image = "' + "ab" * 32 + '"' in line, "the refusal shows what to pin"
    status, out, _ = _run([*argv, "--allow-insecure", "--allow-any-workload", "--json"], capsys)
    assert status == 0
    result = json.loads(out)
    assert result["status"] == "warning"
    assert any(w.startswith("workload.unpinned") for w in result["warnings"])
    status, _, err = _run([*argv, "--allow-insecure", "--reference", "image"], capsys)
    assert status == 2
    assert _one_line(err).startswith("atls: cli.reference:")


def test_json_rejection_still_prints_the_result(
    capsys: pytest.CaptureFixture[str], evidence_file: Callable[..., Path]
) -> None:
    path = evidence_file(debug=True)
    status, out, err = _run(
        ["verify-evidence", str(path), *SIM, "--at", INSIDE, "--allow-insecure", "--json"], capsys
    )
    assert status == 1
    result = json.loads(out)
    assert result["accepted"] is False
    assert result["failures"][0]["check"] == "debug"
    assert _one_line(err).startswith("atls: debug: the TEE is in debug mode")


def test_expired_evidence_without_at_says_how_to_appraise_a_recording(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    argv = ["verify-evidence", str(evidence), *SIM, "--allow-insecure"]
    status, out, err = _run(argv, capsys)  # recorded an hour long, years ago
    assert (status, out) == (1, "")
    first, hint = err.strip().splitlines()
    assert first.startswith("atls: simulated.validity:")
    assert hint.startswith("atls: hint:")
    assert "--at" in hint
    status, _, err = _run([*argv, "--at", "2030-01-01T00:00:00Z"], capsys)
    assert status == 1
    assert "hint" not in err  # a time was given: no advice about giving one


def test_appraisal_errors_are_one_line_and_json(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    late = [
        "verify-evidence",
        str(evidence),
        *SIM,
        "--at",
        "2030-01-01T00:00:00Z",
        "--allow-insecure",
    ]
    status, out, err = _run(late, capsys)
    assert status == 1
    assert out == ""
    assert _one_line(err).startswith("atls: simulated.validity:")
    status, out, err = _run([*late, "--json"], capsys)
    assert status == 1
    error = json.loads(out)
    assert error["accepted"] is False
    assert error["error"]["type"] == "StaleEvidence"
    assert error["error"]["check"] == "simulated.validity"
    assert error["error"]["actual"] == "2030-01-01T00:00:00+00:00"
    other_key = SimulatedHardware.generate().public_key_hex
    forged = ["verify-evidence", str(evidence), "--validator", "insecure.simulated"]
    status, _, err = _run(
        [*forged, "--hardware-key", other_key, "--at", INSIDE, "--allow-insecure"], capsys
    )
    assert status == 1
    assert _one_line(err).startswith("atls: simulated.signature:")


def test_undecided_is_its_own_exit_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from atls_core.errors import CollateralUnavailable

    _Probe.raises = CollateralUnavailable("PCS unreachable", check="probe.collateral")
    path = tmp_path / "e"
    path.write_bytes(b"x")
    status, _, err = _run(
        ["verify-evidence", str(path), "--validator", "probe.v"],
        capsys,
        manager=_manager(_probe_module([])),
    )
    assert status == cli.EXIT_UNDECIDED == 3
    assert _one_line(err) == "atls: probe.collateral: PCS unreachable"


# -- atls verify-evidence: usage and configuration errors (exit 2) -----------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["verify-evidence", "{file}"], "the following arguments are required: --validator"),
        (["verify-evidence", "{file}", *SIM, "--at", "yesterday"], "neither Unix seconds"),
        (["verify-evidence", "{file}", *SIM, "--bogus"], "unrecognized arguments: --bogus"),
        (["verify-evidence", "{file}", *SIM, "--vali", "x"], "unrecognized arguments"),
        (["bogus"], "invalid choice"),
    ],
)
def test_usage_errors(
    capsys: pytest.CaptureFixture[str],
    evidence: Path,
    argv: list[str],
    fragment: str,
) -> None:
    status, _, err = _run([a.replace("{file}", str(evidence)) for a in argv], capsys)
    assert status == 2
    line = _one_line(err)
    assert line.startswith("atls: usage: ")
    assert fragment in line
    assert line.endswith("--help`)")


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        ([], "config.insecure"),
        (["--allow-insecure", "--policy", "{missing}"], "config.file"),
        (["--allow-insecure", "--policy", "{bad_toml}"], "config.file"),
        (["--allow-insecure", "--policy", "{bad_key}"], "config.reference_values"),
        (["--allow-insecure", "--policy", "{bad_status}"], "config.policy"),
    ],
)
def test_configuration_errors(
    capsys: pytest.CaptureFixture[str],
    evidence: Path,
    tmp_path: Path,
    extra: list[str],
    check: str,
) -> None:
    files = {
        "missing": tmp_path / "absent.toml",
        "bad_toml": tmp_path / "bad.toml",
        "bad_key": tmp_path / "key.toml",
        "bad_status": tmp_path / "status.toml",
    }
    files["bad_toml"].write_text("accepted_tcb_statuses = [\n")
    files["bad_key"].write_text('[reference_values]\nmrtd = "00"\n')
    files["bad_status"].write_text('accepted_tcb_statuses = ["Fine"]\n')
    argv = ["verify-evidence", str(evidence), *SIM, "--at", INSIDE]
    argv += [a.format(**{k: str(v) for k, v in files.items()}) for a in extra]
    status, out, err = _run(argv, capsys)
    assert status == 2
    assert out == ""
    line = _one_line(err)
    assert line.startswith(f"atls: {check}")
    if check == "config.insecure":
        assert "--allow-insecure" in line
    if "policy" in " ".join(extra) and check != "config.reference_values":
        assert str(tmp_path) in line


def test_file_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.bin"
    status, _, err = _run(["verify-evidence", str(missing), *SIM, "--allow-insecure"], capsys)
    assert status == 2
    assert _one_line(err) == f"atls: os: No such file or directory {missing}"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(11))
    monkeypatch.setattr(cli, "MAX_EVIDENCE_BYTES", 10)
    status, _, err = _run(["verify-evidence", str(big), *SIM, "--allow-insecure"], capsys)
    assert status == 2
    assert _one_line(err).startswith("atls: cli.evidence_size:")


@pytest.mark.parametrize(
    ("validator", "check"),
    [
        ("nodot", "config.validator"),
        ("zeta.v", "plugins.lookup"),
        ("insecure.nope", "plugins.lookup"),
    ],
)
def test_unknown_validators(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, validator: str, check: str
) -> None:
    status, _, err = _run(["verify-evidence", str(tmp_path), "--validator", validator], capsys)
    assert status == 2
    assert _one_line(err).startswith(f"atls: {check}:")


# -- plugin-added options ---------------------------------------------------------------------------


def test_plugin_options_become_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    options = [
        CliOption(flag="--path", setting="paths", help="repeatable", metavar="P", multiple=True),
        CliOption(flag="--mode", setting="mode", help="one value"),
    ]
    path = tmp_path / "e"
    path.write_bytes(b"x")
    manager = _manager(_probe_module(options))
    argv = ["verify-evidence", str(path), "--validator", "probe.v"]
    status, _, err = _run(
        [*argv, "--path", "a", "--path", "b", "--mode", "m"], capsys, manager=manager
    )
    assert status == 1
    assert _one_line(err) == "atls: probe.format: probe evidence is never valid"
    assert _Probe.settings_seen == [{"paths": ["a", "b"], "mode": "m"}]
    status, _, _ = _run(argv, capsys, manager=_manager(_probe_module(options)))
    assert _Probe.settings_seen[-1] == {}, "absent options are not passed"
    status, out, _ = _run([*argv, "--help"], capsys, manager=_manager(_probe_module(options)))
    assert status == 0
    assert "options of the selected validator" in out
    assert "--path P" in out
    assert "--mode VALUE" in out
    status, out, _ = _run(["verify-evidence", "--help"], capsys)
    assert status == 0
    assert "--validator ID --help" in " ".join(out.split())


@pytest.mark.parametrize(
    "option",
    [
        CliOption(flag="--at", setting="mode", help="clashes with a core option"),
        CliOption(flag="--mode", setting="undeclared", help="not in spec.settings"),
        CliOption(flag="-m", setting="mode", help="short flags could shadow core ones"),
        CliOption(flag="--Mode;rm", setting="mode", help="not a flag"),
        CliOption(flag="--", setting="mode", help="no name"),
        CliOption(flag="---mode", setting="mode", help="a name starts with a letter or digit"),
        CliOption(flag="--mode\n", setting="mode", help="nothing after the name"),
        CliOption(flag=None, setting="mode", help="not text"),  # type: ignore[arg-type]
        "not a CliOption",
    ],
)
def test_bad_plugin_options_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: Any
) -> None:
    status, _, err = _run(
        ["verify-evidence", str(tmp_path), "--validator", "probe.v"],
        capsys,
        manager=_manager(_probe_module([option])),
    )
    assert status == 2
    assert _one_line(err).startswith("atls: plugins.cli_options:")


def test_another_validators_option_is_not_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = _run(
        ["verify-evidence", str(tmp_path), "--validator", "probe.v", "--hardware-key", "00"],
        capsys,
        manager=_manager(_probe_module([])),
    )
    assert status == 2
    assert "unrecognized arguments: --hardware-key" in err


# -- internal errors ------------------------------------------------------------------------------------


def test_internal_errors_are_one_line_unless_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _Probe.raises = KeyError("bug")
    path = tmp_path / "e"
    path.write_bytes(b"x")
    argv = ["verify-evidence", str(path), "--validator", "probe.v"]
    status, _, err = _run(argv, capsys, manager=_manager(_probe_module([])))
    assert status == cli.EXIT_INTERNAL
    line = _one_line(err)
    assert line.startswith("atls: internal error: error: KeyError")
    assert "--traceback" in line
    with pytest.raises(KeyError):
        cli.main(["--traceback", *argv], manager=_manager(_probe_module([])))
    _Probe.raises = KeyboardInterrupt()
    status, _, err = _run(argv, capsys, manager=_manager(_probe_module([])))
    assert status == 130


def test_a_plugin_that_cannot_build_its_validator_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: Path
) -> None:
    """Its PluginLoadError carries the plugin's own exception as cause: still exit 2 (a
    verdict on the installation), not the internal error a live appraisal's bug is."""
    from atls_core.hookspecs import registrations
    from atls_core.testing.plugins import manager_with
    from atls_core.testing.simulated import VALIDATOR_SPEC

    plugin = types.ModuleType("atls_test_unbuildable")
    plugin.atls_register_validators, _ = registrations(  # type: ignore[attr-defined]
        validators=[(VALIDATOR_SPEC, "atls_core.testing.simulated:SimulatedValidatr")]
    )
    manager = manager_with(simulated=False, named={"insecure": plugin})
    argv = ["verify-evidence", str(evidence), *SIM, "--at", INSIDE, "--allow-insecure"]
    status, _, err = _run(argv, capsys, manager=manager)
    assert status == 2
    assert _one_line(err).startswith("atls: plugins.factory:")


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run([], capsys)
    assert status == 2
    assert "verify-evidence" in err


# -- atls verify / atls demo are wired lazily ------------------------------------------------------------


def test_verify_and_demo_call_their_modules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[argparse.Namespace] = []
    verify = types.ModuleType("atls_core.verify_command")

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 5

    verify.run = run  # type: ignore[attr-defined]
    demo = types.ModuleType("atls_core.demo")
    demo.run = lambda: 6  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "atls_core.verify_command", verify)
    monkeypatch.setitem(sys.modules, "atls_core.demo", demo)
    argv = ["verify", "https://h:8443", "--config", "c.toml", "--json", "--timeout", "2.5"]
    assert cli.main(argv) == 5
    (args,) = seen
    assert (args.url, args.config, args.validator, args.json) == (
        "https://h:8443",
        "c.toml",
        None,
        True,
    )
    assert (args.allow_insecure, args.timeout) == (False, 2.5)
    assert cli.main(["verify", "https://h", "--validator", "x.y", "--allow-insecure"]) == 5
    assert seen[1].timeout == 10.0
    assert seen[1].validator == "x.y"
    assert cli.main(["demo"]) == 6
    assert cli.main(["verify", "https://h", "--timeout", "0"]) == 2
    assert "positive number of seconds" in capsys.readouterr().err


def test_missing_command_modules_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "atls_core.verify_command", None)
    monkeypatch.setitem(sys.modules, "atls_core.demo", None)
    assert cli.main(["verify", "https://h"]) == 2
    assert _one_line(capsys.readouterr().err).startswith("atls: cli.unavailable: `atls verify`")
    assert cli.main(["demo"]) == 2
    assert _one_line(capsys.readouterr().err).startswith("atls: cli.unavailable: `atls demo`")

    def no_httpx(name: str) -> types.ModuleType:
        raise ModuleNotFoundError("No module named 'httpx'", name="httpx")

    monkeypatch.setattr(importlib, "import_module", no_httpx)
    assert cli.main(["verify", "https://h"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("atls: cli.dependency: `atls verify` needs httpx")
    assert "atls-core[httpx]" in line


# -- the installed console script -------------------------------------------------------------------------


def test_console_script(evidence: Path) -> None:
    assert ATLS.is_file(), f"the atls console script is not installed next to {sys.executable}"
    version = subprocess.run(
        [str(ATLS), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"atls-core {core_version}"
    listed = subprocess.run(
        [str(ATLS), "plugins", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert "insecure" in {p["name"] for p in json.loads(listed.stdout)["plugins"]}
    done = run_atls("verify-evidence", evidence, *SIM, "--at", "1")
    assert done.returncode == 2
    assert done.stderr.startswith("atls: config.insecure:")
    assert "Traceback" not in done.stderr


def test_plugins_names_the_core_once_and_shows_how_to_pin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = _run(["plugins"], capsys)
    assert status == 0
    assert out.count(f"atls-core {core_version}") == 1
    assert "pin with: reference_values.image, reference_values.config" in out


def test_a_closed_pipe_is_not_an_error_message(tmp_path: Path) -> None:
    command = f"{ATLS} plugins | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == f"atls-core {core_version}"
    assert "Broken pipe" not in done.stderr
    assert done.stderr == ""


def _simulated_config(tmp_path: Path, extra: str = "", pin: str = 'image = "ab"\n') -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f"[atls]\nallow_insecure_test_validators = true\n{extra}"
        '[hosts."h.example"]\nvalidator = "insecure.simulated"\n'
        f'[hosts."h.example".settings]\nhardware_key = "{HARDWARE.public_key_hex}"\n'
        f'[hosts."h.example".policy.reference_values]\n{pin}'
    )
    return path


def test_config_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = _simulated_config(tmp_path)
    status, out, err = _run(["config", "check", str(good)], capsys)
    assert (status, err) == (0, "")
    assert "h.example: insecure.simulated" in out
    assert "pins image" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("hardware_key", "hardwre_key"))
    status, out, err = _run(["config", "check", str(bad)], capsys)
    assert status == 2
    line = _one_line(err)
    assert line.startswith("atls: config.settings:")
    assert str(bad) in line
    assert "did you mean 'hardware_key'" in line


def test_config_check_reports_every_rules_mistake_in_one_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = _simulated_config(tmp_path).read_text()
    second = (
        good.replace('"h.example"', '"k.example"')
        .replace("[atls]\nallow_insecure_test_validators = true\n", "")
        .replace("image =", "imgae =")
    )
    bad = tmp_path / "two.toml"
    bad.write_text(good.replace("hardware_key", "hardwre_key") + second)
    status, out, err = _run(["config", "check", str(bad)], capsys)
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("atls: config.settings:")
    assert "h.example" in lines[0]
    assert "did you mean 'image'" in lines[1]
    assert "k.example" in lines[1]


def test_config_check_refuses_a_rule_whose_every_connection_would_be_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _simulated_config(tmp_path, pin="")
    status, out, err = _run(["config", "check", str(path)], capsys)
    assert status == 2
    assert out == ""
    assert "workload.unpinned: every connection would be refused" in err
    assert 'hosts."h.example": pin one of reference_values.image' in err


def test_config_check_warns_of_a_disabled_plugin_that_is_not_installed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _simulated_config(tmp_path, extra='disable_plugins = ["tdxx", "insecur"]\n')
    status, out, err = _run(["config", "check", str(path)], capsys)
    assert status == 0
    assert "ok" in out
    assert "atls.disable_plugins names 'tdxx', which is no installed plugin" in err
    assert "names 'insecur', which is no installed plugin (did you mean 'insecure'?)" in err


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["--help"], capsys)
    assert status == 0
    assert "exit codes:" in out
    assert "2   usage, configuration or plugin error" in out


def test_numeric_plugin_options_arrive_as_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    options = [CliOption(flag="--mode", setting="mode", help="seconds", kind="number")]
    path = tmp_path / "e"
    path.write_bytes(b"x")
    argv = ["verify-evidence", str(path), "--validator", "probe.v", "--mode", "2.5"]
    _run(argv, capsys, manager=_manager(_probe_module(options)))
    assert _Probe.settings_seen[-1] == {"mode": 2.5}
    status, _, err = _run([*argv[:-1], "soon"], capsys, manager=_manager(_probe_module(options)))
    assert status == 2
    assert "'soon' is not a number" in err


def test_a_refused_setting_is_named_with_its_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    options = [CliOption(flag="--file", setting="paths", help="files")]
    _Probe.refuses = ConfigurationError(
        "settings.paths_list and settings.paths disagree", check="config.settings"
    )
    path = tmp_path / "e"
    path.write_bytes(b"x")
    argv = ["verify-evidence", str(path), "--validator", "probe.v"]
    status, _, err = _run(argv, capsys, manager=_manager(_probe_module(options)))
    assert status == 2
    # A longer name that begins with the setting's is left alone.
    assert _one_line(err) == (
        "atls: config.settings: atls verify-evidence: settings.paths_list and "
        "settings.paths (--file) disagree"
    )


def test_evidence_refused_for_want_of_a_plugin_exits_as_a_plugin_error() -> None:
    """A container format whose payload's plugin is missing: nothing was appraised (exit 2)."""
    from atls_core.errors import PluginNotFound

    refused = MalformedEvidence("install atls-snp", check="evidence.hand_over")
    refused.__cause__ = PluginNotFound("no plugin provides 'snp'", check="plugins.lookup")
    assert cli._exit_code(refused) == 2
    assert cli._exit_code(MalformedEvidence("bad", check="x.y")) == 1


def test_a_policy_file_written_as_a_policy_table_says_to_drop_the_header(
    capsys: pytest.CaptureFixture[str], evidence: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[policy]\nid = "mine"\n')
    argv = ["verify-evidence", str(evidence), *SIM, "--at", INSIDE, "--allow-insecure"]
    status, _, err = _run([*argv, "--policy", str(policy)], capsys)
    assert status == 2
    assert "remove the [policy] header" in _one_line(err)


def test_an_error_that_is_its_own_cause_does_not_hang_the_exit_code() -> None:
    looped = MalformedEvidence("bad", check="x.y")
    looped.__cause__ = looped
    assert cli._exit_code(looped) == 1

"""``atls plugins`` and the simulated TEE's entry point start light: what they must not import."""

from __future__ import annotations

import json

import pytest

from atls_core.testing.plugins import modules_loaded_by

LISTING_NEEDS_NONE_OF = (
    "argparse",  # `atls plugins` is read without a parser
    "importlib.metadata",  # atls_core.installed reads the dist-info folders
    "email",
    "zipfile",
    "packaging",  # plain version ranges are checked without it
    "cryptography",  # the simulated TEE's key code loads when a key is made or used
    "tomllib",
    "logging",
    "atls_core.appraisal",
    "atls_core.config",
    "atls_core.fetch",
    "pathlib",  # settings declare paths and URLs; reading one imports what it needs
    "urllib",
    "ipaddress",
)

_CORE_PLUGINS_ONLY = """
from atls_core import installed
from atls_core.registry import PluginManager
from atls_core.cli import main
eps = [e for e in installed.entry_points('atls') if e.dist.metadata['Name'] == 'atls-core']
assert [e.name for e in eps] == ['insecure'], eps
assert main({arguments!r}, manager=PluginManager(entry_points=eps)) == 0
"""


def _loaded(heavy: tuple[str, ...], code: str) -> list[str]:
    return [
        m for m in modules_loaded_by(code) if any(m == h or m.startswith(h + ".") for h in heavy)
    ]


@pytest.mark.parametrize("arguments", [["plugins"], ["plugins", "--json"]])
def test_listing_the_core_plugin_imports_nothing_it_does_not_show(arguments: list[str]) -> None:
    code = _CORE_PLUGINS_ONLY.format(arguments=arguments)
    assert _loaded(LISTING_NEEDS_NONE_OF, code) == []


def test_the_probe_sees_what_the_other_commands_import() -> None:
    """The check above can fail: a command other than the plain listing parses arguments."""
    code = _CORE_PLUGINS_ONLY.format(arguments=["--traceback", "plugins", "--json", "--json"])
    assert _loaded(LISTING_NEEDS_NONE_OF, code) == ["argparse"]


def test_the_fast_listing_prints_what_the_parsed_one_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from atls_core.cli import main
    from atls_core.testing.plugins import manager_with

    outputs = []
    for arguments in (["plugins", "--json"], ["plugins", "--json", "--json"]):
        assert main(arguments, manager=manager_with()) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert [p["name"] for p in outputs[0]["plugins"]] == ["insecure"]


def test_building_and_using_the_simulated_tee_loads_cryptography() -> None:
    """Lazy is not absent: the key code still runs when the simulated TEE is used."""
    code = (
        "from atls_core.testing.simulated import SimulatedHardware, SimulatedValidator\n"
        "hardware = SimulatedHardware.generate()\n"
        "SimulatedValidator(hardware.validator_settings())\n"
    )
    assert "cryptography.hazmat.primitives.asymmetric.ed25519" in modules_loaded_by(code)
    assert "cryptography" not in modules_loaded_by("import atls_core.testing.simulated")


@pytest.mark.parametrize(
    ("arguments", "status"), [(["plugins", "--help"], 0), (["plugins", "--bogus"], 2)]
)
def test_python_m_reports_usage_like_the_console_script(arguments: list[str], status: int) -> None:
    """The parser is its own module: ``python -m atls_core.cli`` still exits as argparse says."""
    from atls_core.testing.plugins import run_atls

    done = run_atls(*arguments)
    assert done.returncode == status, done.stderr
    assert "internal error" not in done.stderr


def test_listing_builds_no_record_that_only_reading_evidence_needs() -> None:
    """Each attrs class costs a start: `atls plugins` reads specs, never report data."""
    code = _CORE_PLUGINS_ONLY.format(arguments=["plugins"]) + (
        "import atls_core.interfaces as interfaces\n"
        "built = {'ReportData', 'ChallengeRequest', 'ChallengeResponse'} & set(vars(interfaces))\n"
        "assert not built, built\n"
    )
    modules_loaded_by(code)  # raises if the probe's assertion fails


def test_the_records_import_from_interfaces_as_before() -> None:
    import atls_core
    from atls_core import interfaces
    from atls_core.interfaces import ChallengeRequest, ChallengeResponse, ReportData

    assert atls_core.ReportData is ReportData is interfaces.ReportData
    assert atls_core.ChallengeRequest is ChallengeRequest
    assert {"ChallengeRequest", "ChallengeResponse", "ReportData"} <= set(dir(interfaces))
    assert ChallengeResponse(status=200, headers={}, body=b"x").ok_body() == b"x"


def test_an_attested_client_of_one_validator_imports_no_path_or_url_library() -> None:
    """A client's memory is what it imports: selecting a validator and building its
    context reads no file path and parses no URL, so loads neither library."""
    code = (
        "from atls_core.policy import Policy\n"
        "from atls_core.selection import select_validator\n"
        "from atls_core.testing.simulated import SimulatedHardware\n"
        "from atls_core.tls import ATLSContext\n"
        "hardware = SimulatedHardware.generate()\n"
        "selected = select_validator('insecure.simulated', allow_insecure=True,\n"
        "    settings={'hardware_key': hardware.public_key_hex},\n"
        "    policy=Policy(reference_values={'image': '00' * 32}))\n"
        "ATLSContext.for_validator(selected)\n"
    )
    assert _loaded(("pathlib", "urllib", "ipaddress"), code) == []

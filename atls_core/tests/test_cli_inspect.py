"""``atls inspect``: decode evidence with the installed validators, verify nothing.

In-process through ``main(argv, manager=...)`` with the simulated TEE and a
fake plugin, as the other CLI tests.  Also the two optional validator methods
behind it and behind configuration-time checks: ``describe`` and
``check_policy``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from atls_core import cli
from atls_core.appraisal import Appraisal
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import ReportData, Settings, ValidatorBase
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.report import render_inspection
from atls_core.selection import select_validator
from atls_core.server import mint_certificate
from atls_core.testing.facts import unit_spec
from atls_core.testing.plugins import manager_with, plugin_module
from atls_core.testing.simulated import (
    CHALLENGE_ISSUER_SPEC,
    OID,
    SimulatedHardware,
    SimulatedIssuer,
)

HARDWARE = SimulatedHardware.generate()
IMAGE = "ab" * 32


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], manager: PluginManager | None = None
) -> tuple[int, Any, str]:
    status = cli.main(["inspect", *argv], manager=manager or manager_with())
    out, err = capsys.readouterr()
    return status, json.loads(out) if "--json" in argv and out else out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration that gives the simulated validators their hardware key."""
    path = tmp_path / "atls.toml"
    path.write_text(
        "[atls]\nallow_insecure_test_validators = true\n"
        '[hosts."a.example"]\nvalidator = "insecure.simulated"\n'
        f'settings = {{ hardware_key = "{HARDWARE.public_key_hex}" }}\n'
        '[hosts."b.example"]\nvalidator = "insecure.simulated-challenge"\n'
        f'settings = {{ hardware_key = "{HARDWARE.public_key_hex}" }}\n'
    )
    return path


def _issuer(**settings: Any) -> SimulatedIssuer:
    return SimulatedIssuer(HARDWARE.issuer_settings(measurements={"image": IMAGE}, **settings))


def test_a_certificate_is_decoded_by_the_validator_of_its_extension(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: Path
) -> None:
    certificate = mint_certificate(_issuer(), nonce=b"n" * 32)
    path = tmp_path / "server.pem"
    path.write_bytes(certificate.certificate_pem)
    status, document, _err = _run([str(path), "--config", str(config), "--json"], capsys)
    assert status == 0
    assert document["unverified"] is True
    assert document["certificate"]["sha256"] == certificate.sha256.hex()
    readers = {e["oid"]: e["read_by"] for e in document["certificate"]["extensions"]}
    assert readers[OID] == "insecure.simulated"
    ((entry),) = document["decoded"]
    assert entry["validators"] == ["insecure.simulated"]
    assert entry["description"]["measurements"]["image"] == IMAGE
    assert entry["description"]["format"].startswith("INSECURE")


def test_der_and_text_forms(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    certificate = mint_certificate(_issuer())
    path = tmp_path / "server.der"
    path.write_bytes(certificate.certificate_der)
    status, text, _err = _run([str(path)], capsys)
    assert status == 0  # the certificate itself is shown, though no validator was built
    assert text.splitlines()[0].startswith("UNVERIFIED")
    assert certificate.sha256.hex() in text
    assert "insecure.simulated: not built" in text
    assert "--config" in text


def test_a_challenge_answer_is_decoded_once_for_both_validators(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: Path
) -> None:
    issuer = SimulatedIssuer(
        HARDWARE.issuer_settings(measurements={"image": IMAGE}), spec=CHALLENGE_ISSUER_SPEC
    )
    path = tmp_path / "answer.json"
    path.write_bytes(issuer.issue(bytes(64), certificate_sha256=b"\x01" * 32).data)
    status, document, _err = _run([str(path), "--config", str(config), "--json"], capsys)
    assert status == 0
    ((entry),) = document["decoded"]
    assert entry["validators"] == ["insecure.simulated", "insecure.simulated-challenge"]
    assert entry["description"]["certificate_sha256"] == "01" * 32
    status, document, _err = _run(
        [str(path), "--config", str(config), "--validator", "insecure.simulated", "--json"],
        capsys,
    )
    assert [e["validators"] for e in document["decoded"]] == [["insecure.simulated"]]


def test_what_a_hostile_server_wrote_cannot_rewrite_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: Path
) -> None:
    issuer = SimulatedIssuer(
        HARDWARE.issuer_settings(measurements={"image": "\x1b[2J\nACCEPTED" + "x" * 400})
    )
    path = tmp_path / "evidence.json"
    path.write_bytes(issuer.issue(bytes(64)).data)
    status, text, _err = _run([str(path), "--config", str(config)], capsys)
    assert status == 0
    assert "\x1b" not in text
    assert "\nACCEPTED" not in text
    assert "--json shows all" in text


def _token(claims: dict[str, Any]) -> bytes:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2ln".encode()


def test_a_token_no_validator_could_read_is_still_shown_unverified(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "token.jwt"
    path.write_bytes(_token({"iss": "https://attest.example", "x-ms-attestation-type": "sgx"}))
    status, document, _err = _run([str(path), "--json"], capsys)
    assert status == 0
    assert document["token"]["header"] == {"alg": "RS256", "kid": "k1"}
    assert document["token"]["claims"]["iss"] == "https://attest.example"
    assert "NOT verified" in document["token"]["format"]


def test_nothing_decodes_an_unknown_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    status, _text, err = _run([str(path)], capsys)
    assert status == 2
    assert err.strip() == f"atls: inspect: no installed validator decodes {path}"


# -- a plugin whose validator cannot describe ----------------------------------------------------

MUTE_SPEC = unit_spec("mute.v", media_type="x/mute", policy_options=("level",))


class _Mute(ValidatorBase):
    spec = MUTE_SPEC
    policies_checked: ClassVar[list[Policy]] = []

    def __init__(self, settings: Settings) -> None:
        pass

    def check_policy(self, policy: Policy) -> None:
        _Mute.policies_checked.append(policy)
        if not isinstance(policy.option("level", 0), int):
            raise ConfigurationError("policy.level must be a number", check="config.policy")

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        raise MalformedEvidence("never", check="mute.format")


def test_a_validator_without_describe_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01")
    manager = manager_with(plugin_module("mute", (MUTE_SPEC, _Mute)))
    status, document, _err = _run([str(path), "--validator", "mute.v", "--json"], capsys, manager)
    assert status == 2
    assert document["not_decoded"] == [
        {"validator": "mute.v", "reason": "inspect.unsupported: mute.v cannot describe evidence"}
    ]


def test_check_policy_runs_when_the_validator_is_selected() -> None:
    _Mute.policies_checked = []
    manager = manager_with(plugin_module("mute", (MUTE_SPEC, _Mute)))
    good = Policy(options={"level": 2})
    select_validator("mute.v", policy=good, manager=manager)
    assert _Mute.policies_checked == [good]
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "mute.v", policy=Policy(options={"level": "high"}), manager=manager, where="rule x"
        )
    assert info.value.reason == "rule x: policy.level must be a number"


def test_render_inspection_groups_reasons_and_shows_nested_values() -> None:
    text = render_inspection(
        {
            "file": "x",
            "decoded": [
                {
                    "validators": ["a.v", "b.v"],
                    "description": {
                        "format": "thing",
                        "measurements": {"m": "00"},
                        "rows": [{"i": 1, "ok": True}],
                        "empty": {},
                    },
                }
            ],
            "not_decoded": [
                {"validator": "c.v", "reason": "same"},
                {"validator": "d.v", "reason": "same"},
            ],
        }
    )
    assert "a.v, b.v: thing" in text
    assert "    m: 00" in text
    assert "- i=1, ok=yes" in text
    assert "empty: (none)" in text
    assert "  c.v, d.v: same" in text


# -- files whose first byte is 0x30 but are no certificate ------------------------------------

HEX_SPEC = unit_spec("hexquote.v", media_type="x/hex-quote")


class _HexQuote(ValidatorBase):
    """Reads quotes written as hex text, as TDX and SEV-SNP validators do."""

    spec = HEX_SPEC

    def __init__(self, settings: Settings) -> None:
        pass

    def describe(self, evidence: Evidence) -> dict[str, Any]:
        try:
            quote = bytes.fromhex(evidence.data.decode("ascii").removeprefix("0x"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedEvidence("not hex", check="hexquote.format") from None
        return {"format": "hex quote", "measurements": {"head": quote[:4].hex()}}

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        raise MalformedEvidence("never", check="hexquote.format")


def _hex_manager() -> PluginManager:
    return manager_with(plugin_module("hexquote", (HEX_SPEC, _HexQuote)))


@pytest.mark.parametrize("text", ["0400020081000000", "0x03000200"])
def test_a_hex_quote_file_is_evidence_though_ascii_0_is_a_der_sequence_tag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    """``0`` is 0x30: such a file used to be read as a DER certificate and refused (exit 1)."""
    path = tmp_path / "quote.hex"
    path.write_text(text)
    for argv in ([str(path), "--json"], [str(path), "--validator", "hexquote.v", "--json"]):
        status, document, err = _run(argv, capsys, _hex_manager())
        assert (status, err) == (0, "")
        assert "certificate" not in document
        ((entry),) = document["decoded"]
        assert entry["validators"] == ["hexquote.v"]
        assert entry["description"]["measurements"]["head"] == text.removeprefix("0x")[:8]


def test_a_der_sequence_that_is_no_certificate_goes_to_the_evidence_readers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A DER evidence envelope is no certificate: nothing decodes it here, which is exit 2."""
    path = tmp_path / "envelope.der"
    path.write_bytes(bytes.fromhex("3003020101"))
    status, document, err = _run([str(path), "--json"], capsys)
    assert status == 2
    assert "certificate" not in document
    assert err.strip() == f"atls: inspect: no installed validator decodes {path}"


def test_a_pem_block_that_is_no_certificate_is_a_usage_error_not_a_refusal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Unreadable input exits 2 (nothing was appraised), never 1 (refused)."""
    path = tmp_path / "server.pem"
    der = base64.b64encode(bytes.fromhex("3003020101"))  # a DER SEQUENCE, no certificate
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + der + b"\n-----END CERTIFICATE-----\n")
    status, _text, err = _run([str(path)], capsys)
    assert status == 2
    assert "inspect.certificate" in err

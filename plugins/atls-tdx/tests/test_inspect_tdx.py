"""``atls inspect`` on TDX evidence: a quote, a dstack certificate, a recorded ``.8`` attestation.

Inspection decodes and never verifies: these tests check that what it shows is
what the evidence says (measurements, the replay table, RTMR3's facts) and that
a lie in the event log shows up where it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import load_der_x509_certificate

from atls_core import binding as b
from atls_core.cli import main
from atls_core.testing.vectors import Vector
from atls_dcap.testing.quotes import DEFAULT_MRTD
from atls_tdx.dstack import compose_hash
from atls_tdx.oids import DSTACK_ATTESTATION
from atls_tdx.testing.dstack import (
    attestation_certificate,
    dstack_event_log,
    replay_rtmrs,
    runtime_event,
)

COMPOSE = '{"runner":"docker-compose","docker_compose_file":"services: {}"}'
GUEST_AGENT = "tdx/dstack-attestation-v0-guest-agent-b0c06f"


def inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = main(["inspect", *argv])
    captured = capsys.readouterr()
    document = json.loads(captured.out) if "--json" in argv and captured.out else captured.out
    return status, document, captured.err


def decoded_by(document: Any, validator: str) -> dict[str, Any]:
    for entry in document["decoded"]:
        if validator in entry["validators"]:
            description: dict[str, Any] = entry["description"]
            return description
    raise AssertionError(f"{validator} decoded nothing: {document['not_decoded']}")


def test_a_quote_file_shows_its_measurements(
    synthetic: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_data = b.report_data_for("atls-v1", spki_der=b"key", nonce=b"n" * 32)
    path = tmp_path / "quote.bin"
    path.write_bytes(synthetic.quote(report_data, mr_config_id=b"\x07" * 48))
    status, document, _err = inspect(capsys, str(path), "--json")
    assert status == 0
    quote = decoded_by(document, "tdx.dcap")
    assert quote["format"] == "Intel TDX quote v4"
    assert quote["measurements"]["mrtd"] == DEFAULT_MRTD.hex()
    assert quote["measurements"]["mrconfigid"] == "07" * 48
    assert quote["report_data"] == report_data.hex()
    assert quote["debug"] is False
    assert document["unverified"] is True
    status, text, _err = inspect(capsys, str(path))
    assert text.startswith("UNVERIFIED")
    assert DEFAULT_MRTD.hex() in text


def _certificate(synthetic: Any, events: list[dict[str, Any]]) -> bytes:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        made: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return made

    return attestation_certificate(ec.generate_private_key(ec.SECP256R1()), quote, events=events)


def test_a_dstack_certificate_is_read_through_its_extension(
    synthetic: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = dstack_event_log(app_compose=COMPOSE)
    der = _certificate(synthetic, events)
    path = tmp_path / "server.pem"
    path.write_bytes(load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    status, document, _err = inspect(capsys, str(path), "--json")
    assert status == 0
    assert document["certificate"]["sha256"] == hashlib.sha256(der).hexdigest()
    readers = {e["oid"]: e["read_by"] for e in document["certificate"]["extensions"]}
    assert readers[DSTACK_ATTESTATION] == "tdx.dstack"
    assert [e["validators"] for e in document["decoded"]] == [["tdx.dstack"]]
    dstack = decoded_by(document, "tdx.dstack")
    assert dstack["format"].startswith("dstack attestation V0 (TDX)")
    assert dstack["replay"]["rtmr3"]["match"] is True
    assert dstack["replay"]["rtmr3"]["quoted"] == replay_rtmrs(events)[3].hex()
    assert dstack["replay_required"] == ["rtmr3"]
    assert dstack["measurements"]["compose_hash"] == compose_hash(COMPOSE).hex()
    assert dstack["facts"]["system_ready"] is True
    assert "facts_note" not in dstack


def test_a_forged_payload_shows_where_the_log_lies(
    synthetic: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = dstack_event_log(app_compose=COMPOSE)
    quoted = replay_rtmrs(events)
    forged = [dict(e) for e in events]
    index = next(i for i, e in enumerate(forged) if e["event"] == "compose-hash")
    forged[index]["event_payload"] = compose_hash('{"runner":"bash"}').hex()  # digest kept
    document = {
        "quote": synthetic.quote(bytes(64), rtmr=quoted).hex(),
        "event_log": json.dumps(forged),
    }
    path = tmp_path / "quote.json"
    path.write_text(json.dumps(document))
    status, shown, _err = inspect(capsys, str(path), "--json", "--validator", "tdx.dstack")
    assert status == 0
    dstack = decoded_by(shown, "tdx.dstack")
    assert [dstack["replay"][f"rtmr{i}"]["match"] for i in range(4)] == [True, True, True, False]
    assert dstack["events"][index]["digest"].startswith("MISMATCH")
    assert "RTMR3 does not replay" in dstack["facts_note"]
    assert dstack["replay_required"] == ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]


def test_an_application_event_after_the_certificate_is_listed(
    synthetic: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = hashlib.sha256(b"certificate").digest()
    events = dstack_event_log(app_compose=COMPOSE)
    events.append(runtime_event("New TLS Certificate", digest.hex().encode()))
    answer = {
        "success": True,
        "quote": {
            "quote": synthetic.quote(bytes(64), rtmr=replay_rtmrs(events)).hex(),
            "event_log": json.dumps(events),
            "report_data": "00" * 64,
            "vm_config": "{}",
        },
        "tcb_info": {"app_compose": COMPOSE},
    }
    path = tmp_path / "tdx_quote.json"
    path.write_text(json.dumps(answer))
    status, document, _err = inspect(capsys, str(path), "--json")
    assert status == 0
    dstack = decoded_by(document, "tdx.dstack-challenge")
    assert set(document["decoded"][0]["validators"]) == {"tdx.dstack", "tdx.dstack-challenge"}
    assert dstack["facts"]["certificate_event_sha256"] == digest.hex()
    assert dstack["facts"]["app_events"] == ["New TLS Certificate"]
    assert dstack["server_claims"]["app_compose"] == COMPOSE
    assert dstack["server_claims"]["app_compose_sha256"] == compose_hash(COMPOSE).hex()


@pytest.mark.vectors
def test_the_recorded_guest_agent_attestation_replays_all_four(
    vectors: Vector, capsys: pytest.CaptureFixture[str]
) -> None:
    path = vectors(f"{GUEST_AGENT}/attestation.bin")
    expected = json.loads(vectors(f"{GUEST_AGENT}/expected.json").read_text())
    status, document, _err = inspect(capsys, str(path), "--json")
    assert status == 0
    assert "certificate" not in document  # the quote's PEM chain inside is not "a certificate"
    dstack = decoded_by(document, "tdx.dstack")
    assert [dstack["replay"][f"rtmr{i}"]["replayed"] for i in range(4)] == expected["rtmr"]
    assert all(dstack["replay"][f"rtmr{i}"]["match"] for i in range(4))
    assert [e["name"] for e in dstack["events"] if e["imr"] == 3] == expected["runtime_events"]
    compose = dstack["measurements"]["compose_hash"]
    assert dstack["measurements"]["mrconfigid"] == "01" + compose + "00" * 15
    assert dstack["quote"]["fmspc"] == "B0C06F000000"


def test_a_file_nothing_decodes_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not evidence\n")
    status, _text, err = inspect(capsys, str(path))
    assert status == 2
    assert "no installed validator decodes" in err

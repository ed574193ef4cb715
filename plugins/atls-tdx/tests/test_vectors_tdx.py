"""Recorded real TDX evidence (read only through $ATLS_VECTORS), verified at its recorded time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.errors import StaleEvidence, UntrustedChain
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import Status
from atls_dcap.report import OUR_NAMES, parse_report_fields
from atls_tdx.dcap_validator import TdxDcapValidator
from atls_tdx.dstack import DstackValidator, expected_mr_config_id
from atls_tdx.dstack_eventlog import check_replay, dstack_facts, parse_event_log
from atls_tdx.tdx_common import quote_from_bytes

pytestmark = pytest.mark.vectors

Vectors = Callable[[str], Path]
OFFLINE = BindingContext.offline_context()


def _dcap(collateral: Path) -> TdxDcapValidator:
    return TdxDcapValidator({"collateral_file": str(collateral), "cache_dir": "none"})


def _appraise(
    validator: Any, path: Path, at: int, policy: Policy | None = None, **policy_kw: Any
) -> Any:
    """Appraise offline; without ``policy``, pin the quote's own MRTD (plus ``policy_kw``)
    so that only what a test is about decides the outcome."""
    evidence = validator.evidence_from_file(path.read_bytes(), name=path.name)
    if policy is None:
        mrtd = parse_report_fields(evidence.data)[2]["mrtd"]
        assert isinstance(mrtd, bytes)
        policy = Policy(reference_values={"mrtd": mrtd.hex()}, **policy_kw)
    return validator.appraise(
        evidence, binding=OFFLINE, clock=FixedClock.from_unix(at), policy=policy
    )


def _check_expected(result: Any, expected: dict[str, Any]) -> None:
    assert result.tcb.status == expected["status"]
    assert list(result.tcb.advisory_ids) == expected["advisory_ids"]
    for name, value in expected["report"]["TD10"].items():
        ours = OUR_NAMES.get(name, name)
        recorded = result.measurements.get(ours, result.claims.get(ours))
        assert recorded == value, name


@pytest.mark.parametrize("folder", ["tdx/dcap-sample", "tdx/dstack-quote-report"])
def test_recorded_quote_matches_expected_json(vectors: Vectors, folder: str) -> None:
    expected = json.loads(vectors(f"{folder}/expected.json").read_text())
    result = _appraise(
        _dcap(vectors(f"{folder}/collateral.json")),
        vectors(f"{folder}/quote.bin"),
        expected["verify_at_unix"],
    )
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING  # offline: the binding is not checked
    assert [w.split(":")[0] for w in result.warnings] == ["binding.offline"]
    _check_expected(result, expected)


@pytest.mark.parametrize(
    ("quote", "collateral", "at"),
    [
        ("quote.bin", "collateral_2025-07.json", 1754471202),
        ("quote_no_nonce.bin", "collateral_2025-07.json", 1754471202),
        ("quote.bin", "collateral_2025-09-29.json", 1759388630),
        ("quote_no_nonce.bin", "collateral_2025-09-29.json", 1759388630),
    ],
)
def test_gcp_quotes_are_up_to_date(vectors: Vectors, quote: str, collateral: str, at: int) -> None:
    folder = "tdx/gcp-teekit-v4-00806f05"
    result = _appraise(_dcap(vectors(f"{folder}/{collateral}")), vectors(f"{folder}/{quote}"), at)
    assert result.accepted, result.to_json()
    assert result.tcb.status == "UpToDate"
    assert result.claims["fmspc"] == "00806F050000"


def test_gcp_quote_with_older_collateral_fails_on_the_pck_certificate(vectors: Vectors) -> None:
    with pytest.raises(StaleEvidence) as info:
        _appraise(
            _dcap(vectors("tdx/outofdate-v4-00806f05/collateral_2025-01.json")),
            vectors("tdx/gcp-teekit-v4-00806f05/quote.bin"),
            1740048927,
        )
    assert info.value.check == "dcap.certificate_not_yet_valid"


OUTDATED = {
    "automata_quote.bin": ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
    "edgeless_quote.bin": ("INTEL-SA-00837", "INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
    "zkdcap_quote.bin": ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"),
}


@pytest.mark.parametrize("quote", sorted(OUTDATED))
def test_out_of_date_quotes_need_an_explicit_policy(vectors: Vectors, quote: str) -> None:
    folder = "tdx/outofdate-v4-00806f05"
    validator = _dcap(vectors(f"{folder}/collateral_2025-01.json"))
    path = vectors(f"{folder}/{quote}")
    rejected = _appraise(validator, path, 1740048927)
    assert rejected.tcb.status == "OutOfDate"
    assert rejected.tcb.advisory_ids == OUTDATED[quote]
    assert not rejected.accepted
    assert [f.check for f in rejected.failures] == ["tcb.status", "tcb.advisories"]
    only_status = _appraise(
        validator, path, 1740048927, accepted_tcb_statuses={"UpToDate", "OutOfDate"}
    )
    assert [f.check for f in only_status.failures] == ["tcb.advisories"]
    accepted = _appraise(
        validator,
        path,
        1740048927,
        accepted_tcb_statuses={"UpToDate", "OutOfDate"},
        accepted_advisory_ids=OUTDATED[quote],
    )
    assert accepted.accepted, accepted.to_json()
    assert accepted.status is Status.WARNING


def test_recorded_quote_with_nothing_pinned_is_refused(vectors: Vectors) -> None:
    # A genuine, up-to-date TD: any TDX VM anyone rents produces one.
    folder = "tdx/dcap-sample"
    expected = json.loads(vectors(f"{folder}/expected.json").read_text())
    validator = _dcap(vectors(f"{folder}/collateral.json"))
    quote, at = vectors(f"{folder}/quote.bin"), expected["verify_at_unix"]
    result = _appraise(validator, quote, at, Policy())
    assert result.tcb.status == "UpToDate"
    assert [f.check for f in result.failures] == ["workload.unpinned"]
    mrtd = expected["report"]["TD10"]["mr_td"]
    assert result.failures[0].actual["mrtd"] == mrtd
    assert f'mrtd = "{mrtd}"' in result.failures[0].message
    explored = _appraise(validator, quote, at, Policy(allow_any_workload=True))
    assert explored.accepted
    assert [w.split(":")[0] for w in explored.warnings] == ["binding.offline", "workload.unpinned"]


def test_v5_quote_without_tcb_level_is_rejected(vectors: Vectors) -> None:
    folder = "tdx/dcap-sample-no-tcb-level"
    assert parse_report_fields(vectors(f"{folder}/quote.bin").read_bytes())[1] == 5
    with pytest.raises(UntrustedChain) as info:
        _appraise(
            _dcap(vectors(f"{folder}/collateral.json")), vectors(f"{folder}/quote.bin"), 1771415931
        )
    assert info.value.check == "dcap.tcb_level"
    assert "No matching TCB level found" in str(info.value)


def test_recorded_quotes_expire_with_their_collateral(vectors: Vectors) -> None:
    folder = "tdx/dcap-sample"
    with pytest.raises(StaleEvidence):
        _appraise(
            _dcap(vectors(f"{folder}/collateral.json")),
            vectors(f"{folder}/quote.bin"),
            1750331763 + 90 * 86400,
        )


# --- dstack ------------------------------------------------------------------------


def _quote_fields(quote: bytes) -> dict[str, Any]:
    return parse_report_fields(quote_from_bytes(quote))[2]


APP_ID_3763 = "3763bc34552cf3a27ff71ad5f7a90471562a1a2d"
COMPOSE_3763 = APP_ID_3763 + "f552dfc1998cba2d60da27e7"
"""The recorded dstack TD's app id (here the first 20 bytes of its compose hash)."""


def test_dstack_quote_report_replays_and_verifies(vectors: Vectors) -> None:
    folder = "tdx/dstack-quote-report"
    expected = json.loads(vectors(f"{folder}/expected.json").read_text())
    response = json.loads(vectors(f"{folder}/get_quote_response.json").read_text())
    events = parse_event_log(response["event_log"])
    assert len(events) == 28
    assert sum(e.is_runtime for e in events) == 8
    fields = _quote_fields(bytes.fromhex(response["quote"]))
    check_replay(events, [fields[f"rtmr{i}"] for i in range(4)])
    validator = DstackValidator(
        {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
    )
    document = vectors(f"{folder}/get_quote_response.json")
    unpinned = _appraise(validator, document, expected["verify_at_unix"], Policy())
    assert [f.check for f in unpinned.failures] == ["workload.unpinned"]
    assert unpinned.failures[0].actual["compose_hash"] == COMPOSE_3763
    assert "allowed_compose_hashes" in unpinned.failures[0].message
    assert "allowed_app_ids" not in unpinned.failures[0].message  # the host chooses app ids
    app_id_only = Policy(options={"allowed_app_ids": [APP_ID_3763]})
    by_app_id = _appraise(validator, document, expected["verify_at_unix"], app_id_only)
    assert [f.check for f in by_app_id.failures if f.enforced] == ["workload.unpinned"]
    result = _appraise(
        validator,
        document,
        expected["verify_at_unix"],
        Policy(
            options={"allowed_compose_hashes": [COMPOSE_3763], "allowed_app_ids": [APP_ID_3763]}
        ),
    )
    assert result.accepted, result.to_json()
    assert sorted(w.split(":")[0] for w in result.warnings) == [
        "binding.offline",
        "dstack.boot_chain",
    ]
    _check_expected(result, expected)
    facts = dstack_facts(events)
    assert result.measurements["compose_hash"] == facts.compose_hash.hex()  # type: ignore[union-attr]
    assert result.measurements["app_id"] == APP_ID_3763
    assert list(result.claims["app_events"]) == ["LIUM_MINER_HOTKEY"]
    pinned = Policy(
        reference_values={
            name: ReferenceValue(accepted=[expected["report"]["TD10"][field]])
            for name, field in (
                ("mrtd", "mr_td"),
                ("rtmr0", "rt_mr0"),
                ("rtmr1", "rt_mr1"),
                ("rtmr2", "rt_mr2"),
            )
        },
        options={"allowed_compose_hashes": [COMPOSE_3763]},
    )
    strict = _appraise(
        validator, vectors(f"{folder}/get_quote_response.json"), expected["verify_at_unix"], pinned
    )
    assert strict.accepted
    assert [w.split(":")[0] for w in strict.warnings] == ["binding.offline"]


def _near_bob_document(vectors: Vectors, tmp_path: Path, **changes: Any) -> Path:
    folder = "tdx/dstack-near-bob-20a06f-eventlog"
    tcb_info = json.loads(vectors(f"{folder}/tcb_info_with_event_log.json").read_text())
    tcb_info.update(changes)
    document = {"quote": vectors(f"{folder}/quote.hex").read_text().strip(), **tcb_info}
    path = tmp_path / "near-bob.json"
    path.write_text(json.dumps(document))
    return path


def test_dstack_near_bob_replays_and_its_compose_matches(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/dstack-near-bob-20a06f-eventlog"
    tcb_info = json.loads(vectors(f"{folder}/tcb_info_with_event_log.json").read_text())
    events = parse_event_log(json.dumps(tcb_info["event_log"]))
    assert len(events) == 29
    fields = _quote_fields(vectors(f"{folder}/quote.hex").read_bytes())
    check_replay(events, [fields[f"rtmr{i}"] for i in range(4)])
    facts = dstack_facts(events)
    compose = hashlib.sha256(tcb_info["app_compose"].encode()).digest()
    assert facts.compose_hash == compose
    assert compose.hex() == tcb_info["compose_hash"]
    assert fields["mrconfigid"] == expected_mr_config_id(compose)
    assert facts.os_image_hash is not None
    assert facts.os_image_hash.hex() == tcb_info["os_image_hash"]

    validator = DstackValidator(
        {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
    )
    pinned = Policy(
        reference_values={
            n: ReferenceValue(accepted=[tcb_info[n]]) for n in ("mrtd", "rtmr0", "rtmr1", "rtmr2")
        },
        options={
            "app_compose": tcb_info["app_compose"],
            "allowed_os_image_hashes": [tcb_info["os_image_hash"]],
        },
    )
    result = _appraise(validator, _near_bob_document(vectors, tmp_path), 1759388630, pinned)
    assert result.accepted, result.to_json()
    assert result.tcb.status == "UpToDate"
    for name in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"):
        assert result.measurements[name] == tcb_info[name], name
    assert result.measurements["mrconfigid"] == "01" + tcb_info["compose_hash"] + "00" * 15
    assert result.measurements["compose_hash"] == tcb_info["compose_hash"]
    assert result.measurements["os_image_hash"] == tcb_info["os_image_hash"]
    assert result.claims["app_compose_sha256"] == tcb_info["compose_hash"]
    assert [w.split(":")[0] for w in result.warnings] == ["binding.offline"]


def test_dstack_near_bob_with_a_lying_app_compose_is_rejected(
    vectors: Vectors, tmp_path: Path
) -> None:
    folder = "tdx/dstack-near-bob-20a06f-eventlog"
    validator = DstackValidator(
        {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
    )
    lying = _near_bob_document(vectors, tmp_path, app_compose='{"docker_compose_file":"evil"}')
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, lying, 1759388630)
    assert info.value.check == "dstack.app_compose"


def test_dstack_near_bob_with_a_forged_event_is_rejected(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/dstack-near-bob-20a06f-eventlog"
    tcb_info = json.loads(vectors(f"{folder}/tcb_info_with_event_log.json").read_text())
    events = tcb_info["event_log"]
    forged = next(e for e in events if e["event"] == "os-image-hash")
    forged["event_payload"] = "00" * 32  # the recorded (genuine) digest stays
    validator = DstackValidator(
        {"collateral_file": str(vectors(f"{folder}/collateral.json")), "cache_dir": "none"}
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, _near_bob_document(vectors, tmp_path, event_log=events), 1759388630)
    assert info.value.check == "dstack.event_digest"


def test_dstack_simulator_replays_but_has_no_tcb_level(vectors: Vectors, tmp_path: Path) -> None:
    folder = "tdx/neg-dstack-simulator-b0c06f-eventlog-ok-tcb-nomatch"
    quote_hex = vectors(f"{folder}/quote.hex").read_text().strip()
    event_log = vectors(f"{folder}/eventlog.json").read_text()
    events = parse_event_log(event_log)
    fields = _quote_fields(quote_hex.encode())
    check_replay(events, [fields[f"rtmr{i}"] for i in range(4)])
    document = tmp_path / "simulator.json"
    document.write_text(json.dumps({"quote": quote_hex, "event_log": event_log}))
    validator = DstackValidator(
        {
            "collateral_file": str(vectors(f"{folder}/collateral_2025-09-29.json")),
            "cache_dir": "none",
        }
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, document, 1759388630)
    assert info.value.check == "dcap.tcb_level"

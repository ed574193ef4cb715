"""Policy: fail-closed defaults, parsing with located errors, a stable digest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from typing import Any

import pytest

from atls_core.errors import ConfigurationError
from atls_core.policy import TCB_STATUSES, Policy, ReferenceValue


def test_defaults_fail_closed() -> None:
    policy = Policy()
    assert policy.accepted_tcb_statuses is None
    assert policy.tcb_statuses == frozenset({"UpToDate"})
    assert policy.allow_any_workload is False
    assert policy.accepted_advisory_ids == frozenset()
    assert policy.allow_debug is False
    assert policy.max_age is None
    assert policy.require_nonce is False
    assert dict(policy.reference_values) == {}
    assert dict(policy.options) == {}
    assert Policy.from_mapping({}) == policy


def test_full_table_from_toml() -> None:
    text = """
        id = "prod-2025"
        accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
        accepted_advisory_ids = ["intel-sa-00615"]
        allow_debug = false
        max_age = 300
        require_nonce = true
        min_svn = 4
        [reference_values]
        mrtd = "0xAABB"
        rtmr1 = ["cc", "DD"]
        image = { values = ["ee"], enforce = false }
        config = { value = "ff" }
    """
    policy = Policy.from_mapping(tomllib.loads(text))
    assert policy.id == "prod-2025"
    assert policy.accepted_tcb_statuses == frozenset({"UpToDate", "SWHardeningNeeded"})
    assert policy.accepted_advisory_ids == {"INTEL-SA-00615"}
    assert policy.max_age == dt.timedelta(seconds=300)
    assert policy.require_nonce is True
    assert policy.option("min_svn") == 4
    assert policy.option("absent", "fallback") == "fallback"
    refs = policy.reference_values
    assert refs["mrtd"] == ReferenceValue(accepted=["aabb"])
    assert refs["rtmr1"].accepted == {"cc", "dd"}
    assert refs["image"].enforce is False
    assert refs["config"].accepted == {"ff"}


def test_reference_value_matching_is_normalised() -> None:
    ref = ReferenceValue(accepted=["0xABcd", "  ef01 "])
    assert ref.matches("abcd")
    assert ref.matches("0XABCD")
    assert ref.matches("EF01")
    assert not ref.matches("abce")
    assert not ref.matches("abcd00"), "no prefix matching"
    assert ref.to_dict() == {"values": ["abcd", "ef01"], "enforce": True}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"accepted_tcb_statuses": ["UpToDat"]}, "accepted_tcb_statuses: unknown status"),
        ({"accepted_tcb_statuses": "UpToDate"}, "accepted_tcb_statuses must be a list"),
        ({"accepted_advisory_ids": [1]}, "accepted_advisory_ids must be a list of strings"),
        ({"allow_debug": "yes"}, "allow_debug must be true or false"),
        ({"require_nonce": 1}, "require_nonce must be true or false"),
        ({"max_age": 0}, "max_age must be a positive number"),
        ({"max_age": -5}, "max_age must be a positive number"),
        ({"max_age": True}, "max_age must be a positive number"),
        ({"max_age": "300"}, "max_age must be a positive number"),
        ({"id": 7}, "id must be a string"),
        ({"reference_values": ["x"]}, "reference_values must be a table"),
        ({"reference_values": {"mrtd": 5}}, "reference_values.mrtd must be a string"),
        ({"reference_values": {"mrtd": []}}, "reference_values.mrtd lists no value"),
        ({"reference_values": {"mrtd": {"enforce": True}}}, "reference_values.mrtd needs"),
        ({"reference_values": {"mrtd": {"values": ["a"], "x": 1}}}, "unknown key(s) ['x']"),
        (
            {"reference_values": {"mrtd": {"values": ["a"], "enforce": "no"}}},
            "reference_values.mrtd.enforce must be true or false",
        ),
    ],
)
def test_invalid_policies_name_the_key(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Policy.from_mapping(data, where='cfg.toml: hosts."a".policy')
    assert info.value.check == "config.policy"
    assert fragment in str(info.value)
    assert 'cfg.toml: hosts."a".policy' in str(info.value)


def test_policy_must_be_a_table() -> None:
    with pytest.raises(ConfigurationError):
        Policy.from_mapping(["not", "a", "table"])  # type: ignore[arg-type]


def test_every_intel_status_is_accepted_by_the_parser() -> None:
    policy = Policy.from_mapping({"accepted_tcb_statuses": list(TCB_STATUSES)})
    assert policy.accepted_tcb_statuses == frozenset(TCB_STATUSES)


def test_digest_is_stable_and_order_independent() -> None:
    first = Policy.from_mapping(
        {
            "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
            "reference_values": {"a": ["01", "02"], "b": "03"},
            "opt": {"y": 1, "x": [1, 2]},
        }
    )
    second = Policy.from_mapping(
        {
            "opt": {"x": [1, 2], "y": 1},
            "reference_values": {"b": "0x03", "a": ["02", "01"]},
            "accepted_tcb_statuses": ["SWHardeningNeeded", "UpToDate"],
        }
    )
    assert first.digest == second.digest
    assert len(first.digest) == 64
    canonical = json.dumps(first.to_dict(), sort_keys=True, separators=(",", ":"))
    assert first.digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert Policy().digest == Policy().digest


@pytest.mark.parametrize(
    "change",
    [
        {"id": "other"},
        {"allow_debug": True},
        {"require_nonce": True},
        {"max_age": 60},
        {"accepted_advisory_ids": ["INTEL-SA-00001"]},
        {"accepted_tcb_statuses": ["UpToDate", "OutOfDate"]},
        {"reference_values": {"mrtd": "aa"}},
        {"reference_values": {"mrtd": {"values": ["aa"], "enforce": False}}},
        {"some_option": 1},
    ],
)
def test_digest_changes_with_every_field(change: dict[str, Any]) -> None:
    assert Policy.from_mapping(change).digest != Policy().digest


def test_policy_is_frozen() -> None:
    import attrs

    policy = Policy.from_mapping({"reference_values": {"a": "01"}, "k": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.allow_debug = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.options["k"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.reference_values["b"] = ReferenceValue(accepted=["02"])  # type: ignore[index]


# -- regressions from the R3 security review -------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Policy(accepted_tcb_statuses="UpToDate"),
        lambda: Policy(accepted_advisory_ids="INTEL-SA-00615"),
    ],
)
def test_a_bare_string_is_not_a_set_of_its_characters(build: Any) -> None:
    # ReferenceValue(accepted="12") used to accept the measurements "1" and "2".
    with pytest.raises(ConfigurationError) as info:
        build()
    assert info.value.check == "config.policy"


def test_a_bare_reference_string_is_one_value() -> None:
    # ReferenceValue(accepted="12") used to accept the measurements "1" and "2";
    # a single string is now one accepted value, as it is in TOML.
    assert ReferenceValue(accepted="12").accepted == frozenset({"12"})
    assert not ReferenceValue(accepted="12").matches("1")


def test_an_empty_reference_value_is_refused() -> None:
    # An empty accepted value would match a measurement recorded from empty bytes.
    with pytest.raises(ConfigurationError):
        ReferenceValue(accepted=["0x"])
    with pytest.raises(ConfigurationError) as info:
        Policy.from_mapping({"reference_values": {"mrtd": ""}})
    assert "reference_values.mrtd" in str(info.value)
    with pytest.raises(ConfigurationError):
        Policy.from_mapping({"reference_values": {"mrtd": {"values": ["aa", " "]}}})

"""RA_TLS_* variables translated with Gramine's semantics, read once, never implicitly."""

from __future__ import annotations

import pytest

from atls_core.errors import ConfigurationError
from atls_core.policy import TCB_STATUSES
from atls_gramine.gramine_policy import gramine_tcb_statuses, policy_from_gramine_env

MRENCLAVE = "AB" * 32
MRSIGNER = "cd" * 32
BASE = {
    "RA_TLS_MRENCLAVE": MRENCLAVE,
    "RA_TLS_MRSIGNER": MRSIGNER,
    "RA_TLS_ISV_PROD_ID": "12",
    "RA_TLS_ISV_SVN": "3",
}


def test_values_become_reference_values_and_options() -> None:
    policy = policy_from_gramine_env(BASE)
    assert policy.reference_values["mrenclave"].accepted == frozenset({MRENCLAVE.lower()})
    assert policy.reference_values["mrsigner"].accepted == frozenset({MRSIGNER})
    assert dict(policy.options) == {"isv_prod_id": 12, "min_isv_svn": 3}
    assert policy.accepted_tcb_statuses == frozenset({"UpToDate"})
    assert policy.allow_debug is False
    assert policy.allow_any_workload is False
    assert policy.accepted_advisory_ids == frozenset()


def test_any_means_unchecked() -> None:
    """Both identities ``any``: Gramine's explicit "any enclave" is allow_any_workload."""
    policy = policy_from_gramine_env(dict.fromkeys(BASE, "any"))
    assert dict(policy.reference_values) == {}
    assert dict(policy.options) == {}
    assert policy.allow_any_workload is True


@pytest.mark.parametrize("pinned", ["RA_TLS_MRENCLAVE", "RA_TLS_MRSIGNER"])
def test_one_identity_value_pins_the_workload(pinned: str) -> None:
    environ = {**dict.fromkeys(BASE, "any"), pinned: BASE[pinned]}
    policy = policy_from_gramine_env(environ)
    assert set(policy.reference_values) == {pinned.removeprefix("RA_TLS_").lower()}
    assert policy.allow_any_workload is False


def test_any_isv_values_do_not_allow_any_workload() -> None:
    environ = {**BASE, "RA_TLS_ISV_PROD_ID": "any", "RA_TLS_ISV_SVN": "any"}
    assert policy_from_gramine_env(environ).allow_any_workload is False


@pytest.mark.parametrize("missing", sorted(BASE))
def test_each_identity_variable_is_required(missing: str) -> None:
    environ = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigurationError) as info:
        policy_from_gramine_env(environ)
    assert missing in str(info.value)
    assert info.value.check == "config.gramine_env"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RA_TLS_MRENCLAVE", "ab" * 31),
        ("RA_TLS_MRSIGNER", "zz" * 32),
        ("RA_TLS_MRSIGNER", "ANY"),  # Gramine compares with "any" exactly
        ("RA_TLS_ISV_PROD_ID", "abc"),  # strtoul would read 0: refused here
        ("RA_TLS_ISV_PROD_ID", "65536"),
        ("RA_TLS_ISV_SVN", "-1"),
        ("RA_TLS_ISV_SVN", ""),
    ],
)
def test_malformed_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        policy_from_gramine_env({**BASE, name: value})


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, {"UpToDate"}),
        ({"RA_TLS_ALLOW_HW_CONFIG_NEEDED"}, {"UpToDate", "ConfigurationNeeded"}),
        ({"RA_TLS_ALLOW_SW_HARDENING_NEEDED"}, {"UpToDate", "SWHardeningNeeded"}),
        ({"RA_TLS_ALLOW_OUTDATED_TCB_INSECURE"}, {"UpToDate", "OutOfDate"}),
        (
            {"RA_TLS_ALLOW_HW_CONFIG_NEEDED", "RA_TLS_ALLOW_SW_HARDENING_NEEDED"},
            {
                "UpToDate",
                "ConfigurationNeeded",
                "SWHardeningNeeded",
                "ConfigurationAndSWHardeningNeeded",
            },
        ),
        (
            {"RA_TLS_ALLOW_OUTDATED_TCB_INSECURE", "RA_TLS_ALLOW_HW_CONFIG_NEEDED"},
            {"UpToDate", "ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"},
        ),
        (
            {
                "RA_TLS_ALLOW_OUTDATED_TCB_INSECURE",
                "RA_TLS_ALLOW_HW_CONFIG_NEEDED",
                "RA_TLS_ALLOW_SW_HARDENING_NEEDED",
            },
            set(TCB_STATUSES) - {"Revoked", "TDRelaunchAdvised"},
        ),
    ],
)
def test_allow_knobs_map_to_tcb_statuses_as_gramine(flags: set[str], expected: set[str]) -> None:
    policy = policy_from_gramine_env({**BASE, **dict.fromkeys(flags, "1")})
    assert policy.accepted_tcb_statuses == frozenset(expected)
    assert "Revoked" not in policy.accepted_tcb_statuses


@pytest.mark.parametrize("value", ["0", "true", "yes", " 1", "1 ", ""])
def test_only_exactly_1_enables_a_knob(value: str) -> None:
    policy = policy_from_gramine_env(
        {
            **BASE,
            "RA_TLS_ALLOW_OUTDATED_TCB_INSECURE": value,
            "RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE": value,
        }
    )
    assert policy.accepted_tcb_statuses == frozenset({"UpToDate"})
    assert policy.allow_debug is False


def test_debug_knob() -> None:
    assert policy_from_gramine_env({**BASE, "RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE": "1"}).allow_debug


def test_defaults_to_os_environ_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    policy = policy_from_gramine_env()
    monkeypatch.setenv("RA_TLS_ISV_SVN", "9")
    assert policy.options["min_isv_svn"] == 3


def test_advisories_are_explicit() -> None:
    policy = policy_from_gramine_env(BASE, accepted_advisory_ids=["intel-sa-00615"])
    assert policy.accepted_advisory_ids == frozenset({"INTEL-SA-00615"})


def test_status_helper_never_accepts_revoked() -> None:
    everything = gramine_tcb_statuses(
        allow_outdated_tcb=True, allow_hw_config_needed=True, allow_sw_hardening_needed=True
    )
    assert "Revoked" not in everything
    assert gramine_tcb_statuses() == frozenset({"UpToDate"})

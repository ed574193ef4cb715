"""Human-readable reports: everything a person needs, nothing a hostile server can forge."""

from __future__ import annotations

import datetime as dt
from typing import Any

from atls_core.binding import Freshness
from atls_core.errors import AppraisalFailed, BindingMismatch, ConfigurationError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy, ReferenceValue
from atls_core.registry import PluginInfo
from atls_core.report import render_error, render_result, safe_text
from atls_core.result import AttestationResult
from atls_core.testing.facts import TEST_KEY_DIGEST, TEST_NONCE, Facts, unit_spec

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
SPEC = unit_spec(
    "unit.box",
    media_type="x/y",
    tee_type="tdx",
    oids=("1.3.9999.1",),
    measurements=("mrtd", "rtmr0"),
    workload_identity=("mrtd",),
)
PLUGIN = PluginInfo(name="unit", distribution="atls-unit", version="2.0.1", value="unit")
PIN = {"mrtd": "aa" * 48}
EVIDENCE = Evidence(
    media_type="x/y", data=b"e", source=EvidenceSource(transport=Transport.FILE, location="f")
)


class _Pending(Facts):
    def __init__(self, policy: Policy, freshness: Freshness = Freshness.NONCE) -> None:
        super().__init__()
        self.policy = policy
        self.freshness = freshness

    def finish(self) -> AttestationResult:
        return self.appraise(
            SPEC, EVIDENCE, policy=self.policy, now=NOW, freshness=self.freshness, plugin=PLUGIN
        )


def _appraisal(policy: Policy | None = None) -> Any:
    appraisal = _Pending(policy or Policy(id="prod", reference_values=PIN))
    appraisal.set_debug(False)
    appraisal.set_tcb(
        "UpToDate", (), date=dt.datetime(2025, 2, 12, tzinfo=dt.UTC), evaluation_data_number=19
    )
    appraisal.measure("mrtd", b"\xaa" * 48)
    appraisal.measure("rtmr0", "0xBB")
    appraisal.valid_until(NOW + dt.timedelta(hours=5), "collateral next update")
    return appraisal


def test_an_accepted_report_has_every_field() -> None:
    text = render_result(_appraisal().finish())
    lines = text.splitlines()
    assert lines[0] == "ACCEPTED (status: affirming)"
    for fragment in (
        "validator:     unit.box (plugin unit 2.0.1, atls-core ",
        "tee:           tdx",
        "debug:         no",
        "tcb status:    UpToDate",
        "advisories:    none",
        "tcb date:      2025-02-12T00:00:00Z",
        "tcb eval num:  19",
        "binding:       atls-v1, verified, freshness nonce",
        "key sha256:    " + TEST_KEY_DIGEST,
        "nonce:         " + TEST_NONCE.hex(),
        "policy:        prod (sha256 " + Policy(id="prod", reference_values=PIN).digest + ")",
        "evidence:      sha256 " + EVIDENCE.digest,
        "issued at:     2025-06-01T12:00:00Z",
        "expires at:    2025-06-01T17:00:00Z (collateral next update)",
        "  mrtd: " + "aa" * 48,
        "  rtmr0: bb",
    ):
        assert fragment in text, fragment
    assert "failed checks:" not in text
    assert "warnings:" not in text


def test_a_rejected_report_names_every_failed_check() -> None:
    policy = Policy(
        id="strict",
        reference_values={
            "mrtd": ReferenceValue(accepted=["00"]),
            "rtmr0": ReferenceValue(accepted=["cc"], enforce=False),
        },
    )
    appraisal = _appraisal(policy)
    appraisal.set_tcb("OutOfDate", ["INTEL-SA-00828"])
    appraisal.set_debug(True)
    text = render_result(appraisal.finish())
    assert text.startswith("REJECTED (status: contraindicated)\n")
    assert "advisories:    INTEL-SA-00828" in text
    assert "debug:         yes" in text
    assert (
        "  - tcb.status: TCB status is not in the policy's accepted_tcb_statuses "
        "(expected ['UpToDate'], got OutOfDate)" in text
    )
    assert "  - debug: the TEE is in debug mode (expected False, got True)" in text
    assert "  - reference.mrtd: measurement does not match the reference value" in text
    assert "  - reference.rtmr0: measurement does not match the reference value [warn-only]" in text
    assert "warnings:" in text


def test_offline_unknown_and_no_expiry() -> None:
    appraisal = _Pending(Policy(reference_values=PIN), Freshness.UNBOUND)
    text = render_result(appraisal.finish())
    # Offline, nothing failed: there is no TLS key to bind to.
    assert "binding:       atls-v1, not checked (offline: no TLS connection to bind to)" in text
    assert "NOT verified" not in text
    assert "debug:         unknown" in text
    assert "tcb status:    none recorded" in text
    assert "expires at:    no expiry" in text
    assert "  - binding.offline: offline appraisal" in text


def test_server_supplied_text_cannot_forge_lines() -> None:
    appraisal = _appraisal()
    appraisal.set_tcb("UpToDate\nACCEPTED (status: affirming)", [])
    appraisal.warn("x", "evil\x1b[2J\rwarning")
    text = render_result(appraisal.finish())
    assert "\x1b" not in text
    assert "\r" not in text
    assert not [line for line in text.splitlines() if line.startswith("ACCEPTED")]
    assert "UpToDate\\nACCEPTED" in text
    assert "\\x1b[2J" in text
    assert safe_text("plain") == "plain"
    assert safe_text("a\tb") == "a\\tb"
    assert safe_text(5) == "5"


def test_render_error_is_one_line() -> None:
    error = BindingMismatch(
        "does not bind", check="binding.report_data", expected=b"\x01", actual=b"\x02"
    )
    assert render_error(error) == "atls: binding.report_data: does not bind (expected 01, got 02)"
    multi = ConfigurationError("cfg.toml: invalid TOML: bad\nline 3", check="config.file")
    assert render_error(multi) == "atls: config.file: cfg.toml: invalid TOML: bad line 3"
    assert render_error(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "atls: os: No such file or directory /x"
    )
    assert render_error(ValueError("odd")) == "atls: error: ValueError: odd"
    assert render_error(KeyError()) == "atls: error: KeyError"
    result = _appraisal(Policy(allow_debug=False, reference_values=PIN)).finish()
    failed = AppraisalFailed("rejected", result=result, check="tcb.status", actual="Revoked\x1b")
    assert render_error(failed) == "atls: tcb.status: rejected (got Revoked\\x1b)"

"""snp.report's results and policy options, on synthetic reports bound to a test key and nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, Freshness, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ChallengeResponse
from atls_core.policy import Policy
from atls_core.result import AttestationResult, Status
from atls_core.selection import select_validator
from atls_snp.certs import parse_certificate
from atls_snp.specs import SNP_EVIDENCE_MEDIA_TYPE, SNP_REPORT_MEDIA_TYPE
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.validator import SnpReportValidator

PINNED = {"measurement": DEFAULT_MEASUREMENT.hex()}


def _spki() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def appraised(
    world: SyntheticSnp,
    *,
    policy: Policy | None = None,
    vlek: bool = False,
    settings: dict[str, Any] | None = None,
    guest_policy: int | None = None,
    **fields: Any,
) -> AttestationResult:
    """Appraise a fresh report (``fields`` are make_report's; ``guest_policy`` its ``policy``)."""
    if guest_policy is not None:
        fields["policy"] = guest_policy
    spki, nonce = _spki(), new_nonce()
    report_data = report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    validator = SnpReportValidator(world.settings(**(settings or {})))
    evidence = validator.evidence_from_file(
        world.envelope(report_data, vlek=vlek, **fields), name="evidence.der"
    )
    pinned = policy if policy is not None else Policy(reference_values=PINNED)
    return world.appraise(
        validator, evidence, pinned, binding=BindingContext(spki_der=spki, nonce=nonce)
    )


def _failed(result: AttestationResult) -> list[str]:
    return [f.check for f in result.failures if f.enforced]


def test_a_genuine_report_is_accepted_with_everything_recorded(milan: SyntheticSnp) -> None:
    result = appraised(milan, host_data=b"\x11" * 32, guest_svn=7)
    assert result.accepted, result.to_json()
    assert result.tee_type == "sev-snp"
    assert result.debug is False
    assert result.binding.scheme == "atls-v1"
    assert result.binding.freshness is Freshness.NONCE
    assert result.measurements == {
        "measurement": DEFAULT_MEASUREMENT.hex(),
        "host_data": "11" * 32,
        "id_key_digest": "00" * 48,
        "author_key_digest": "00" * 48,
        "family_id": "00" * 16,
        "image_id": "00" * 16,
        "guest_svn": "7",
        "chip_id": milan.chip_id.hex(),
    }
    claims = result.claims
    assert claims["product"] == "Milan"
    assert claims["signing_key"] == "VCEK"
    assert claims["report_version"] == 3
    assert claims["reported_tcb"]["snp"] == milan.tcb["snp"]
    assert claims["cpuid"] == {"family": 0x19, "model": 0x01, "stepping": 0x01}
    assert claims["committed_firmware"] == "1.55.30"
    assert claims["guest_policy"]["debug"] is False
    assert claims["certificates"]["vek"]["serial"] == 0
    assert claims["certificates"]["ark"]["pinned"] is False
    assert claims["certificates"]["vek"]["source"] == "evidence"
    assert claims["crl"]["checked"] is False
    assert result.expires_at == parse_certificate(milan.vcek.certificate).not_after
    # Status: a test root and an unchecked CRL and no TCB verdict are all warnings.
    assert result.status is Status.WARNING
    warned = {w.split(":", 1)[0] for w in result.warnings}
    assert {"snp.test_root", "snp.crl", "tcb"} <= warned


def test_vlek_reports_are_accepted(milan: SyntheticSnp) -> None:
    result = appraised(milan, vlek=True)
    assert result.accepted, result.to_json()
    assert result.claims["signing_key"] == "VLEK"
    assert result.measurements["chip_id"] == "00" * 64
    assert result.claims["certificates"]["vek"]["csp_id"] == "cc-test.example"


def test_debug_guest_is_refused_unless_policy_allows_it(milan: SyntheticSnp) -> None:
    debug_policy = 0x30000 | 1 << 19
    refused = appraised(milan, guest_policy=debug_policy)
    assert not refused.accepted
    assert _failed(refused) == ["debug"]
    assert refused.debug is True
    allowed = appraised(
        milan, policy=Policy(reference_values=PINNED, allow_debug=True), guest_policy=debug_policy
    )
    assert allowed.accepted


def test_vmpl_above_the_policy_maximum_is_refused(milan: SyntheticSnp) -> None:
    refused = appraised(milan, vmpl=2)
    assert _failed(refused) == ["snp.vmpl"]
    allowed = appraised(
        milan, vmpl=2, policy=Policy(reference_values=PINNED, options={"max_vmpl": 2})
    )
    assert allowed.accepted
    assert allowed.claims["vmpl"] == 2


def test_migration_agent_is_refused_by_default(milan: SyntheticSnp) -> None:
    with_ma = 0x30000 | 1 << 18
    assert _failed(appraised(milan, guest_policy=with_ma)) == ["snp.migration_agent"]
    allowed = appraised(
        milan,
        policy=Policy(reference_values=PINNED, options={"allow_migration_agent": True}),
        guest_policy=with_ma,
    )
    assert allowed.accepted
    assert allowed.claims["guest_policy"]["migrate_ma"] is True


def test_smt_is_refused_only_when_policy_says_so(milan: SyntheticSnp) -> None:
    no_smt = Policy(reference_values=PINNED, options={"allow_smt": False})
    assert _failed(appraised(milan, policy=no_smt, platform_info=0x25)) == ["snp.smt"]
    assert appraised(milan, policy=no_smt, platform_info=0x24).accepted
    assert appraised(milan, platform_info=0x25).accepted


def test_without_minimums_there_is_no_tcb_verdict(milan: SyntheticSnp) -> None:
    result = appraised(milan)
    assert result.tcb.status is None
    listed = Policy(reference_values=PINNED, accepted_tcb_statuses=["UpToDate"])
    refused = appraised(milan, policy=listed)
    assert _failed(refused) == ["tcb.status"]


def test_minimum_tcb_met_is_up_to_date(milan: SyntheticSnp) -> None:
    policy = Policy(
        reference_values=PINNED,
        options={"min_tcb": dict(milan.tcb), "min_firmware": "1.55.30"},
    )
    result = appraised(milan, policy=policy)
    assert result.accepted, result.to_json()
    assert result.tcb.status == "UpToDate"
    assert list(result.claims["tcb_below_minimum"]) == []


def test_below_the_minimum_tcb_is_out_of_date(milan: SyntheticSnp) -> None:
    minimum = {**milan.tcb, "snp": milan.tcb["snp"] + 1}
    policy = Policy(reference_values=PINNED, options={"min_tcb": minimum})
    result = appraised(milan, policy=policy)
    assert result.tcb.status == "OutOfDate"
    assert _failed(result) == ["tcb.status"]
    assert list(result.claims["tcb_below_minimum"]) == [
        f"snp {milan.tcb['snp']} < {minimum['snp']}"
    ]
    tolerant = Policy(
        reference_values=PINNED,
        options={"min_tcb": minimum},
        accepted_tcb_statuses=["UpToDate", "OutOfDate"],
    )
    assert appraised(milan, policy=tolerant).accepted


def test_minimum_firmware_is_the_committed_version(milan: SyntheticSnp) -> None:
    policy = Policy(reference_values=PINNED, options={"min_firmware": "1.55.31"})
    result = appraised(milan, policy=policy, firmware=(1, 55, 30))
    assert result.tcb.status == "OutOfDate"
    assert list(result.claims["tcb_below_minimum"]) == ["committed firmware 1.55.30 < 1.55.31"]


def test_per_product_minimums(milan: SyntheticSnp, turin: SyntheticSnp) -> None:
    per_product = {
        "Turin": {"fmc": 1, "bootloader": 0, "tee": 0, "snp": 0, "microcode": 0},
        "Milan": {"snp": 1},
    }
    policy = Policy(reference_values=PINNED, options={"min_tcb": per_product})
    assert appraised(milan, policy=policy).tcb.status == "UpToDate"
    turin_result = appraised(turin, policy=policy)
    assert turin_result.tcb.status == "OutOfDate"  # fmc 0 < 1
    assert list(turin_result.claims["tcb_below_minimum"]) == ["fmc 0 < 1"]
    only_genoa = Policy(reference_values=PINNED, options={"min_tcb": {"Genoa": {"snp": 1}}})
    unlisted = appraised(milan, policy=only_genoa)
    assert unlisted.tcb.status == "OutOfDate"
    assert list(unlisted.claims["tcb_below_minimum"]) == ["policy sets no min_tcb for Milan"]


def test_flat_fmc_minimum_applies_to_turin_only(milan: SyntheticSnp, turin: SyntheticSnp) -> None:
    policy = Policy(reference_values=PINNED, options={"min_tcb": {"fmc": 1, "snp": 1}})
    assert appraised(milan, policy=policy).tcb.status == "UpToDate"
    assert appraised(turin, policy=policy).tcb.status == "OutOfDate"


@pytest.mark.parametrize(
    ("options", "check"),
    [
        ({"max_vmpl": 4}, "config.snp.max_vmpl"),
        ({"max_vmpl": True}, "config.snp.max_vmpl"),
        ({"allow_smt": "no"}, "config.snp.allow_smt"),
        ({"allow_migration_agent": 1}, "config.snp.allow_migration_agent"),
        ({"min_tcb": {"snp": 300}}, "config.snp.min_tcb"),
        ({"min_tcb": {"sp": 1}}, "config.snp.min_tcb"),
        ({"min_tcb": {"Milan": {"fmc": 1}}}, "config.snp.min_tcb"),
        ({"min_tcb": {"Milan": {"snp": 1}, "snp": 2}}, "config.snp.min_tcb"),
        ({"min_tcb": 5}, "config.snp.min_tcb"),
        ({"min_firmware": "1.55"}, "config.snp.min_firmware"),
        ({"min_firmware": {"Turin": "x"}}, "config.snp.min_firmware"),
    ],
)
def test_malformed_options_are_configuration_errors(
    milan: SyntheticSnp, options: dict[str, Any], check: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        appraised(milan, policy=Policy(reference_values=PINNED, options=options))
    assert info.value.check == check


def test_pinning_a_zero_key_digest_pins_nothing(milan: SyntheticSnp) -> None:
    zero = Policy(reference_values={"id_key_digest": "00" * 48})
    refused = appraised(milan, policy=zero)
    assert _failed(refused) == ["workload.unpinned"]  # the core's rule: zeros are "not set"
    assert "reference_values.id_key_digest accepts all zeros" in refused.failures[0].message
    signer = bytes(range(48))
    signed = Policy(reference_values={"id_key_digest": signer.hex()})
    assert appraised(milan, policy=signed, id_key_digest=signer).accepted
    both = Policy(reference_values={**PINNED, "id_key_digest": "00" * 48})
    assert appraised(milan, policy=both).accepted


def test_host_data_alone_does_not_pin_the_workload(milan: SyntheticSnp) -> None:
    result = appraised(milan, policy=Policy(reference_values={"host_data": "00" * 32}))
    assert _failed(result) == ["workload.unpinned"]


def test_reference_values_for_other_fields(milan: SyntheticSnp) -> None:
    family = bytes([1]) + bytes(15)
    policy = Policy(
        reference_values={**PINNED, "guest_svn": "2", "family_id": family.hex()},
    )
    assert appraised(milan, policy=policy, guest_svn=2, family_id=family).accepted
    wrong = appraised(milan, policy=policy, guest_svn=3, family_id=family)
    assert _failed(wrong) == ["reference.guest_svn"]


def test_unpinned_and_allow_any_workload(milan: SyntheticSnp) -> None:
    assert _failed(appraised(milan, policy=Policy())) == ["workload.unpinned"]
    explored = appraised(milan, policy=Policy(allow_any_workload=True))
    assert explored.accepted
    assert explored.status is Status.WARNING


def test_the_envelope_media_type_is_accepted_as_is(milan: SyntheticSnp) -> None:
    validator = SnpReportValidator(milan.settings())
    evidence = Evidence(
        media_type=SNP_EVIDENCE_MEDIA_TYPE,
        data=milan.envelope(),
        source=EvidenceSource(transport=Transport.FILE),
    )
    result = milan.appraise(validator, evidence, Policy(reference_values=PINNED))
    assert result.accepted


def test_raw_and_hex_report_files_with_configured_certificates(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    vcek, ask = tmp_path / "vcek.der", tmp_path / "ask.der"
    vcek.write_bytes(milan.vcek.certificate)
    ask.write_bytes(milan.pki.ask)
    validator = SnpReportValidator(milan.settings(vcek=str(vcek), ask=str(ask)))
    report = milan.report()
    for data in (report, report.hex().encode(), b"0x" + report.hex().upper().encode() + b"\n"):
        evidence = validator.evidence_from_file(data, name="report")
        assert evidence.media_type == SNP_REPORT_MEDIA_TYPE
        assert evidence.data == report
        result = milan.appraise(validator, evidence, Policy(reference_values=PINNED))
        assert result.accepted
        certificates = result.claims["certificates"]
        assert [certificates[c]["source"] for c in ("ark", "intermediate", "vek")] == ["file"] * 3


def test_settings_are_checked_when_the_validator_is_built(
    milan: SyntheticSnp, tmp_path: Path
) -> None:
    synthetic_ark = tmp_path / "ark.pem"
    synthetic_ark.write_bytes(milan.pki.ark_pem())
    vcek = tmp_path / "vcek.der"
    vcek.write_bytes(milan.vcek.certificate)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ark": str(synthetic_ark)}, "config.snp.ark"),
        ({"test_ark": str(vcek)}, "config.snp.test_ark"),
        ({"vcek": str(tmp_path / "missing.pem")}, "config.snp.vcek"),
        ({"ask": b"not a certificate"}, "config.snp.ask"),
        ({"kds": "sometimes"}, "config.snp.kds"),
        ({"kds_url": "http://kds.example.com"}, "config.snp.kds_url"),
        ({"kds_timeout": 0}, "config.snp.kds_timeout"),
        ({"product": "Naples"}, "config.snp.product"),
        ({"crl": b"\x30\x00"}, "config.snp.crl"),
        ({"vcek_file": str(vcek)}, "config.settings"),  # also when a hand-over builds it
    ]
    for settings, check in cases:
        with pytest.raises(ConfigurationError) as info:
            SnpReportValidator(settings)
        assert info.value.check == check, settings


def test_test_root_needs_permission_and_caps_the_result(milan: SyntheticSnp) -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator("snp.report", settings=milan.settings())
    assert info.value.check == "config.test_settings"
    selected = select_validator(
        "snp.report",
        settings=milan.settings(),
        allow_insecure=True,
        policy=Policy(reference_values=PINNED),
    )
    assert selected.test_knobs == ("test_ark",)
    evidence = selected.validator.evidence_from_file(milan.envelope(), name="e")
    result = selected.appraise(
        evidence, binding=BindingContext.offline_context(), clock=FixedClock(milan.now)
    )
    assert result.accepted
    assert result.status is Status.WARNING
    assert list(result.claims["test_knobs"]) == ["test_ark"]


def test_unknown_policy_options_are_refused_by_the_core(milan: SyntheticSnp) -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "snp.report",
            settings=milan.settings(),
            allow_insecure=True,
            policy=Policy(options={"max_vmpI": 1}),
        )
    assert info.value.check == "config.policy_options"


def test_challenge_answer_must_be_200_and_an_envelope(milan: SyntheticSnp) -> None:
    validator = SnpReportValidator.challenge_validator(milan.settings())
    request = validator.challenge(bytes(32))
    assert request.path == "/.well-known/atls/snp-report"
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_challenge(ChallengeResponse(status=500, headers={}, body=b""))
    assert info.value.check == "challenge.status"
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_challenge(
            ChallengeResponse(status=200, headers={}, body=milan.report())
        )
    assert info.value.check == "snp.envelope"
    evidence = validator.evidence_from_challenge(
        ChallengeResponse(status=200, headers={}, body=milan.envelope())
    )
    assert evidence.source.transport is Transport.CHALLENGE
    assert evidence.endorsements["cert_chain"] == b"".join(milan.chain())

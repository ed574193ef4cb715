"""tdx.dcap against quotes signed under the synthetic DCAP PKI, through real dcap-qvl.

Policies pin the TD (``pinned()``) unless a test is about pinning: a genuine
quote alone proves only that *some* TD produced it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import (
    BindingMismatch,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.measurements import TDX_WORKLOAD
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import Status
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRSEAM, DEFAULT_MRTD, make_sgx_quote, make_tdx_quote
from atls_tdx.dcap_validator import TdxDcapValidator
from atls_tdx.oids import ATLS_TDX_QUOTE
from atls_tdx.specs import TDX_DCAP_SPEC, TDX_QUOTE_MEDIA_TYPE
from atls_tdx.testing.dstack import octet_string, self_signed_certificate, spki_of


def pinned(**kw: Any) -> Policy:
    """A policy pinning the synthetic TD's MRTD (plus ``reference_values`` given)."""
    references = {"mrtd": DEFAULT_MRTD.hex(), **kw.pop("reference_values", {})}
    return Policy(reference_values=references, **kw)


def _evidence(quote: bytes) -> Evidence:
    return Evidence(
        media_type=TDX_QUOTE_MEDIA_TYPE,
        data=quote,
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ATLS_TDX_QUOTE),
    )


@pytest.fixture
def world(synthetic: Any) -> Any:
    return synthetic


def _case(
    world: Any, *, nonce: bytes | None = None, policy: Policy | None = None, **quote_kw: Any
) -> Case:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    nonce = b.new_nonce() if nonce is None else nonce
    report_data = b.report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    return Case(
        evidence=_evidence(world.quote(report_data, **quote_kw)),
        binding=b.BindingContext(spki_der=spki, nonce=nonce or None),
        clock=world.clock,
        policy=policy or pinned(),
    )


class TestTdxDcapConformance(ValidatorConformance):
    world_fixture = "synthetic"
    validator_class = TdxDcapValidator

    def good_case(self) -> Case:
        return _case(self.world)

    def signed_regions(self, evidence: Evidence) -> list[tuple[int, int]]:
        return self.world.signed_regions(evidence.data)  # type: ignore[no-any-return]


def test_accepted_quote_records_every_report_field(world: Any) -> None:
    case = _case(world, rtmr=(b"\x01" * 48, b"\x02" * 48, b"\x03" * 48, b"\x04" * 48))
    result = case.appraised_by(TdxDcapValidator(world.settings()))
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.freshness is b.Freshness.NONCE
    assert result.tcb.status == "UpToDate"
    assert result.measurements["mrtd"] == DEFAULT_MRTD.hex()
    assert result.measurements["rtmr3"] == "04" * 48
    for name in ("mrseam", "mrsignerseam", "mrconfigid", "mrowner", "mrownerconfig"):
        assert name in result.measurements
    for name in ("tee_tcb_svn", "td_attributes", "xfam", "seam_attributes", "report_data"):
        assert name in result.claims
    assert result.claims["fmspc"] == world.pki.fmspc
    assert result.expires_at == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def test_quote_v5_is_accepted(world: Any) -> None:
    case = _case(world, version=5)
    result = case.appraised_by(TdxDcapValidator(world.settings()))
    assert result.accepted, result.to_json()
    assert result.claims["quote_version"] == 5
    assert "tee_tcb_svn2" in result.claims


def test_static_certificate_quote_is_key_only(world: Any) -> None:
    case = _case(world, nonce=b"")
    validator = TdxDcapValidator(world.settings())
    result = case.appraised_by(validator)
    assert result.binding.freshness is b.Freshness.KEY_ONLY
    strict = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=pinned(require_nonce=True)
    )
    assert not strict.accepted
    assert strict.failures[0].check == "freshness.nonce"


def test_debug_td_is_rejected_unless_policy_allows(world: Any) -> None:
    case = _case(world, debug=True)
    validator = TdxDcapValidator(world.settings())
    result = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=pinned()
    )
    assert not result.accepted
    assert result.debug is True
    assert [f.check for f in result.failures] == ["debug"]
    allowed = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=pinned(allow_debug=True)
    )
    assert allowed.accepted
    assert allowed.status is Status.WARNING


NON_INTEL_SIGNER = b"\x5a" * 48


def test_non_intel_tdx_module_listed_in_the_tcb_info_fails_tdx_mrsignerseam(world: Any) -> None:
    """The TCB info lists the non-Intel signer, so dcap-qvl accepts the quote; atls's own
    rule (MRSIGNERSEAM zero) is what refuses it."""
    case = _case(world, mr_signer_seam=NON_INTEL_SIGNER)
    settings = world.settings(collateral_kw={"tdx_module_signer": NON_INTEL_SIGNER})
    result = case.appraised_by(TdxDcapValidator(settings))
    assert [f.check for f in result.failures] == ["tdx.mrsignerseam"]


def test_non_intel_tdx_module_not_in_the_tcb_info_is_refused_by_dcap_qvl(world: Any) -> None:
    case = _case(world, mr_signer_seam=NON_INTEL_SIGNER)
    with pytest.raises(UntrustedChain) as info:
        case.appraised_by(TdxDcapValidator(world.settings()))
    assert info.value.check == "dcap.tdx_module"


def test_reference_values_enforced_and_warn_only(world: Any) -> None:
    case = _case(world)
    validator = TdxDcapValidator(world.settings())
    good = Policy(
        reference_values={"mrtd": ReferenceValue(accepted=["0x" + DEFAULT_MRTD.hex().upper()])}
    )
    assert (
        validator.appraise(
            case.evidence, binding=case.binding, clock=case.clock, policy=good
        ).status
        is Status.AFFIRMING
    )
    wrong = {"rtmr1": ReferenceValue(accepted=["11" * 48])}
    enforced = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=Policy(reference_values=wrong)
    )
    assert not enforced.accepted
    assert enforced.failures[0].check == "reference.rtmr1"
    warn_only = validator.appraise(
        case.evidence,
        binding=case.binding,
        clock=case.clock,
        policy=pinned(
            reference_values={"rtmr1": ReferenceValue(accepted=["11" * 48], enforce=False)}
        ),
    )
    assert warn_only.accepted
    assert warn_only.status is Status.WARNING


def test_out_of_date_platform_needs_policy(world: Any) -> None:
    case = _case(world, tcb="outofdate")
    validator = TdxDcapValidator(world.settings())
    result = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=pinned()
    )
    assert result.tcb.status == "OutOfDate"
    assert not result.accepted
    checks = {f.check for f in result.failures}
    assert "tcb.status" in checks
    advisories = result.tcb.advisory_ids
    assert advisories
    lenient = pinned(
        accepted_tcb_statuses={"UpToDate", "OutOfDate"}, accepted_advisory_ids=advisories
    )
    accepted = validator.appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=lenient
    )
    assert accepted.accepted
    assert accepted.status is Status.WARNING


def test_unmatched_tcb_level_is_a_specific_error(world: Any) -> None:
    case = _case(world, tcb="unmatched")
    with pytest.raises(UntrustedChain) as info:
        case.appraised_by(TdxDcapValidator(world.settings()))
    assert info.value.check == "dcap.tcb_level"


def test_quote_from_another_pki_is_untrusted(world: Any) -> None:
    stranger = DcapTestPki.generate(seed="a stranger's PKI")
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    nonce = b.new_nonce()
    quote = make_tdx_quote(stranger, b.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
    with pytest.raises(UntrustedChain):
        TdxDcapValidator(world.settings()).appraise(
            _evidence(quote),
            binding=b.BindingContext(spki_der=spki, nonce=nonce),
            clock=world.clock,
            policy=pinned(),
        )


def test_collateral_not_yet_issued_or_expired(world: Any) -> None:
    case = _case(world)
    validator = TdxDcapValidator(world.settings())
    for when in (dt.datetime(2025, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, tzinfo=dt.UTC)):
        with pytest.raises(StaleEvidence):
            validator.appraise(
                case.evidence, binding=case.binding, clock=FixedClock(when), policy=case.policy
            )


def test_sgx_quote_is_not_tdx(world: Any) -> None:
    settings = world.settings()
    settings["collateral_file"] = str(world.directory / "sgx-collateral.json")
    (world.directory / "sgx-collateral.json").write_text(
        world.pki.collateral_json(
            "sgx",
            issue_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            next_update=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        )
    )
    quote = make_sgx_quote(world.pki, bytes(64))
    with pytest.raises(MalformedEvidence) as info:
        TdxDcapValidator(settings).appraise(
            _evidence(quote),
            binding=b.BindingContext.offline_context(),
            clock=world.clock,
            policy=pinned(),
        )
    assert info.value.check == "tdx.tee_type"


def test_custom_root_needs_explicit_permission(world: Any) -> None:
    settings = world.settings()
    del settings["allow_custom_root"]
    with pytest.raises(ConfigurationError) as info:
        TdxDcapValidator(settings)
    assert info.value.check == "config.dcap.root_ca"


def test_without_custom_root_synthetic_quotes_do_not_verify(world: Any) -> None:
    settings = world.settings()
    del settings["allow_custom_root"]
    del settings["root_ca"]
    case = _case(world)
    with pytest.raises(UntrustedChain):
        case.appraised_by(TdxDcapValidator(settings))


def test_media_type_is_checked(world: Any) -> None:
    case = _case(world)
    with pytest.raises(MalformedEvidence) as info:
        TdxDcapValidator(world.settings()).appraise(
            attrs.evolve(case.evidence, media_type="application/x-other"),
            binding=case.binding,
            clock=case.clock,
            policy=case.policy,
        )
    assert info.value.check == "evidence.media_type"


@pytest.mark.parametrize(
    "encode",
    [
        lambda q: q,
        lambda q: q.hex().encode(),
        lambda q: b"0x" + q.hex().upper().encode() + b"\n",
        lambda q: q + bytes(100),
        lambda q: (q + bytes(100)).hex().encode(),
    ],
    ids=["raw", "hex", "0x-upper-newline", "raw-zero-padded", "hex-zero-padded"],
)
def test_evidence_from_file_accepts_raw_and_hex(world: Any, encode: Any) -> None:
    validator = TdxDcapValidator(world.settings())
    quote = world.quote(bytes(64))
    evidence = validator.evidence_from_file(encode(quote), name="quote")
    assert evidence.data.startswith(quote)
    result = validator.appraise(
        evidence, binding=b.BindingContext.offline_context(), clock=world.clock, policy=pinned()
    )
    assert result.accepted
    assert result.binding.freshness is b.Freshness.UNBOUND


def test_evidence_from_certificate_reads_the_atls_oid(world: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    nonce = b.new_nonce()
    quote = world.quote(b.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
    der = self_signed_certificate(key, [(ATLS_TDX_QUOTE, quote)])
    validator = TdxDcapValidator(world.settings())
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(der))
    assert evidence.data == quote
    result = validator.appraise(
        evidence,
        binding=b.BindingContext(spki_der=spki, nonce=nonce, certificate_der=der),
        clock=world.clock,
        policy=pinned(),
    )
    assert result.accepted
    with pytest.raises(MalformedEvidence):
        validator.evidence_from_certificate(
            PeerCertificate.from_der(
                self_signed_certificate(key, [("1.2.3.4", octet_string(b"x"))])
            )
        )


def test_report_data_of_another_key_is_a_binding_mismatch(world: Any) -> None:
    case = _case(world)
    with pytest.raises(BindingMismatch) as info:
        TdxDcapValidator(world.settings()).appraise(
            case.evidence,
            binding=attrs.evolve(
                case.binding, spki_der=spki_of(ec.generate_private_key(ec.SECP256R1()))
            ),
            clock=case.clock,
            policy=case.policy,
        )
    assert info.value.check == "binding.report_data"


# --- pinning: the core's rule over spec.workload_identity ------------------------------------


def test_nothing_pinned_is_refused_naming_what_to_pin(world: Any) -> None:
    # Anyone who rents a TDX VM gets a genuine quote bound to their own key.
    case = _case(world, policy=Policy())
    result = case.appraised_by(TdxDcapValidator(world.settings()))
    assert result.status is Status.CONTRAINDICATED
    assert result.tcb.status == "UpToDate"
    assert result.binding.verified
    [failure] = result.failures
    assert failure.check == "workload.unpinned"
    assert failure.expected == [f"reference_values.{name}" for name in TDX_WORKLOAD]
    # Every other identity field of this quote is all zeros, "not set": no pin to offer.
    assert failure.actual == {"mrtd": DEFAULT_MRTD.hex()}
    assert "reference_values.mrtd" in failure.message
    assert f'mrtd = "{DEFAULT_MRTD.hex()}"' in failure.message


def test_allow_any_workload_accepts_with_a_warning(world: Any) -> None:
    case = _case(world, policy=Policy(allow_any_workload=True))
    result = case.appraised_by(TdxDcapValidator(world.settings()))
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING
    assert [w.split(":")[0] for w in result.warnings] == ["workload.unpinned"]


@pytest.mark.parametrize("name", TDX_WORKLOAD)
def test_each_workload_measurement_pins(world: Any, name: str) -> None:
    case = _case(  # every identity field set (all zeros would be "not set": no pin)
        world,
        rtmr=(b"\x01" * 48, b"\x02" * 48, b"\x03" * 48, b"\x04" * 48),
        mr_config_id=b"\x05" * 48,
        mr_owner=b"\x06" * 48,
        mr_owner_config=b"\x07" * 48,
    )
    validator = TdxDcapValidator(world.settings())
    measured = validator.appraise(
        case.evidence,
        binding=case.binding,
        clock=case.clock,
        policy=Policy(allow_any_workload=True),
    ).measurements[name]
    result = validator.appraise(
        case.evidence,
        binding=case.binding,
        clock=case.clock,
        policy=Policy(reference_values={name: measured}),
    )
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.warnings == ()


@pytest.mark.parametrize(
    "references",
    [
        {"mrseam": ReferenceValue(accepted=[DEFAULT_MRSEAM.hex()])},
        {"mrtd": ReferenceValue(accepted=[DEFAULT_MRTD.hex()], enforce=False)},
    ],
    ids=["tdx-module-only", "warn-only"],
)
def test_what_does_not_pin_the_workload(world: Any, references: dict[str, Any]) -> None:
    # MRSEAM identifies Intel's TDX module, not the TD; a warn-only value enforces nothing.
    case = _case(world, policy=Policy(reference_values=references))
    result = case.appraised_by(TdxDcapValidator(world.settings()))
    assert not result.accepted
    assert [f.check for f in result.failures if f.enforced] == ["workload.unpinned"]


def test_spec_declares_the_td_workload_and_cli_options() -> None:
    assert TDX_DCAP_SPEC.workload_identity == TDX_WORKLOAD
    assert "mrseam" not in TDX_DCAP_SPEC.workload_identity
    # reported, so it can be pinned (any non-zero value is refused anyway), but it does not pin
    assert "mrsignerseam" in TDX_DCAP_SPEC.measurements
    assert "mrsignerseam" not in TDX_DCAP_SPEC.workload_identity
    assert {o.flag for o in TDX_DCAP_SPEC.cli_options} == {"--collateral", "--pccs-url"}

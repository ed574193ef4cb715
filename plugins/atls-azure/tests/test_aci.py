"""azure.aci: claim mapping, binding, the pyatls-compatible AciValidator and the issuer."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import warnings
from typing import Any

import attrs
import pytest

from atls_azure.aci import AciValidator, SecurityWarning, nonce_from_server_name
from atls_azure.issuer import AciIssuer, aci_runtime_data
from atls_azure.testing.maa import StandInMaa, token_evidence
from atls_azure.testing.maa import new_tls_key as tls_key
from atls_azure.validators import AciTokenValidator, cce_policy_hash
from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import (
    BindingMismatch,
    CollateralUnavailable,
    ConfigurationError,
    MalformedEvidence,
)
from atls_core.interfaces import Issuer, KeyBoundIssuer
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status
from atls_core.selection import AppraiserLike
from atls_core.server import mint_certificate
from atls_core.testing.conformance import Case, ValidatorConformance

HOSTDATA = hashlib.sha256(b"package policy").hexdigest()
POLICY = Policy(options={"hostdata": [HOSTDATA]})


def _case(
    maa: StandInMaa,
    policy: Policy = POLICY,
    overrides: dict[str, Any] | None = None,
    runtime: dict[str, Any] | None = None,
) -> Case:
    """A good case; ``overrides`` change top-level claims, ``runtime`` x-ms-runtime's."""
    _key, spki = tls_key()
    nonce = b.new_nonce()
    claims = maa.aci_claims(aci_runtime_data(spki, nonce), **(overrides or {}))
    claims["x-ms-runtime"].update(runtime or {})
    return Case(
        evidence=token_evidence(maa.sign(claims)),
        binding=b.BindingContext(spki_der=spki, nonce=nonce),
        clock=FixedClock.from_unix(claims["iat"] + 5),
        policy=policy,
    )


def _appraise(maa: StandInMaa, case: Case) -> Any:
    return case.appraised_by(AciTokenValidator(maa.settings()))


class TestAciConformance(ValidatorConformance):
    world_fixture = "module_maa"
    validator_class = AciTokenValidator

    def good_case(self) -> Case:
        return _case(self.world)


class TestAciValidatorShimConformance(ValidatorConformance):
    """Every conformance check, appraised through the pyatls-shaped class."""

    world_fixture = "module_maa"
    world: StandInMaa

    def shim(self) -> AciValidator:
        return self.world.aci_validator(["package policy"])

    def make_validator(self) -> AciTokenValidator:
        return self.shim().validator

    def appraise(self, case: Case) -> AttestationResult:
        return self.shim().appraise(
            case.evidence, binding=case.binding, clock=case.clock, policy=case.policy
        )

    def good_case(self) -> Case:
        return _case(self.world)


def test_bad_policy_option_is_configuration_error(maa: StandInMaa) -> None:
    with pytest.raises(ConfigurationError):
        _appraise(maa, _case(maa, Policy(options={"hostdata": [1, 2]})))


def test_core_scheme_matches_pyatls_runtime_data() -> None:
    """The issuer's runtime data hashes to exactly the core azure-aci report data."""
    _key, spki = tls_key()
    nonce = b.new_nonce()
    runtime = aci_runtime_data(spki, nonce)
    assert b.report_data_for("azure-aci", spki_der=spki, nonce=nonce) == (
        hashlib.sha256(runtime).digest() + bytes(32)
    )
    assert runtime.startswith(b'{"publicKey":"')
    assert b" " not in runtime


def test_good_token_result(maa: StandInMaa) -> None:
    result = _appraise(maa, _case(maa))
    assert result.accepted
    assert result.binding.freshness is b.Freshness.NONCE
    assert result.measurements["hostdata"] == HOSTDATA
    assert result.measurements["launch_measurement"] == "ab" * 48
    assert result.measurements["guest_svn"] == "2"
    assert result.claims["issuer"] == maa.url
    assert result.debug is False
    assert result.expires_at is not None


def test_cce_policy_text_is_hashed(maa: StandInMaa) -> None:
    policy = Policy(options={"cce_policies": ["package policy"]})
    assert cce_policy_hash("package policy") == HOSTDATA
    assert _appraise(maa, _case(maa, policy)).accepted


def test_hostdata_not_allowed(maa: StandInMaa) -> None:
    result = _appraise(maa, _case(maa, Policy(options={"hostdata": ["00" * 32]})))
    assert not result.accepted
    assert any(f.check == "azure.hostdata" for f in result.failures)


def test_hostdata_reference_value(maa: StandInMaa) -> None:
    policy = Policy(reference_values={"hostdata": ReferenceValue(accepted=[HOSTDATA])})
    assert _appraise(maa, _case(maa, policy)).accepted


def test_debuggable_rejected(maa: StandInMaa) -> None:
    result = _appraise(maa, _case(maa, overrides={"x-ms-sevsnpvm-is-debuggable": True}))
    assert not result.accepted
    assert result.debug is True


def test_non_compliant_uvm_rejected(maa: StandInMaa) -> None:
    result = _appraise(maa, _case(maa, overrides={"x-ms-compliance-status": "not-compliant"}))
    assert not result.accepted
    assert any(f.check == "azure.compliance_status" for f in result.failures)


def test_missing_debug_claim_is_malformed(maa: StandInMaa) -> None:
    case = _case(maa, overrides={"x-ms-sevsnpvm-is-debuggable": None})
    with pytest.raises(MalformedEvidence):
        _appraise(maa, case)


@pytest.mark.parametrize(
    ("claims", "options", "check"),
    [
        ({"x-ms-sevsnpvm-vmpl": 1}, {}, "azure.vmpl"),
        ({"x-ms-sevsnpvm-vmpl": 3}, {"max_vmpl": 2}, "azure.vmpl"),
        ({"x-ms-sevsnpvm-migration-allowed": True}, {}, "azure.migration_agent"),
    ],
)
def test_guest_policy_refused_as_snp_report_refuses_it(
    maa: StandInMaa, claims: dict[str, Any], options: dict[str, Any], check: str
) -> None:
    """MAA signs the report's VMPL and MIGRATE_MA without judging them: refused by default,
    as atls-snp refuses the same report, unless policy says otherwise."""
    result = _appraise(maa, _case(maa, Policy(options={**POLICY.options, **options}), claims))
    assert [f.check for f in result.failures] == [check]
    relaxed = {"max_vmpl": 3, "allow_migration_agent": True}
    assert _appraise(
        maa, _case(maa, Policy(options={**POLICY.options, **relaxed}), claims)
    ).accepted


@pytest.mark.parametrize(
    "claims",
    [
        {"x-ms-sevsnpvm-vmpl": "0"},
        {"x-ms-sevsnpvm-vmpl": False},
        {"x-ms-sevsnpvm-vmpl": -1},
        {"x-ms-sevsnpvm-vmpl": 4},
        {"x-ms-sevsnpvm-migration-allowed": 0},
    ],
)
def test_vmpl_and_migration_claims_of_another_type_are_malformed(
    maa: StandInMaa, claims: dict[str, Any]
) -> None:
    with pytest.raises(MalformedEvidence):
        _appraise(maa, _case(maa, overrides=claims))


@pytest.mark.parametrize("name", ["x-ms-sevsnpvm-vmpl", "x-ms-sevsnpvm-migration-allowed"])
def test_a_token_without_vmpl_or_migration_claims_is_malformed(maa: StandInMaa, name: str) -> None:
    """What the client cannot check, it does not accept."""
    with pytest.raises(MalformedEvidence):
        _appraise(maa, _case_without(maa, name))


def _case_without(maa: StandInMaa, *names: str) -> Case:
    _key, spki = tls_key()
    nonce = b.new_nonce()
    claims = maa.aci_claims(aci_runtime_data(spki, nonce))
    for name in names:
        del claims[name]
    return Case(
        evidence=token_evidence(maa.sign(claims)),
        binding=b.BindingContext(spki_der=spki, nonce=nonce),
        clock=FixedClock.from_unix(claims["iat"] + 5),
        policy=POLICY,
    )


@pytest.mark.parametrize(
    "options", [{"max_vmpl": 4}, {"max_vmpl": -1}, {"max_vmpl": True}, {"allow_migration_agent": 1}]
)
def test_bad_guest_policy_options_are_refused_when_configured(
    maa: StandInMaa, options: dict[str, Any]
) -> None:
    from atls_core.selection import select_validator

    with pytest.raises(ConfigurationError):
        select_validator(
            "azure.aci",
            settings=maa.settings(),
            policy=Policy(options={**POLICY.options, **options}),
            allow_insecure=True,
        )


def test_runtime_public_key_must_be_the_tls_key(maa: StandInMaa) -> None:
    """Report data right, but x-ms-runtime names another key: refused."""
    _other, other_spki = tls_key()
    case = _case(maa, runtime={"publicKey": base64.b64encode(other_spki).decode()})
    with pytest.raises(BindingMismatch) as info:
        _appraise(maa, case)
    assert info.value.check == "azure.runtime.publicKey"


def test_runtime_nonce_must_be_the_connection_nonce(maa: StandInMaa) -> None:
    case = _case(maa, runtime={"nonce": base64.b64encode(b.new_nonce()).decode()})
    with pytest.raises(BindingMismatch) as info:
        _appraise(maa, case)
    assert info.value.check == "azure.runtime.nonce"


def test_other_attestation_type_refused(maa: StandInMaa) -> None:
    case = _case(maa, overrides={"x-ms-attestation-type": "sgx"})
    with pytest.raises(MalformedEvidence) as info:
        _appraise(maa, case)
    assert info.value.check == "azure.attestation_type"


def test_max_age_uses_iat(maa: StandInMaa) -> None:
    case = _case(maa, policy=attrs.evolve(POLICY, max_age=dt.timedelta(seconds=60)))
    late = attrs.evolve(case, clock=FixedClock(case.clock.now() + dt.timedelta(seconds=120)))
    from atls_core.errors import StaleEvidence

    with pytest.raises(StaleEvidence) as info:
        _appraise(maa, late)
    assert info.value.check == "freshness.max_age"


# -- pyatls's AciValidator ------------------------------------------------------


def test_pyatls_constructor_shape(maa: StandInMaa) -> None:
    validator = maa.aci_validator(["package policy"])
    assert validator.jkus == [f"{maa.url}/certs"]
    assert validator.policies == ["package policy"]
    case = _case(maa)
    result = validator.appraise(case.evidence, binding=case.binding, clock=case.clock)
    assert result.accepted
    # A pinned workload, but keys fetched over http on loopback: tests only, and it says so.
    assert result.status is Status.WARNING
    assert list(result.claims["test_knobs"]) == ["allow_http_loopback"]
    assert result.policy_digest == validator.policy.digest
    assert isinstance(validator, AppraiserLike)
    assert isinstance(validator.validator, AciTokenValidator)
    assert validator.spec.id == "azure.aci"
    assert validator.policy.options["cce_policies"] == ["package policy"]
    assert not validator.policy.allow_any_workload


def test_pyatls_shim_refuses_unknown_settings_and_options(maa: StandInMaa) -> None:
    with pytest.raises(ConfigurationError) as info:
        AciValidator(
            policies=["p"], settings={"allow_http_loopback": True, "jku": "x"}, allow_insecure=True
        )
    assert info.value.check == "config.settings"
    validator = maa.aci_validator(["p"])
    case = _case(maa)
    with pytest.raises(ConfigurationError) as info:
        validator.appraise(
            case.evidence,
            binding=case.binding,
            clock=case.clock,
            policy=Policy(options={"allow_any_workload": True}),
        )
    assert info.value.check == "config.policy_options"


def test_pyatls_without_policies_warns(maa: StandInMaa) -> None:
    with pytest.warns(SecurityWarning):
        validator = maa.aci_validator()
    assert validator.policy.allow_any_workload
    case = _case(maa)
    result = validator.appraise(case.evidence, binding=case.binding, clock=case.clock)
    assert result.accepted
    assert result.status is Status.WARNING
    assert any(w.startswith("workload.unpinned:") for w in result.warnings)


def test_pyatls_with_a_pinning_policy_does_not_warn(maa: StandInMaa) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SecurityWarning)
        validator = maa.aci_validator(policy=Policy(reference_values={"hostdata": HOSTDATA}))
    assert not validator.policy.allow_any_workload
    case = _case(maa)
    assert validator.appraise(case.evidence, binding=case.binding, clock=case.clock).accepted


def test_pyatls_with_an_all_zero_hostdata_warns_as_unpinned(maa: StandInMaa) -> None:
    """All zeros is an unset value: no pin by the core's rule, so the shim warns up front."""
    with pytest.warns(SecurityWarning):
        validator = maa.aci_validator(policy=Policy(reference_values={"hostdata": "00" * 32}))
    assert validator.policy.allow_any_workload


def test_pyatls_shim_refuses_http_loopback_unless_insecure_is_allowed(maa: StandInMaa) -> None:
    """The stand-in's http key endpoint is a tests-only knob, as in configuration."""
    with pytest.raises(ConfigurationError) as info:
        AciValidator(
            policies=["package policy"],
            jkus=[f"{maa.url}/certs"],
            settings={"allow_http_loopback": True},
        )
    assert info.value.check == "config.test_settings"
    assert "allow_http_loopback" in str(info.value)


def test_pyatls_default_trusts_public_instances_only() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        validator = AciValidator()
    assert all(j.startswith("https://shared") for j in validator.jkus)


def test_pyatls_jku_http_refused_off_loopback() -> None:
    with pytest.raises(ConfigurationError):
        AciValidator(policies=["p"], jkus=["http://evil.example/certs"])


def test_nonce_from_server_name() -> None:
    nonce = b.new_nonce()
    assert nonce_from_server_name(b.encode_sni(nonce, "svc.example")) == nonce
    assert nonce_from_server_name(base64.encodebytes(nonce).decode()) == nonce
    assert nonce_from_server_name("svc.example") is None
    assert nonce_from_server_name(None) is None


# -- the issuer against the stand-in sidecar/MAA --------------------------------


def test_issuer_end_to_end(maa: StandInMaa) -> None:
    key, _spki = tls_key()
    nonce = b.new_nonce()
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    der = issuer.certificate_for(key, nonce)
    assert maa.requests["/attest/maa"] == 1
    certificate = PeerCertificate.from_der(der)
    validator = AciTokenValidator(maa.settings())
    evidence = validator.evidence_from_certificate(certificate)
    result = validator.appraise(
        evidence,
        binding=b.BindingContext(spki_der=certificate.spki_der, nonce=nonce, certificate_der=der),
        clock=FixedClock(dt.datetime.now(dt.UTC)),
        policy=POLICY,
    )
    assert result.accepted, result.to_json()
    assert result.binding.freshness is b.Freshness.NONCE
    with pytest.raises(BindingMismatch):
        validator.appraise(
            evidence,
            binding=b.BindingContext(spki_der=certificate.spki_der, nonce=b.new_nonce()),
            clock=FixedClock(dt.datetime.now(dt.UTC)),
            policy=POLICY,
        )


def test_issuer_sidecar_down(maa: StandInMaa) -> None:
    maa.down = True
    _key, spki = tls_key()
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1", "timeout": 2})
    with pytest.raises(CollateralUnavailable) as info:
        issuer.issue_for_key(spki, b.new_nonce())
    assert info.value.check == "azure.sidecar"


def test_issuer_is_key_bound_and_refuses_bad_settings() -> None:
    with pytest.raises(ConfigurationError):
        AciIssuer({})
    with pytest.raises(ConfigurationError):
        AciIssuer({"maa_endpoint": "x", "bogus": 1})
    issuer = AciIssuer({"maa_endpoint": "x"})
    # MAA hashes the runtime data itself: the core must hand it the key, never report data.
    assert isinstance(issuer, KeyBoundIssuer)
    assert not isinstance(issuer, Issuer)


def test_core_mint_certificate_uses_the_key_bound_path(maa: StandInMaa) -> None:
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    nonce = b.new_nonce()
    minted = mint_certificate(issuer, nonce=nonce)
    assert maa.requests["/attest/maa"] == 1
    import jwt

    assert minted.evidence is not None
    claims = jwt.decode(minted.evidence.data, options={"verify_signature": False})
    assert claims["x-ms-runtime"] == json.loads(aci_runtime_data(minted.spki_der, nonce))
    certificate = PeerCertificate.from_der(minted.certificate_der)
    validator = AciTokenValidator(maa.settings())
    result = validator.appraise(
        validator.evidence_from_certificate(certificate),
        binding=b.BindingContext(
            spki_der=certificate.spki_der, nonce=nonce, certificate_der=minted.certificate_der
        ),
        clock=FixedClock(dt.datetime.now(dt.UTC)),
        policy=POLICY,
    )
    assert result.accepted, result.to_json()


def test_runtime_json_is_what_maa_reports(maa: StandInMaa) -> None:
    _key, spki = tls_key()
    nonce = b.new_nonce()
    token = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "x"}).token_for(spki, nonce)
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["x-ms-runtime"] == json.loads(aci_runtime_data(spki, nonce))

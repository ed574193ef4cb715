"""ita.tdx against tokens signed by the stand-in ITA's test chain (real HTTP, real crypto)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from atls_core.binding import BindingContext, Freshness, new_nonce
from atls_core.clock import FixedClock
from atls_core.errors import (
    ATLSError,
    BindingMismatch,
    CollateralUnavailable,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import Status
from atls_core.tdx_rules import SEPT_VE_OPTION
from atls_ita.testing.pki import StandInPki
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import evidence_of, issue_token
from atls_ita.validator import SGX_SPEC, ItaValidator


def _appraise(validator: ItaValidator, issued: Any, clock: FixedClock, **policy: Any) -> Any:
    """Appraise under ``Policy(**policy)``, pinned to the stand-in's default workload
    unless the test gives its own reference values (the pinning tests say so)."""
    policy.setdefault("reference_values", workload_pin(validator.spec.tee_type))
    return validator.appraise(
        issued.evidence, binding=issued.binding, clock=clock, policy=Policy(**policy)
    )


def _refusal(
    validator: ItaValidator,
    ita: StandInIta,
    clock: FixedClock,
    error: type[ATLSError] = UntrustedChain,
) -> ATLSError:
    """The error ``validator`` raises for a fresh token of the stand-in (tests name its check)."""
    with pytest.raises(error) as info:
        _appraise(validator, issue_token(ita, nonce=new_nonce()), clock)
    return info.value


# -- the positive paths ----------------------------------------------------------


@pytest.mark.parametrize("shape", ["v2", "v1"])
@pytest.mark.parametrize("alg", ["PS384", "RS256"])
def test_good_token_is_affirmed_and_nonce_fresh(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, shape: str, alg: str
) -> None:
    ita.shape = shape
    issued = issue_token(ita, nonce=new_nonce(), alg=alg)
    result = _appraise(validator, issued, clock)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.freshness is Freshness.NONCE
    assert result.binding.verified
    assert result.tee_type == "tdx"
    assert result.debug is False
    assert result.tcb.status == "UpToDate"
    assert result.measurements["mrtd"] == ita.measurements["mrtd"]
    assert result.claims["ita_token_shape"] == shape
    assert "Token Signing" in result.claims["ita_signer"]
    token_claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert result.expires_at == dt.datetime.fromtimestamp(token_claims["exp"], dt.UTC)


def test_static_certificate_token_is_key_only(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=None)
    result = validator.appraise(
        issued.evidence,
        binding=BindingContext(spki_der=issued.spki, nonce=new_nonce()),
        clock=clock,
        policy=Policy(reference_values=workload_pin()),
    )
    assert result.accepted
    assert result.binding.freshness is Freshness.KEY_ONLY
    strict = validator.appraise(
        issued.evidence,
        binding=BindingContext(spki_der=issued.spki, nonce=new_nonce()),
        clock=clock,
        policy=Policy(reference_values=workload_pin(), require_nonce=True),
    )
    assert not strict.accepted


def test_token_without_ita_nonce_binds_through_plain_hash(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=new_nonce(), with_ita_nonce=False)
    assert _appraise(validator, issued, clock).accepted


def test_keys_are_cached_no_request_per_appraisal(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    for _ in range(5):
        assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted
    assert ita.requests["/certs"] == 1


def test_evidence_time_and_max_age(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    later = FixedClock(clock.now() + dt.timedelta(seconds=120))
    assert _appraise(validator, issued, later, max_age=dt.timedelta(seconds=300)).accepted
    with pytest.raises(StaleEvidence) as info:
        _appraise(validator, issued, later, max_age=dt.timedelta(seconds=60))
    assert info.value.check == "freshness.max_age"


# -- signature, keys and chain -----------------------------------------------------


def test_signature_by_an_unconfigured_key_with_a_known_kid_is_rejected(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims, rogue, algorithm="PS384", headers={"kid": ita.pki.signers["PS384"].kid}
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, attrs.evolve(issued, evidence=evidence_of(forged)), clock)
    assert info.value.check == "jwt.signature"


@pytest.mark.parametrize("header", ["jwk", "x5c", "jku"])
def test_key_material_in_the_header_is_never_used(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, tmp_path: Path, header: str
) -> None:
    """An attacker's own key, offered in the header, with its own kid: unknown key."""
    rogue_pki = StandInPki.generate(algorithms=("PS384",))
    issued = issue_token(ita, nonce=new_nonce())
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    offer: dict[str, Any] = {
        "jwk": rogue_pki.jwk("PS384"),
        "x5c": rogue_pki.jwk("PS384")["x5c"],
        "jku": "http://127.0.0.1:1/certs",
    }
    forged = jwt.encode(
        claims,
        rogue_pki.signers["PS384"].key,
        algorithm="PS384",
        headers={"kid": rogue_pki.signers["PS384"].kid, header: offer[header]},
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, attrs.evolve(issued, evidence=evidence_of(forged)), clock)
    assert info.value.check == "jwt.kid"
    assert "unknown signing key" in str(info.value)


def test_unknown_kid_floods_are_rate_limited(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    assert _appraise(validator, issued, clock).accepted
    assert ita.requests["/certs"] == 1
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    for n in range(5):
        made_up = ita.sign(claims, kid=f"made-up-{n}")
        with pytest.raises(UntrustedChain) as info:
            _appraise(validator, attrs.evolve(issued, evidence=evidence_of(made_up)), clock)
        assert info.value.check == "jwt.kid"
    assert ita.requests["/certs"] == 1, "no refresh within the minimum interval"


def test_unknown_kid_triggers_one_refresh_each_when_allowed(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    validator = ItaValidator({**settings, "jwks_min_refresh": 0})
    issued = issue_token(ita, nonce=new_nonce())
    assert _appraise(validator, issued, clock).accepted
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    for n in range(3):
        made_up = ita.sign(claims, kid=f"made-up-{n}")
        with pytest.raises(UntrustedChain):
            _appraise(validator, attrs.evolve(issued, evidence=evidence_of(made_up)), clock)
    assert ita.requests["/certs"] == 1 + 3


@pytest.mark.parametrize(
    ("alg", "check"),
    [("HS256", "jwt.alg"), ("none", "jwt.alg"), ("ES256", "jwt.alg"), ("PS256", "jwt.alg")],
)
def test_disallowed_algorithms(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, alg: str, check: str
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    head, body, sig = issued.token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["alg"] = alg
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(UntrustedChain) as info:
        _appraise(
            validator,
            attrs.evolve(issued, evidence=evidence_of(f"{new_head}.{body}.{sig}")),
            clock,
        )
    assert info.value.check == check


def test_pinning_one_algorithm_refuses_the_other(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    validator = ItaValidator({**settings, "algorithms": ["PS384"]})
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, issue_token(ita, nonce=new_nonce(), alg="RS256"), clock)
    assert info.value.check == "jwt.alg"


def test_a_lookalike_root_is_not_the_configured_root(
    ita: StandInIta, tmp_path: Path, clock: FixedClock
) -> None:
    """Same names, other keys: the chain must lead to the configured root's key."""
    lookalike = StandInPki.generate(algorithms=("PS384",))
    (tmp_path / "other.pem").write_bytes(lookalike.root_pem)
    validator = ItaValidator(
        {
            "jwks_url": ita.jwks_url,
            "root_ca": str(tmp_path / "other.pem"),
            "allow_http_loopback": True,
        }
    )
    assert _refusal(validator, ita, clock).check == "ita.x5c.root"


def test_jwk_that_is_not_its_certificates_key_is_rejected(
    ita: StandInIta, tmp_path: Path, clock: FixedClock
) -> None:
    jwks = ita.pki.jwks()
    keys = jwks["keys"]
    assert isinstance(keys, list)
    keys[0]["n"] = keys[1]["n"]  # the PS384 kid, with the RS256 key's modulus
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    validator = ItaValidator(
        {"jwks_file": str(tmp_path / "jwks.json"), "root_ca": str(ita.write_root(tmp_path / "r"))}
    )
    assert _refusal(validator, ita, clock).check == "ita.key.jwk"


def test_pinned_jwks_file_needs_no_network(
    ita: StandInIta, tmp_path: Path, clock: FixedClock
) -> None:
    validator = ItaValidator(
        {
            "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
        }
    )
    ita.fail_certs = True
    assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted
    assert ita.requests["/certs"] == 0


def test_key_service_down_is_collateral_unavailable(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    ita.fail_certs = True
    with pytest.raises(CollateralUnavailable):
        _appraise(validator, issue_token(ita, nonce=new_nonce()), clock)


def test_signing_chain_expired_at_appraisal_time(ita: StandInIta, validator: ItaValidator) -> None:
    later = ita.pki.signers["PS384"].certificate.not_valid_after_utc + dt.timedelta(days=1)
    ita.clock = FixedClock(later)
    issued = issue_token(ita, nonce=new_nonce())
    with pytest.raises(StaleEvidence) as info:
        _appraise(validator, issued, FixedClock(later + dt.timedelta(seconds=1)))
    assert info.value.check == "ita.x5c.validity"


# -- CRLs ------------------------------------------------------------------------


def test_crl_checking_accepts_and_caches(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    validator = ItaValidator({**settings, "check_crl": True})
    for _ in range(3):
        assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted
    assert ita.requests["/crl/root.crl"] == 1
    assert ita.requests["/crl/signing-ca.crl"] == 1


def test_crl_outage_is_collateral_unavailable(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    ita.fail_crls = True
    validator = ItaValidator({**settings, "check_crl": True, "crl_timeout": 2})
    assert _refusal(validator, ita, clock, CollateralUnavailable).check == "ita.crl.fetch"


def test_revoked_signing_certificate_is_rejected(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    ita.revoked_leaves = {ita.pki.signers["PS384"].certificate.serial_number}
    validator = ItaValidator({**settings, "check_crl": True})
    assert _refusal(validator, ita, clock).check == "ita.crl.revoked"


def test_revoked_signing_ca_is_rejected(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    ita.revoked_cas = {ita.pki.ca.serial_number}
    validator = ItaValidator({**settings, "check_crl": True})
    assert _refusal(validator, ita, clock).check == "ita.crl.revoked"


def test_crl_not_signed_by_the_issuer_is_rejected(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    """The issuer's name, another key's signature."""
    ita.crl_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    validator = ItaValidator({**settings, "check_crl": True})
    assert _refusal(validator, ita, clock).check == "ita.crl.signature"


def test_crl_past_its_next_update_is_rejected(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    """The CRL served is current until the stand-in's now, a second before the appraisal."""
    ita.crl_lifetime = dt.timedelta(0)
    validator = ItaValidator({**settings, "check_crl": True})
    assert _refusal(validator, ita, clock, StaleEvidence).check == "ita.crl.next_update"


def test_an_older_crl_replayed_after_a_revocation_is_refused(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever answers the (plain http) CRL fetch may replay a genuine CRL from before a
    revocation, still before its next update, once the newer one left the cache."""
    now = clock.now()
    validator = ItaValidator({**settings, "check_crl": True})
    monkeypatch.setattr(ita, "crl_lifetime", dt.timedelta(hours=1))
    monkeypatch.setattr(ita, "revoked_leaves", {ita.pki.signers["PS384"].certificate.serial_number})
    assert _refusal(validator, ita, clock).check == "ita.crl.revoked"
    later = FixedClock(now + dt.timedelta(hours=2))  # the revoking CRL has expired
    monkeypatch.setattr(ita, "clock", later)
    issued = issue_token(ita, nonce=new_nonce())
    monkeypatch.setattr(ita, "revoked_leaves", set())  # the older CRL, from before
    monkeypatch.setattr(ita, "clock", FixedClock(now - dt.timedelta(minutes=10)))
    monkeypatch.setattr(ita, "crl_lifetime", dt.timedelta(hours=3))
    with pytest.raises(UntrustedChain) as info:
        _appraise(validator, issued, FixedClock(now + dt.timedelta(hours=2, seconds=1)))
    assert info.value.check == "ita.crl.rollback"


# -- issuer and times ------------------------------------------------------------


def test_wrong_issuer(ita: StandInIta, validator: ItaValidator, clock: FixedClock) -> None:
    ita.issuer = "Someone Else"
    assert _refusal(validator, ita, clock).check == "jwt.iss"


def test_configured_issuer(ita: StandInIta, settings: dict[str, Any], clock: FixedClock) -> None:
    ita.issuer = "https://ita.example"
    validator = ItaValidator({**settings, "issuer": "https://ita.example"})
    assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted


def test_expired_token(ita: StandInIta, validator: ItaValidator, clock: FixedClock) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    with pytest.raises(StaleEvidence) as info:
        _appraise(validator, issued, FixedClock(clock.now() + dt.timedelta(minutes=10)))
    assert info.value.check == "jwt.exp"


@pytest.mark.parametrize(("skew", "ok"), [(30, True), (90, False)])
def test_not_yet_valid_token_within_and_beyond_leeway(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, skew: int, ok: bool
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    early = FixedClock(clock.now() - dt.timedelta(seconds=1 + skew))
    if ok:
        assert _appraise(validator, issued, early).accepted
    else:
        with pytest.raises(StaleEvidence) as info:
            _appraise(validator, issued, early)
        assert info.value.check in ("jwt.nbf", "jwt.iat")


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_missing_time_claims(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, claim: str
) -> None:
    issued = issue_token(ita, nonce=new_nonce(), claims_hook=lambda c: c.pop(claim))
    with pytest.raises(MalformedEvidence) as info:
        _appraise(validator, issued, clock)
    assert info.value.check == f"jwt.{claim}"


# -- binding ---------------------------------------------------------------------


def test_inconsistent_report_data_is_rejected(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    """Held data that the quote's report data does not cover proves nothing."""
    ita.report_data_override = bytes(64)
    assert _refusal(validator, ita, clock, BindingMismatch).check == "ita.report_data"


def test_missing_held_data(ita: StandInIta, validator: ItaValidator, clock: FixedClock) -> None:
    issued = issue_token(
        ita, nonce=new_nonce(), claims_hook=lambda c: c["tdx"].pop("attester_held_data")
    )
    with pytest.raises(MalformedEvidence) as info:
        _appraise(validator, issued, clock)
    assert info.value.check == "ita.held_data"


def test_token_for_another_connection(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    other = attrs.evolve(issued, nonce=new_nonce())
    with pytest.raises(BindingMismatch):
        _appraise(validator, other, clock)


# -- policy ----------------------------------------------------------------------


def test_debug_td_is_rejected_by_default(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    ita.debug = True
    issued = issue_token(ita, nonce=new_nonce())
    result = _appraise(validator, issued, clock)
    assert result.status is Status.CONTRAINDICATED
    assert any(f.check == "debug" for f in result.failures)
    assert _appraise(validator, issued, clock, allow_debug=True).accepted


def test_tcb_status_and_advisories_follow_policy(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    ita.tcb_status = "OutOfDate"
    ita.advisory_ids = ["INTEL-SA-00837"]
    issued = issue_token(ita, nonce=new_nonce())
    assert not _appraise(validator, issued, clock).accepted
    result = _appraise(
        validator,
        issued,
        clock,
        accepted_tcb_statuses={"UpToDate", "OutOfDate"},
        accepted_advisory_ids={"INTEL-SA-00837"},
    )
    assert result.accepted
    assert result.status is Status.WARNING
    assert result.tcb.advisory_ids == ("INTEL-SA-00837",)


def test_reference_values(ita: StandInIta, validator: ItaValidator, clock: FixedClock) -> None:
    issued = issue_token(ita, nonce=new_nonce())
    good = {"mrtd": ReferenceValue(accepted=[ita.measurements["mrtd"].upper()])}
    assert _appraise(validator, issued, clock, reference_values=good).accepted
    bad = {"rtmr1": ReferenceValue(accepted=["00" * 48])}
    result = _appraise(validator, issued, clock, reference_values=bad)
    assert not result.accepted
    assert any(f.check == "reference.rtmr1" for f in result.failures)


def test_required_policy_ids(ita: StandInIta, validator: ItaValidator, clock: FixedClock) -> None:
    ita.policy_ids_matched = ["policy-a"]
    ita.policy_ids_unmatched = ["policy-b"]
    issued = issue_token(ita, nonce=new_nonce())
    ok = _appraise(validator, issued, clock, options={"required_policy_ids": ["policy-a"]})
    assert ok.accepted
    assert list(ok.claims["ita_policy_ids_matched"]) == ["policy-a"]
    result = _appraise(
        validator, issued, clock, options={"required_policy_ids": ["policy-a", "policy-b"]}
    )
    assert not result.accepted
    assert any(f.check == "ita.policy_ids" for f in result.failures)


def test_sgx_validator_refuses_a_tdx_token(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    validator = ItaValidator(settings, spec=SGX_SPEC)
    assert _refusal(validator, ita, clock, MalformedEvidence).check == "ita.attester_type"


# -- configuration ---------------------------------------------------------------


def test_a_root_is_required(ita: StandInIta) -> None:
    with pytest.raises(ConfigurationError) as info:
        ItaValidator({"jwks_url": ita.jwks_url})
    assert "root_ca" in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"jwks_url": "http://ita.example/certs"},
        {"portal_url": "ftp://ita.example"},
        {"jwks_url": "https://a/certs", "portal_url": "https://b"},
        {},
        {"jwks_url": "https://a/certs", "algorithms": ["HS256"]},
        {"jwks_url": "https://a/certs", "leeway": -1},
        {"jwks_url": "https://a/certs", "leeway": 601},
        {"jwks_url": "https://a/certs", "bogus": 1},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any], tmp_path: Path, ita: StandInIta) -> None:
    with pytest.raises(ConfigurationError):
        ItaValidator({"root_ca": str(ita.write_root(tmp_path / "root.pem")), **bad})


def test_portal_url_means_portal_certs(ita: StandInIta, tmp_path: Path, clock: FixedClock) -> None:
    validator = ItaValidator(
        {
            "portal_url": ita.url,
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
            "allow_http_loopback": True,
        }
    )
    assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted
    assert ita.requests["/certs"] == 1


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda chain: chain[:1], "ita.x5c.root"),
        (lambda chain: [chain[0], chain[2]], "ita.x5c.signature"),
        (lambda chain: [chain[1], chain[0], chain[2]], "ita.x5c.leaf"),
        (lambda chain: chain[2:], "ita.x5c.leaf"),
        (lambda chain: [], "ita.x5c"),
        (lambda chain: ["not base64!", *chain[1:]], "ita.x5c"),
        (lambda chain: chain * 4, "ita.x5c"),
    ],
)
def test_malformed_x5c_chains(
    ita: StandInIta, tmp_path: Path, clock: FixedClock, edit: Any, check: str
) -> None:
    jwks = ita.pki.jwks()
    keys = jwks["keys"]
    assert isinstance(keys, list)
    keys[0]["x5c"] = edit(list(keys[0]["x5c"]))
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    validator = ItaValidator(
        {"jwks_file": str(tmp_path / "jwks.json"), "root_ca": str(ita.write_root(tmp_path / "r"))}
    )
    assert _refusal(validator, ita, clock).check == check


@pytest.mark.parametrize("shape", ["v2", "v1"])
def test_sgx_token_is_affirmed_by_ita_sgx(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, shape: str
) -> None:
    ita.tee, ita.shape = "sgx", shape
    validator = ItaValidator(settings, spec=SGX_SPEC)
    issued = issue_token(ita, nonce=new_nonce())
    result = _appraise(validator, issued, clock)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.tee_type == "sgx"
    assert set(result.measurements) == {"mrenclave", "mrsigner"}
    assert result.claims["isv_svn"] == 3
    assert result.binding.freshness is Freshness.NONCE
    ita.report_data_override = bytes(64)
    with pytest.raises(BindingMismatch):
        _appraise(validator, issue_token(ita, nonce=new_nonce()), clock)


def test_tdx_validator_refuses_an_sgx_token(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    ita.tee = "sgx"
    assert _refusal(validator, ita, clock, MalformedEvidence).check == "ita.attester_type"


def test_evidence_file_may_be_itas_json_answer(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock
) -> None:
    issued = issue_token(ita, nonce=None)
    answer = json.dumps({"token": issued.token}).encode()
    evidence = validator.evidence_from_file(answer, name="answer.json")
    assert evidence.data == issued.token.encode()
    with pytest.raises(MalformedEvidence):
        validator.evidence_from_file(b'{"tokens": []}', name="x.json")


# -- what every TDX validator refuses, whoever verified the quote ------------------


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"tdx_mrsignerseam": "11" * 48}, "tdx.mrsignerseam"),
        ({"tdx_mrsignerseam": None}, "tdx.mrsignerseam"),
        ({"tdx_td_attributes": "0000000000000000"}, "tdx.td_attributes"),  # no SEPT_VE_DISABLE
        ({"tdx_td_attributes": "0000003000000000"}, "tdx.td_attributes"),  # reserved bit 29
        ({"tdx_td_attributes": "0001001000000000"}, "tdx.td_attributes"),  # reserved bit 8
        ({"tdx_td_attributes": None, "tdx_td_attributes_debug": None}, "tdx.td_attributes"),
    ],
)
def test_a_td_that_tdx_dcap_refuses_is_refused_in_a_token_too(
    ita: StandInIta,
    validator: ItaValidator,
    clock: FixedClock,
    claims: dict[str, Any],
    check: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ITA signs what it read from the quote; its policy need not refuse a TDX module Intel
    did not sign or a TD without SEPT_VE_DISABLE, so the validator does, as tdx.dcap does."""
    assert _appraise(validator, issue_token(ita, nonce=new_nonce()), clock).accepted
    monkeypatch.setattr(ita, "tdx_claims_override", claims)  # the stand-in outlives the test
    result = _appraise(validator, issue_token(ita, nonce=new_nonce()), clock, allow_debug=True)
    assert result.status is Status.CONTRAINDICATED
    assert [f.check for f in result.failures] == [check]


def test_a_td_without_sept_ve_disable_is_a_warning_where_policy_allows_it(
    ita: StandInIta, validator: ItaValidator, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``require_sept_ve_disable = false`` relaxes that one rule, loudly; reserved bits stay
    refused."""
    monkeypatch.setattr(ita, "tdx_claims_override", {"tdx_td_attributes": "0000000000000000"})
    result = _appraise(
        validator, issue_token(ita, nonce=new_nonce()), clock, options={SEPT_VE_OPTION: False}
    )
    assert result.status is Status.WARNING
    assert any(w.startswith("tdx.td_attributes:") for w in result.warnings)
    monkeypatch.setattr(ita, "tdx_claims_override", {"tdx_td_attributes": "0000002000000000"})
    result = _appraise(
        validator, issue_token(ita, nonce=new_nonce()), clock, options={SEPT_VE_OPTION: False}
    )
    assert [f.check for f in result.failures] == ["tdx.td_attributes"]


@pytest.mark.parametrize("value", ["false", 0, None])
def test_require_sept_ve_disable_must_be_a_boolean(settings: dict[str, Any], value: Any) -> None:
    from atls_core.selection import select_validator

    with pytest.raises(ConfigurationError):
        select_validator(
            "ita.tdx",
            settings=settings,
            policy=Policy(options={SEPT_VE_OPTION: value}, allow_any_workload=True),
            allow_insecure=True,
        )

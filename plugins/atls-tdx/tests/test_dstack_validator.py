"""tdx.dstack (RA-TLS certificates) and tdx.dstack-challenge (secureai /tdx_quote)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.errors import (
    ATLSError,
    BindingMismatch,
    ConfigurationError,
    MalformedEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence
from atls_core.interfaces import ChallengeResponse
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_dcap.testing.quotes import DEFAULT_MRTD
from atls_tdx.dstack import DstackValidator, compose_hash, expected_mr_config_id
from atls_tdx.dstack_eventlog import CERTIFICATE_EVENT
from atls_tdx.oids import DSTACK_ATTESTATION, DSTACK_EVENT_LOG, DSTACK_QUOTE
from atls_tdx.testing.dstack import (
    app_info_msgpack,
    attestation_certificate,
    dstack_event_log,
    legacy_extensions,
    octet_string,
    replay_rtmrs,
    runtime_event,
    self_signed_certificate,
    spki_of,
)

COMPOSE = '{"manifest_version":2,"name":"demo","runner":"docker-compose"}'
OS_IMAGE = hashlib.sha256(b"atls synthetic dstack OS").digest()


def pinned_policy(events: Sequence[dict[str, Any]], **kw: Any) -> Policy:
    rtmrs = replay_rtmrs(events)
    refs = {"mrtd": ReferenceValue(accepted=[DEFAULT_MRTD.hex()])}
    refs.update({f"rtmr{i}": ReferenceValue(accepted=[rtmrs[i].hex()]) for i in range(3)})
    return Policy(reference_values=refs, options={"app_compose": COMPOSE, **kw})


@attrs.frozen
class Built:
    case: Case
    certificate: bytes
    events: list[dict[str, Any]]


def certificate_case(
    world: Any,
    *,
    events: list[dict[str, Any]] | None = None,
    app_id_extension: bytes | None = None,
    app_info: bytes | None = None,
    mr_config_id: bytes = bytes(48),
    policy: Policy | None = None,
    report_data: bytes | None = None,
) -> Built:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = spki_of(key)
    events = events if events is not None else dstack_event_log(app_compose=COMPOSE)
    data = (
        report_data
        if report_data is not None
        else b.report_data_for("dstack-ratls-cert", spki_der=spki)
    )
    quote = world.quote(data, rtmr=replay_rtmrs(events), mr_config_id=mr_config_id)
    extensions = legacy_extensions(quote, events, app_id=app_id_extension, app_info=app_info)
    der = self_signed_certificate(key, extensions)
    evidence = DstackValidator(world.settings()).evidence_from_certificate(
        PeerCertificate.from_der(der)
    )
    return Built(
        case=Case(
            evidence=evidence,
            binding=b.BindingContext(spki_der=spki, certificate_der=der),
            clock=world.clock,
            policy=policy or pinned_policy(events),
        ),
        certificate=der,
        events=events,
    )


def challenge_case(
    world: Any,
    *,
    events: list[dict[str, Any]] | None = None,
    certificate_digest: bytes | None = None,
    tcb_info: dict[str, Any] | None = None,
    policy: Policy | None = None,
    app_compose: str = COMPOSE,
    app_id: bytes | None = None,
) -> Built:
    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed_certificate(key)
    digest = certificate_digest if certificate_digest is not None else hashlib.sha256(der).digest()
    if events is None:
        events = dstack_event_log(
            app_compose=app_compose,
            app_id=app_id,
            app_events=[(CERTIFICATE_EVENT, digest.hex().encode())],
        )
    nonce = b.new_nonce()
    validator = DstackValidator.challenge_validator(world.settings())
    request = validator.challenge(nonce)
    report_data = bytes.fromhex(json.loads(request.body)["report_data_hex"])
    quote = world.quote(report_data, rtmr=replay_rtmrs(events))
    body = {
        "success": True,
        "quote": {
            "quote": quote.hex(),
            "event_log": json.dumps(events),
            "report_data": report_data.hex(),
            "vm_config": '{"os_image_hash": "00"}',
        },
        "tcb_info": tcb_info if tcb_info is not None else {"app_compose": app_compose},
    }
    evidence = validator.evidence_from_challenge(
        ChallengeResponse(status=200, headers={}, body=json.dumps(body).encode())
    )
    return Built(
        case=Case(
            evidence=evidence,
            binding=b.BindingContext(spki_der=spki_of(key), nonce=nonce, certificate_der=der),
            clock=world.clock,
            policy=policy or pinned_policy(events),
        ),
        certificate=der,
        events=events,
    )


def appraise(validator: DstackValidator, case: Case) -> AttestationResult:
    return case.appraised_by(validator)


class TestDstackCertificateConformance(ValidatorConformance):
    world_fixture = "synthetic"
    validator_class = DstackValidator

    def good_case(self) -> Case:
        return certificate_case(self.world).case

    def signed_regions(self, evidence: Evidence) -> list[tuple[int, int]]:
        return self.world.signed_regions(evidence.data)  # type: ignore[no-any-return]


class TestDstackChallengeConformance(ValidatorConformance):
    world_fixture = "synthetic"

    def make_validator(self) -> DstackValidator:
        return DstackValidator.challenge_validator(self.world.settings())

    def good_case(self) -> Case:
        return challenge_case(self.world).case

    def signed_regions(self, evidence: Evidence) -> list[tuple[int, int]]:
        return self.world.signed_regions(evidence.data)  # type: ignore[no-any-return]


# --- certificate mode ------------------------------------------------------------


def test_pinned_certificate_is_affirming(synthetic: Any) -> None:
    built = certificate_case(synthetic, app_id_extension=compose_hash(COMPOSE)[:20])
    result = appraise(DstackValidator(synthetic.settings()), built.case)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.freshness is b.Freshness.KEY_ONLY
    assert result.warnings == ()
    assert result.measurements["compose_hash"] == compose_hash(COMPOSE).hex()
    assert result.measurements["app_id"] == compose_hash(COMPOSE)[:20].hex()
    assert result.measurements["os_image_hash"] == OS_IMAGE.hex()
    assert result.claims["system_ready"] is True


# --- pinning: the core's rule over spec.workload_identity and the pinning options ----------


def _appraised(synthetic: Any, mode: str, policy: Policy) -> AttestationResult:
    """A genuine case under ``policy``, appraised by the ``mode`` transport's validator."""
    if mode == "certificate":
        validator = DstackValidator(synthetic.settings())
        return appraise(validator, certificate_case(synthetic, policy=policy).case)
    validator = DstackValidator.challenge_validator(synthetic.settings())
    return appraise(validator, challenge_case(synthetic, policy=policy).case)


def _pin_id(pin: dict[str, dict[str, Any]]) -> str:
    """The name a pin sets (an option or a reference value)."""
    (names,) = pin.values()
    (name,) = names
    return name


MODES = ["certificate", "challenge"]


@pytest.mark.parametrize("mode", MODES)
def test_unpinned_deployment_is_refused_naming_what_to_pin(synthetic: Any, mode: str) -> None:
    # A genuine dstack TD running anyone's compose file would otherwise pass.
    result = _appraised(synthetic, mode, Policy())
    assert result.status is Status.CONTRAINDICATED
    assert result.binding.verified
    assert [f.check for f in result.failures] == ["workload.unpinned"]
    failure = result.failures[0]
    # tdx.dstack also reads SEV-SNP attestations, whose HOST_DATA pins the app as well.
    host_data = ["reference_values.host_data"] if mode == "certificate" else []
    # In the challenge protocol RTMR3 records each new TLS certificate: it is not offered.
    rtmr3 = ["reference_values.rtmr3"] if mode == "certificate" else []
    assert failure.expected == [
        "reference_values.compose_hash",
        *rtmr3,
        "reference_values.mrconfigid",
        *host_data,
        "app_compose",
        "allowed_compose_hashes",
    ]
    assert failure.actual["compose_hash"] == compose_hash(COMPOSE).hex()
    assert "app_id" not in failure.actual  # the host chooses it: not offered as a pin
    assert f'compose_hash = "{compose_hash(COMPOSE).hex()}"' in failure.message
    assert not any(w.startswith("dstack.app:") for w in result.warnings)


@pytest.mark.parametrize("mode", MODES)
def test_allow_any_workload_accepts_with_warnings(synthetic: Any, mode: str) -> None:
    result = _appraised(synthetic, mode, Policy(allow_any_workload=True))
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING
    assert sorted(w.split(":")[0] for w in result.warnings) == [
        "dstack.boot_chain",
        "workload.unpinned",
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "pin",
    [
        {"options": {"app_compose": COMPOSE}},
        {"options": {"allowed_compose_hashes": [compose_hash(COMPOSE).hex()]}},
        {"reference_values": {"compose_hash": compose_hash(COMPOSE).hex()}},
    ],
    ids=_pin_id,
)
def test_one_pin_is_enough_and_the_boot_chain_still_warns(
    synthetic: Any, mode: str, pin: dict[str, Any]
) -> None:
    result = _appraised(synthetic, mode, Policy(**pin))
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING
    assert [w.split(":")[0] for w in result.warnings] == ["dstack.boot_chain"]


VICTIM_APP_ID = compose_hash(COMPOSE)[:20]
ATTACKER_COMPOSE = '{"runner":"bash","name":"not the victim"}'


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "pin",
    [
        {"options": {"allowed_app_ids": [VICTIM_APP_ID.hex()]}},
        {"reference_values": {"app_id": VICTIM_APP_ID.hex()}},
    ],
    ids=_pin_id,
)
def test_an_app_id_alone_does_not_pin(synthetic: Any, mode: str, pin: dict[str, Any]) -> None:
    # dstack measures the app id the host deployed with, KMS or not: a TD running another
    # compose (key provider none) can measure the victim's.  With the boot chain pinned
    # too, such a policy accepted it as AFFIRMING.
    settings = synthetic.settings()
    if mode == "certificate":
        events = dstack_event_log(app_compose=ATTACKER_COMPOSE, app_id=VICTIM_APP_ID)
        built, validator = certificate_case(synthetic, events=events), DstackValidator(settings)
    else:
        built = challenge_case(synthetic, app_compose=ATTACKER_COMPOSE, app_id=VICTIM_APP_ID)
        validator = DstackValidator.challenge_validator(settings)
    boot_chain = pinned_policy(built.events).reference_values
    references = {**boot_chain, **pin.get("reference_values", {})}
    policy = Policy(reference_values=references, options=pin.get("options", {}))
    result = appraise(validator, attrs.evolve(built.case, policy=policy))
    assert not result.accepted
    assert [f.check for f in result.failures if f.enforced] == ["workload.unpinned"]
    assert result.measurements["app_id"] == VICTIM_APP_ID.hex()
    # The app id is still checked beside a compose pin, which names the application.
    beside = Policy(
        reference_values=references,
        options={**pin.get("options", {}), "allowed_compose_hashes": [compose_hash(COMPOSE).hex()]},
    )
    refused = appraise(validator, attrs.evolve(built.case, policy=beside))
    assert [f.check for f in refused.failures if f.enforced] == ["dstack.compose_hash"]


def test_a_non_zero_mr_config_id_pins_the_application(synthetic: Any) -> None:
    # Every MRCONFIGID form dstack writes commits to the compose hash (the guest checks it).
    mr_config_id = expected_mr_config_id(compose_hash(COMPOSE))
    built = certificate_case(synthetic, mr_config_id=mr_config_id)
    policy = Policy(reference_values={"mrconfigid": mr_config_id.hex()})
    result = appraise(
        DstackValidator(synthetic.settings()), attrs.evolve(built.case, policy=policy)
    )
    assert result.accepted, result.to_json()


@pytest.mark.parametrize("mode", MODES)
def test_rtmr3_pins_only_where_it_does_not_rotate(synthetic: Any, mode: str) -> None:
    # In the challenge protocol RTMR3 records each new TLS certificate: pinning it alone
    # would refuse the server at its next rotation, so there it is checked but does not pin.
    if mode == "certificate":
        built, validator = certificate_case(synthetic), DstackValidator(synthetic.settings())
    else:
        built = challenge_case(synthetic)
        validator = DstackValidator.challenge_validator(synthetic.settings())
    rtmr3 = replay_rtmrs(built.events)[3].hex()
    alone = appraise(
        validator,
        attrs.evolve(built.case, policy=Policy(reference_values={"rtmr3": rtmr3})),
    )
    if mode == "certificate":
        assert alone.accepted, alone.to_json()
    else:
        assert [f.check for f in alone.failures if f.enforced] == ["workload.unpinned"]
        assert "rtmr3" not in alone.failures[0].message
    beside_a_pin = appraise(
        validator,
        attrs.evolve(
            built.case,
            policy=Policy(reference_values={"rtmr3": "ab" * 48}, options={"app_compose": COMPOSE}),
        ),
    )
    assert [f.check for f in beside_a_pin.failures if f.enforced] == ["reference.rtmr3"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "platform_only",
    [
        {"options": {"allowed_os_image_hashes": [OS_IMAGE.hex()]}},
        {"reference_values": {"os_image_hash": OS_IMAGE.hex()}},
        {"reference_values": {"mrtd": DEFAULT_MRTD.hex()}},
    ],
    ids=_pin_id,
)
def test_pinning_only_the_platform_does_not_pin_the_application(
    synthetic: Any, mode: str, platform_only: dict[str, Any]
) -> None:
    # Every dstack app on this OS image and firmware shares these values.
    result = _appraised(synthetic, mode, Policy(**platform_only))
    assert not result.accepted
    assert "workload.unpinned" in [f.check for f in result.failures]


def test_a_warn_only_boot_chain_is_not_pinned(synthetic: Any) -> None:
    built = certificate_case(synthetic)
    rtmrs = replay_rtmrs(built.events)
    references = {
        "mrtd": ReferenceValue(accepted=[DEFAULT_MRTD.hex()], enforce=False),
        **{f"rtmr{i}": ReferenceValue(accepted=[rtmrs[i].hex()], enforce=False) for i in range(3)},
    }
    unpinned = appraise(
        DstackValidator(synthetic.settings()),
        attrs.evolve(built.case, policy=Policy(reference_values=references)),
    )
    assert [f.check for f in unpinned.failures if f.enforced] == ["workload.unpinned"]
    app_pinned = appraise(
        DstackValidator(synthetic.settings()),
        attrs.evolve(
            built.case,
            policy=Policy(reference_values=references, options={"app_compose": COMPOSE}),
        ),
    )
    assert app_pinned.accepted
    assert [w.split(":")[0] for w in app_pinned.warnings] == ["dstack.boot_chain"]


def test_forged_compose_payload_with_genuine_digest_is_rejected(synthetic: Any) -> None:
    built = certificate_case(synthetic)
    forged = [dict(e) for e in built.events]
    index = next(i for i, e in enumerate(forged) if e["event"] == "compose-hash")
    forged[index]["event_payload"] = compose_hash('{"evil":true}').hex()
    evidence = attrs.evolve(
        built.case.evidence,
        endorsements={"event_log": json.dumps(forged).encode()},
    )
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator(synthetic.settings()), attrs.evolve(built.case, evidence=evidence))
    assert info.value.check == "dstack.event_digest"


def test_event_log_of_another_td_is_rejected(synthetic: Any) -> None:
    built = certificate_case(synthetic)
    other = dstack_event_log(app_compose='{"other":1}')
    evidence = attrs.evolve(
        built.case.evidence, endorsements={"event_log": json.dumps(other).encode()}
    )
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator(synthetic.settings()), attrs.evolve(built.case, evidence=evidence))
    assert info.value.check == "dstack.rtmr3"


def test_wrong_app_compose_policy_rejects(synthetic: Any) -> None:
    built = certificate_case(synthetic)
    case = attrs.evolve(built.case, policy=pinned_policy(built.events))
    case = attrs.evolve(
        case, policy=attrs.evolve(case.policy, options={"app_compose": '{"another":1}'})
    )
    result = appraise(DstackValidator(synthetic.settings()), case)
    assert not result.accepted
    assert [f.check for f in result.failures] == ["dstack.compose_hash"]


@pytest.mark.parametrize(
    ("option", "good", "bad"),
    [
        ("allowed_compose_hashes", compose_hash(COMPOSE).hex(), "ab" * 32),
        ("allowed_app_ids", "0x" + compose_hash(COMPOSE)[:20].hex().upper(), "cd" * 20),
        ("allowed_os_image_hashes", OS_IMAGE.hex(), "ef" * 32),
    ],
)
def test_allow_lists(synthetic: Any, option: str, good: str, bad: str) -> None:
    built = certificate_case(synthetic)
    validator = DstackValidator(synthetic.settings())
    app = {"compose_hash": compose_hash(COMPOSE).hex()}  # the OS allow-list alone does not pin
    accepted = appraise(
        validator,
        attrs.evolve(
            built.case, policy=Policy(options={option: [bad, good]}, reference_values=app)
        ),
    )
    assert accepted.accepted, accepted.to_json()
    rejected = appraise(
        validator,
        attrs.evolve(built.case, policy=Policy(options={option: [bad]}, reference_values=app)),
    )
    assert not rejected.accepted
    assert rejected.failures[0].check.startswith("dstack.")


def test_allow_list_values_are_validated(synthetic: Any) -> None:
    built = certificate_case(synthetic)
    validator = DstackValidator(synthetic.settings())
    for value in ("ab" * 32, ["zz"], ["ab" * 31], []):
        with pytest.raises(ConfigurationError):
            appraise(
                validator,
                attrs.evolve(built.case, policy=Policy(options={"allowed_compose_hashes": value})),
            )


def test_os_image_hash_must_be_measured_when_required(synthetic: Any) -> None:
    events = [e for e in dstack_event_log(app_compose=COMPOSE) if e["event"] != "os-image-hash"]
    built = certificate_case(synthetic, events=events)
    result = appraise(
        DstackValidator(synthetic.settings()),
        attrs.evolve(
            built.case, policy=Policy(options={"allowed_os_image_hashes": [OS_IMAGE.hex()]})
        ),
    )
    assert not result.accepted
    assert result.failures[0].check == "dstack.os_image_hash"
    assert "measures no" in result.failures[0].message


def test_mr_config_id_must_name_the_measured_compose(synthetic: Any) -> None:
    good = certificate_case(synthetic, mr_config_id=expected_mr_config_id(compose_hash(COMPOSE)))
    assert appraise(DstackValidator(synthetic.settings()), good.case).accepted
    bad = certificate_case(synthetic, mr_config_id=expected_mr_config_id(compose_hash("{}")))
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator(synthetic.settings()), bad.case)
    assert info.value.check == "dstack.mr_config_id"


def test_an_oversized_compose_hash_is_a_specific_error(synthetic: Any) -> None:
    # Regression (R3 review): a 48-byte compose-hash payload made expected_mr_config_id
    # compute bytes(-1), and a ValueError escaped instead of a named check.
    events = [
        runtime_event("compose-hash", b"\x01" * 48) if e["event"] == "compose-hash" else e
        for e in dstack_event_log(app_compose=COMPOSE)
    ]
    built = certificate_case(synthetic, events=events, mr_config_id=b"\x01" * 48)
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator(synthetic.settings()), built.case)
    assert info.value.check == "dstack.mr_config_id"


def test_certificate_app_id_must_match_the_log(synthetic: Any) -> None:
    built = certificate_case(synthetic, app_id_extension=b"\x99" * 20)
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator(synthetic.settings()), built.case)
    assert info.value.check == "dstack.app_id"


def test_certificate_app_info_is_shown_and_must_match_the_log(synthetic: Any) -> None:
    measured = compose_hash(COMPOSE)
    honest = certificate_case(
        synthetic, app_info=app_info_msgpack(app_id=measured[:20], compose_hash=measured)
    )
    result = appraise(DstackValidator(synthetic.settings()), honest.case)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.claims["app_info"]["compose_hash"] == measured.hex()
    for app_id, compose in ((b"\x99" * 20, measured), (measured[:20], compose_hash("{}"))):
        lying = certificate_case(
            synthetic, app_info=app_info_msgpack(app_id=app_id, compose_hash=compose)
        )
        with pytest.raises(UntrustedChain) as info:
            appraise(DstackValidator(synthetic.settings()), lying.case)
        assert info.value.check == "dstack.app_info"


@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_attestation_extension_replays_rtmr3_and_is_pinned_like_the_rest(
    synthetic: Any, wire: int
) -> None:
    # dstack strips the log it embeds: RTMR0-2 cannot be replayed, only RTMR3 (the facts).
    key = ec.generate_private_key(ec.SECP256R1())
    events = dstack_event_log(app_compose=COMPOSE)

    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        made: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return made

    der = attestation_certificate(key, quote, events=events, wire_version=wire)
    validator = DstackValidator(synthetic.settings())
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(der))
    case = Case(
        evidence=evidence,
        binding=b.BindingContext(spki_der=spki_of(key), certificate_der=der),
        clock=synthetic.clock,
        policy=pinned_policy(events),
    )
    result = appraise(validator, case)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert list(result.claims["rtmrs_not_replayed"]) == [0, 1, 2]
    assert result.claims["attestation_version"] == str(wire)
    assert result.measurements["compose_hash"] == compose_hash(COMPOSE).hex()
    unpinned = appraise(validator, attrs.evolve(case, policy=Policy()))
    assert [f.check for f in unpinned.failures] == ["workload.unpinned"]


def test_report_data_must_bind_the_certificate_key(synthetic: Any) -> None:
    built = certificate_case(synthetic, report_data=hashlib.sha512(b"ratls-cert:other").digest())
    with pytest.raises(BindingMismatch):
        appraise(DstackValidator(synthetic.settings()), built.case)


class _Padded:
    """A synthetic world whose quotes are followed by ``after``."""

    def __init__(self, world: Any, after: bytes) -> None:
        self.world, self.after = world, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    def quote(self, report_data: bytes, **kw: Any) -> bytes:
        return self.world.quote(report_data, **kw) + self.after  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("after", "accepted"), [(bytes(64), True), (b"\x01", False)], ids=["zeros", "non-zero"]
)
def test_only_zero_padding_may_follow_the_quote(
    synthetic: Any, after: bytes, accepted: bool
) -> None:
    """The bytes after a quote's end are signed by nothing: zeros pass, anything else not."""
    validator = DstackValidator(synthetic.settings())
    case = certificate_case(_Padded(synthetic, after)).case
    if accepted:
        assert appraise(validator, case).accepted
        return
    with pytest.raises(ATLSError) as info:
        appraise(validator, case)
    assert info.value.check == "dcap.quote_format"


def test_certificate_without_dstack_extensions(synthetic: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    validator = DstackValidator(synthetic.settings())
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_certificate(PeerCertificate.from_der(self_signed_certificate(key)))
    assert info.value.check == "evidence.extension"
    truncated = self_signed_certificate(key, [(DSTACK_ATTESTATION, octet_string(b"\x00"))])
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_certificate(PeerCertificate.from_der(truncated))
    assert info.value.check.startswith("dstack.")
    no_log = self_signed_certificate(key, [(DSTACK_QUOTE, octet_string(b"\x04\x00"))])
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_certificate(PeerCertificate.from_der(no_log))
    assert info.value.check == "dstack.event_log"
    unwrapped = self_signed_certificate(
        key, [(DSTACK_QUOTE, b"\x30\x00"), (DSTACK_EVENT_LOG, octet_string(b"[]"))]
    )
    with pytest.raises(MalformedEvidence):
        validator.evidence_from_certificate(PeerCertificate.from_der(unwrapped))


# --- challenge mode ---------------------------------------------------------------


def test_challenge_request_is_secureai_shaped(synthetic: Any) -> None:
    nonce = b.new_nonce()
    request = DstackValidator.challenge_validator(synthetic.settings()).challenge(nonce)
    assert request.method == "POST"
    assert request.path == "/tdx_quote"
    body = json.loads(request.body)
    assert sorted(body) == ["nonce", "report_data_hex"]
    assert body["nonce"] == nonce.hex()
    assert (
        bytes.fromhex(body["report_data_hex"])
        == hashlib.sha512(b"atls-challenge-v1\x00" + nonce).digest()
    )
    custom = DstackValidator.challenge_validator({**synthetic.settings(), "quote_path": "/attest"})
    assert custom.challenge(nonce).path == "/attest"
    for bad in ("attest", "/a b", "/a\r\nX-Evil: 1", 5):
        with pytest.raises(ConfigurationError):
            DstackValidator.challenge_validator({**synthetic.settings(), "quote_path": bad})


def test_pinned_challenge_is_affirming_and_nonce_fresh(synthetic: Any) -> None:
    built = challenge_case(synthetic)
    result = appraise(DstackValidator.challenge_validator(synthetic.settings()), built.case)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.freshness is b.Freshness.NONCE
    assert result.warnings == ()
    assert (
        result.claims["certificate_event_sha256"] == hashlib.sha256(built.certificate).hexdigest()
    )
    assert result.claims["app_compose_sha256"] == compose_hash(COMPOSE).hex()


def test_challenge_without_certificate_event_is_unbound(synthetic: Any) -> None:
    built = challenge_case(synthetic, events=dstack_event_log(app_compose=COMPOSE))
    with pytest.raises(BindingMismatch) as info:
        appraise(DstackValidator.challenge_validator(synthetic.settings()), built.case)
    assert info.value.check == "dstack.certificate_event"


def test_challenge_certificate_event_of_another_certificate(synthetic: Any) -> None:
    built = challenge_case(synthetic, certificate_digest=hashlib.sha256(b"another cert").digest())
    with pytest.raises(BindingMismatch) as info:
        appraise(DstackValidator.challenge_validator(synthetic.settings()), built.case)
    assert info.value.check == "binding.certificate"


def test_challenge_uses_the_last_certificate_event(synthetic: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = hashlib.sha256(b"old certificate").hexdigest().encode()
    built = challenge_case(synthetic)
    current = hashlib.sha256(built.certificate).hexdigest().encode()
    events = dstack_event_log(
        app_compose=COMPOSE, app_events=[(CERTIFICATE_EVENT, current), (CERTIFICATE_EVENT, old)]
    )
    stale = challenge_case(synthetic, events=events)
    stale_case = attrs.evolve(
        stale.case,
        binding=attrs.evolve(
            stale.case.binding,
            certificate_der=built.certificate,
            spki_der=built.case.binding.spki_der,
        ),
    )
    with pytest.raises(BindingMismatch):
        appraise(DstackValidator.challenge_validator(synthetic.settings()), stale_case)
    del key


def test_challenge_app_compose_must_match_the_log(synthetic: Any) -> None:
    built = challenge_case(synthetic, tcb_info={"app_compose": '{"lying":true}'})
    with pytest.raises(UntrustedChain) as info:
        appraise(DstackValidator.challenge_validator(synthetic.settings()), built.case)
    assert info.value.check == "dstack.app_compose"


def test_challenge_error_answers(synthetic: Any) -> None:
    validator = DstackValidator.challenge_validator(synthetic.settings())
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_challenge(ChallengeResponse(status=500, headers={}, body=b""))
    assert info.value.check == "challenge.status"
    for body in (
        b"nope",
        b"[]",
        b'{"success": false}',
        b'{"quote": {"event_log": "[]"}}',
        b'{"quote": {"quote": "zz", "event_log": "[]"}}',
        b'{"quote": {"quote": "0400"}}',
    ):
        with pytest.raises(MalformedEvidence):
            validator.evidence_from_challenge(ChallengeResponse(status=200, headers={}, body=body))


def test_system_event_emitted_by_the_application_is_refused(synthetic: Any) -> None:
    built = challenge_case(synthetic)
    events = [*built.events, runtime_event("compose-hash", compose_hash("{}"))]
    evil = challenge_case(synthetic, events=events)
    with pytest.raises(MalformedEvidence):
        appraise(DstackValidator.challenge_validator(synthetic.settings()), evil.case)


def test_newer_system_events_are_claims_not_pins(synthetic: Any) -> None:
    # dstack master measures init scripts, the GPU policy and the data disk's filesystem.
    events = dstack_event_log(app_compose=COMPOSE)
    ready = next(i for i, e in enumerate(events) if e["event"] == "system-ready")
    newer = [
        runtime_event("init-script-hash", b"\x11" * 32),
        runtime_event("init-script-hash", b"\x22" * 32),
        runtime_event("gpu-policy-hash", b"\x33" * 32),
        runtime_event("storage-fs", b"zfs"),
    ]
    built = certificate_case(synthetic, events=[*events[:ready], *newer, *events[ready:]])
    result = appraise(DstackValidator(synthetic.settings()), built.case)
    assert result.accepted, result.to_json()
    assert list(result.claims["init_script_hashes"]) == ["11" * 32, "22" * 32]
    assert result.claims["gpu_policy_hash"] == "33" * 32
    assert result.claims["storage_fs"] == "zfs"
    assert list(result.claims["app_events"]) == []

"""An issuer's spec is read off its validator's; OIDs come from one arc; test key usages."""

from __future__ import annotations

import attrs
import pytest

from atls_core.evidence import Transport
from atls_core.interfaces import IssuerSpec, ValidatorSpec
from atls_core.oids import ATLS_ARC, oid_under
from atls_core.specs import issuer_spec
from atls_core.testing.certs import CA_USES, key_usage

VALIDATOR = ValidatorSpec(
    id="unit.quote",
    media_types=("application/vnd.test.quote", "application/vnd.test.envelope"),
    binding_schemes=("atls-v1", "challenge-v1"),
    transport=Transport.CERTIFICATE,
    tee_type="simulated",
    oids=("1.3.9999.7.1", "1.3.9999.7.2"),
    insecure=True,
)


def test_an_issuer_takes_its_validators_first_facts() -> None:
    spec = issuer_spec(VALIDATOR, id="unit.issuer", description="d", settings=["key"])
    assert spec == IssuerSpec(
        id="unit.issuer",
        validator_id="unit.quote",
        binding_scheme="atls-v1",
        media_type="application/vnd.test.quote",
        transport=Transport.CERTIFICATE,
        oid="1.3.9999.7.1",
        description="d",
        settings=("key",),
        insecure=True,
    )


def test_an_issuer_may_pick_what_its_validator_declares() -> None:
    spec = issuer_spec(
        VALIDATOR,
        id="unit.issuer",
        description="d",
        binding_scheme="challenge-v1",
        media_type="application/vnd.test.envelope",
        oid="1.3.9999.7.2",
    )
    assert (spec.binding_scheme, spec.media_type, spec.oid) == (
        "challenge-v1",
        "application/vnd.test.envelope",
        "1.3.9999.7.2",
    )
    for wrong in ({"binding_scheme": "gramine-tcg"}, {"oid": "1.3.9999.7.3"}):
        with pytest.raises(ValueError, match=r"unit\.quote declares no"):
            issuer_spec(VALIDATOR, id="unit.issuer", description="d", **wrong)


def test_a_challenge_issuer_names_no_extension() -> None:
    challenge = attrs.evolve(VALIDATOR, transport=Transport.CHALLENGE, oids=())
    spec = issuer_spec(challenge, id="unit.issuer", description="d")
    assert spec.transport is Transport.CHALLENGE
    assert spec.oid is None


def test_oids_under_an_arc() -> None:
    assert oid_under(ATLS_ARC, 3, 1) == ATLS_ARC + ".3.1"
    assert oid_under("1.3.6.1.4.1.3704.1", 4) == "1.3.6.1.4.1.3704.1.4"


def test_key_usage_grants_exactly_the_named_uses() -> None:
    usage = key_usage(*CA_USES)
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert key_usage("digital_signature").digital_signature
    with pytest.raises(ValueError, match="unknown key uses"):
        key_usage("sign_everything")


def test_pins_in_a_policy_are_enforced_identity_values_and_set_pinning_options() -> None:
    from atls_core.policy import Policy, ReferenceValue
    from atls_core.testing.facts import unit_spec

    spec = unit_spec(
        "p.v",
        measurements=("mrtd", "rtmr0"),
        workload_identity=("mrtd",),
        policy_options=("app_compose",),
        pinning_options=("app_compose",),
    )
    assert spec.ways_to_pin == ("reference_values.mrtd", "app_compose")
    assert spec.pins_in(Policy(reference_values={"mrtd": "ab"})) == ("mrtd",)
    assert spec.pins_in(Policy(reference_values={"rtmr0": "ab"})) == ()  # not an identity
    warn_only = ReferenceValue(accepted=["ab"], enforce=False)
    assert spec.pins_in(Policy(reference_values={"mrtd": warn_only})) == ()
    assert spec.pins_in(Policy(options={"app_compose": None})) == ()
    assert spec.pins_in(Policy(reference_values={"mrtd": "00" * 48})) == ()  # "not set"
    assert spec.pins_in(Policy(reference_values={"mrtd": ["ab", "0x0000"]})) == ()
    assert spec.pins_in(Policy(options={"app_compose": "{}"})) == ("app_compose",)


@pytest.mark.parametrize(
    "value",
    ["ab" * 47, "ab" * 49, "a" * 95, "0x" + "ab" * 47],
    ids=["a-byte-short", "a-byte-long", "odd-digits", "prefixed-short"],
)
def test_a_reference_value_of_the_wrong_size_is_refused_with_its_configuration(
    value: str,
) -> None:
    """Else it pins, and every connection is refused: found when the validator is chosen."""
    from atls_core.errors import ConfigurationError
    from atls_core.policy import Policy
    from atls_core.selection import check_against_spec
    from atls_core.testing.facts import unit_spec

    spec = unit_spec("p.v", measurements=("mrtd", "label"), measurement_sizes={"mrtd": 48})

    def check(policy: Policy) -> None:
        check_against_spec(spec, settings={}, policy=policy, allow_insecure=True, where="hosts.x")

    check(Policy(reference_values={"mrtd": "AB" * 48}))
    check(Policy(reference_values={"label": "abc"}))  # no size declared: not checked
    with pytest.raises(ConfigurationError) as caught:
        check(Policy(reference_values={"mrtd": value}))
    assert caught.value.check == "config.reference_values"
    assert "hosts.x.policy.reference_values.mrtd" in caught.value.reason
    assert "48 bytes of hex (96 digits" in caught.value.reason


def test_measurement_sizes_take_a_mapping_or_pairs_and_name_declared_measurements() -> None:
    from atls_core.errors import PluginLoadError
    from atls_core.registry import PluginInfo, ValidatorRegistrar
    from atls_core.testing.facts import unit_spec
    from atls_core.testing.simulated import SimulatedValidator

    sized = unit_spec("p.v", measurements=("a", "b"), measurement_sizes={"b": 32, "a": 48})
    assert sized.measurement_sizes == (("a", 48), ("b", 32))
    assert unit_spec("p.v", measurements=("a",), measurement_sizes=[("a", 48)]) == attrs.evolve(
        sized, measurements=("a",), measurement_sizes={"a": 48}
    )
    info = PluginInfo(name="p", distribution="atls-p", version="1", value="p")
    registrar = ValidatorRegistrar(info, [])
    with pytest.raises(PluginLoadError, match="measurement_sizes names measurements"):
        registrar.register(
            unit_spec("p.v", measurements=("a",), measurement_sizes={"z": 1}), SimulatedValidator
        )

"""pyatls's validator API: ``accepts``, ``validate``, ``policies``/``jkus``, ``CvmValidator``."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from atls_pyatls import PUBLIC_JKUS, AciValidator, CvmValidator, Validator
from atls_pyatls.testing import pyatls_runtime_data
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ObjectIdentifier

from atls_azure.aci import SecurityWarning
from atls_azure.testing.maa import StandInMaa
from atls_core import binding as b
from atls_core.selection import AppraiserLike

CCE_POLICY = "package policy"


def _spki() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_accepts_names_its_extension() -> None:
    assert AciValidator.accepts(ObjectIdentifier("1.3.9999.2.1.2"))
    assert not AciValidator.accepts(ObjectIdentifier("1.3.9999.2.1.1"))
    assert CvmValidator.accepts(ObjectIdentifier("1.3.9999.2.1.1"))
    assert not CvmValidator.accepts(ObjectIdentifier("1.3.9999.2.1.2"))


def test_validate_is_the_full_appraisal(maa: StandInMaa, aci: Callable[..., AciValidator]) -> None:
    spki, nonce = _spki(), b.new_nonce()
    token = maa.aci_token(pyatls_runtime_data(spki, nonce)).encode()
    validator = aci([CCE_POLICY])
    assert isinstance(validator, Validator)
    assert isinstance(validator, AppraiserLike)
    assert validator.validate(token, spki, nonce)
    assert not validator.validate(token, spki, b.new_nonce())
    assert not validator.validate(token, _spki(), nonce)
    assert not aci(["package other"]).validate(token, spki, nonce)
    assert not validator.validate(b"not a token", spki, nonce)
    debuggable = maa.aci_token(
        pyatls_runtime_data(spki, nonce), **{"x-ms-sevsnpvm-is-debuggable": True}
    )
    assert not validator.validate(debuggable.encode(), spki, nonce)


def test_policies_and_jkus_can_be_replaced(
    maa: StandInMaa, aci: Callable[..., AciValidator]
) -> None:
    spki, nonce = _spki(), b.new_nonce()
    token = maa.aci_token(pyatls_runtime_data(spki, nonce)).encode()
    validator = aci(["package other"])
    assert validator.policies == ["package other"]
    assert not validator.validate(token, spki, nonce)
    validator.policies = [CCE_POLICY]
    assert validator.policies == [CCE_POLICY]
    assert validator.policy.options["cce_policies"] == [CCE_POLICY]
    assert validator.validate(token, spki, nonce)
    with StandInMaa() as other:
        validator.jkus = [f"{other.url}/certs"]
        assert validator.jkus == [f"{other.url}/certs"]
        assert not validator.validate(token, spki, nonce)
    assert validator.policies == [CCE_POLICY]


def test_defaults_are_pyatls_s_with_a_warning() -> None:
    with pytest.warns(SecurityWarning):
        validator = AciValidator()
    assert validator.jkus == sorted(PUBLIC_JKUS)
    assert all(j.startswith("https://shared") for j in validator.jkus)
    assert validator.policies is None
    assert validator.policy.allow_any_workload
    assert validator.spec.sni_form == "base64-line"


def test_policies_pin_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SecurityWarning)
        validator = AciValidator(policies=[CCE_POLICY])
    assert not validator.policy.allow_any_workload
    assert validator.policy.options["cce_policies"] == [CCE_POLICY]
    assert AciValidator([CCE_POLICY], settings={"wire": "atls"}).spec.sni_form == "atls-label"


def test_cvm_validator_validates_nothing() -> None:
    with pytest.raises(NotImplementedError):
        CvmValidator().validate(b"", b"", b"")

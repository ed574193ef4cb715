"""``ATLSContext([validators])``: pyatls's list, tried in order, on atls's TLS context."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable

import pytest
from atls_pyatls import ATLSContext, CvmValidator, HTTPAConnection, Validator, ValidatorList
from atls_pyatls.azure import AciValidator
from atls_pyatls.context import CERTIFICATE_MEDIA_TYPE
from atls_pyatls.testing import PyatlsStyleServer, aci_validator_for, pyatls_runtime_data
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ObjectIdentifier

from atls_azure import specs
from atls_azure.aci import AciValidator as AtlsAciValidator
from atls_azure.issuer import certificate_with_token
from atls_azure.testing.maa import StandInMaa
from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.clock import SystemClock
from atls_core.errors import ATLSVerificationError, ConfigurationError, MalformedEvidence
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import select_validator
from atls_core.testing.loopback import SimulatedTEE

ValidatorFactory = Callable[..., AciValidator]

CCE_POLICY = "package policy"
"""The container policy whose hash the stand-in MAA reports as hostdata."""

OTHER_POLICY = "package other"


def _get(context: ATLSContext, server: PyatlsStyleServer) -> AttestationResult:
    connection = HTTPAConnection("127.0.0.1", context, server.port)
    try:
        connection.request("GET", "/index")
        response = connection.getresponse()
        assert response.status == 200
        assert response.data == b'{"path": "/index"}'
    finally:
        connection.close()
    result = connection.attestation_result
    assert result is not None
    return result


def test_one_validator(aci: ValidatorFactory, server: PyatlsStyleServer) -> None:
    validator = aci([CCE_POLICY])
    result = _get(ATLSContext([validator]), server)
    assert result.accepted
    assert result.policy_digest == validator.policy.digest
    assert result.measurements["hostdata"] == hashlib.sha256(CCE_POLICY.encode()).hexdigest()


def test_the_first_validator_that_accepts_decides(
    aci: ValidatorFactory, server: PyatlsStyleServer
) -> None:
    refusing, accepting, also = aci([OTHER_POLICY]), aci([CCE_POLICY]), aci([CCE_POLICY, "x"])
    assert _get(ATLSContext([refusing, accepting]), server).policy_digest == (
        accepting.policy.digest
    )
    assert _get(ATLSContext([also, accepting]), server).policy_digest == also.policy.digest


def test_none_accepts_refused_with_the_first_ones_outcome(
    maa: StandInMaa, aci: ValidatorFactory, server: PyatlsStyleServer
) -> None:
    with StandInMaa() as other:
        untrusting = aci_validator_for(other, [CCE_POLICY])
        refusing = aci([OTHER_POLICY])
        with pytest.raises(ATLSVerificationError) as info:
            _get(ATLSContext([refusing, untrusting]), server)
        assert info.value.check == "azure.hostdata"
        with pytest.raises(ATLSVerificationError) as info:
            _get(ATLSContext([untrusting, refusing]), server)
        assert info.value.check == "jwt.iss"
        assert server.https.received == 0
        # An error from one validator does not stop the next from accepting.
        assert _get(ATLSContext([untrusting, aci([CCE_POLICY])]), server).accepted
    assert server.https.requests == ["/index"]


def test_each_connection_has_its_own_nonce(
    aci: ValidatorFactory, server: PyatlsStyleServer
) -> None:
    context = ATLSContext([aci([CCE_POLICY])])
    nonces = {_get(context, server).binding.nonce for _ in range(3)}
    assert len(nonces) == 3
    assert len(set(server.server_names)) == 3


def test_atls_validators_may_be_listed(maa: StandInMaa, server: PyatlsStyleServer) -> None:
    selected = select_validator(
        "azure.aci",
        settings=maa.settings(wire="pyatls"),
        policy=Policy(options={"cce_policies": [CCE_POLICY]}),
        allow_insecure=True,
    )
    atls_shim = AtlsAciValidator(
        [CCE_POLICY],
        [f"{maa.url}/certs"],
        settings={"allow_http_loopback": True, "wire": "pyatls"},
        allow_insecure=True,
    )
    assert _get(ATLSContext([selected, atls_shim]), server).policy_digest == (
        selected.policy.digest
    )


def test_validators_must_send_the_nonce_the_same_way(aci: ValidatorFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSContext([aci([CCE_POLICY]), aci([CCE_POLICY], wire="atls")])
    assert info.value.check == "pyatls.validators"
    assert "sni_form" in str(info.value)


def test_challenge_validators_cannot_be_tried_in_order() -> None:
    tee = SimulatedTEE()
    challenge = tee.selected(challenge=True)
    with pytest.raises(ConfigurationError) as info:
        ATLSContext([challenge, tee.selected(challenge=True)])
    assert info.value.check == "pyatls.validators"
    # One alone is the context's validator, whatever its transport.
    assert ATLSContext([challenge]).validators == [challenge]


class PyatlsStyleValidator(Validator):
    """What a pyatls user may have written: a bool decides."""

    @staticmethod
    def accepts(oid: ObjectIdentifier) -> bool:
        return True

    def validate(self, document: bytes, public_key: bytes, nonce: bytes) -> bool:
        return True


@pytest.mark.parametrize(
    ("validators", "check"),
    [
        ([], "pyatls.validators"),
        ([PyatlsStyleValidator()], "pyatls.validator"),
        ([object()], "pyatls.validator"),
        ("not a list", "pyatls.validators"),
        ([CvmValidator()], "pyatls.validators"),
    ],
    ids=["empty", "pyatls-style", "object", "string", "cvm-only"],
)
def test_refused_lists(validators: object, check: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSContext(validators)  # type: ignore[arg-type]
    assert info.value.check == check


def test_a_fixed_nonce_is_refused(aci: ValidatorFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSContext([aci([CCE_POLICY])], nonce=b"\x00" * 32)
    assert info.value.check == "pyatls.nonce"


def test_validators_in_order(aci: ValidatorFactory) -> None:
    first, second = aci([CCE_POLICY]), aci([OTHER_POLICY])
    context = ATLSContext([first, CvmValidator(), second])
    assert context.validators[0] is first
    assert context.validators[2] is second
    assert isinstance(context, ssl.SSLContext)


def test_appraisal_cannot_be_switched_off(aci: ValidatorFactory) -> None:
    context = ATLSContext([aci([CCE_POLICY])])
    context.verify_mode = ssl.CERT_NONE
    context.check_hostname = False
    assert context.verify_mode == ssl.CERT_REQUIRED


# -- the list's decisions on certificates carrying several extensions -------------


def _certificate(maa: StandInMaa, *, cvm: bool, aci: bool) -> tuple[PeerCertificate, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    nonce = b.new_nonce()
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = maa.aci_token(pyatls_runtime_data(spki, nonce))
    extra = {specs.ACI_OID: token.encode()} if aci else {}
    oid = specs.CVM_OID if cvm else "1.3.6.1.4.1.99999.1"
    der = certificate_with_token(key, "not a token", oid=oid, extra=extra)
    return PeerCertificate.from_der(der), nonce


def _appraise(validators: ValidatorList, certificate: PeerCertificate, nonce: bytes) -> bool:
    evidence = validators.validator.evidence_from_certificate(certificate)
    assert evidence.media_type == CERTIFICATE_MEDIA_TYPE
    binding = b.BindingContext(
        spki_der=certificate.spki_der, nonce=nonce, certificate_der=certificate.der
    )
    return validators.appraise(evidence, binding=binding, clock=SystemClock()).accepted


def test_cvm_validator_is_tried_in_its_turn(maa: StandInMaa, aci: ValidatorFactory) -> None:
    certificate, nonce = _certificate(maa, cvm=True, aci=True)
    assert _appraise(ValidatorList([CvmValidator(), aci([CCE_POLICY])]), certificate, nonce)
    with pytest.raises(ConfigurationError) as info:
        _appraise(ValidatorList([CvmValidator(), aci([OTHER_POLICY])]), certificate, nonce)
    assert info.value.check == "pyatls.cvm"
    # Not carried, not tried: the ACI validator's refusal is the outcome.
    certificate, nonce = _certificate(maa, cvm=False, aci=True)
    assert not _appraise(ValidatorList([CvmValidator(), aci([OTHER_POLICY])]), certificate, nonce)


def test_no_extension_any_validator_reads(maa: StandInMaa, aci: ValidatorFactory) -> None:
    certificate, nonce = _certificate(maa, cvm=False, aci=False)
    with pytest.raises(MalformedEvidence) as info:
        _appraise(ValidatorList([aci([CCE_POLICY]), CvmValidator()]), certificate, nonce)
    assert info.value.check == "evidence.extension"
    assert info.value.expected == sorted({specs.ACI_OID, specs.CVM_OID})


def test_the_list_appraises_only_whole_certificates(maa: StandInMaa, aci: ValidatorFactory) -> None:
    certificate, _nonce = _certificate(maa, cvm=False, aci=True)
    validators = ValidatorList([aci([CCE_POLICY]), aci([OTHER_POLICY])])
    evidence = validators._appraisers[0].validator.evidence_from_certificate(certificate)
    with pytest.raises(ConfigurationError) as info:
        validators.appraise(evidence, binding=b.BindingContext(spki_der=certificate.spki_der))
    assert info.value.check == "pyatls.validators"


def test_atls_core_context_points_list_users_here(aci: ValidatorFactory) -> None:
    from atls_core.tls import ATLSContext as CoreATLSContext

    with pytest.raises(ConfigurationError) as info:
        CoreATLSContext([aci([CCE_POLICY])])  # type: ignore[arg-type]
    assert info.value.check == "tls.context"
    assert "from atls import ATLSContext" in str(info.value)
    assert "pip install atls-pyatls" in str(info.value)

"""gramine.ratls against synthetic RA-TLS certificates (quotes signed by a test DCAP PKI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, Freshness, new_nonce
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import BindingMismatch, ConfigurationError, MalformedEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import (
    DEFAULT_MRENCLAVE,
    DEFAULT_MRSIGNER,
    make_sgx_quote,
    make_tdx_quote,
)
from atls_gramine.issuer import RatlsCredentials, build_ratls_certificate
from atls_gramine.ratls import encode_claims, encode_tcg_evidence
from atls_gramine.specs import LEGACY_OID, MEDIA_TYPE_LEGACY, TCG_OID
from atls_gramine.testing.certs import (
    COLLATERAL_ISSUED,
    COLLATERAL_NEXT_UPDATE,
    INSIDE_WINDOW,
    make_ratls_credentials,
    spki_of,
)
from atls_gramine.validator import GramineRatlsValidator

CLOCK = FixedClock(INSIDE_WINDOW)
PINNED = Policy(
    reference_values={
        "mrenclave": ReferenceValue(accepted=[DEFAULT_MRENCLAVE.hex()]),
        "mrsigner": ReferenceValue(accepted=[DEFAULT_MRSIGNER.hex()]),
    }
)


def appraise(
    validator: GramineRatlsValidator,
    credentials: RatlsCredentials,
    policy: Policy = PINNED,
    **binding: Any,
) -> AttestationResult:
    certificate = PeerCertificate.from_der(credentials.certificate_der)
    context = BindingContext(spki_der=certificate.spki_der, certificate_der=certificate.der)
    if binding:
        context = attrs.evolve(context, **binding)
    return validator.appraise(
        validator.evidence_from_certificate(certificate),
        binding=context,
        clock=CLOCK,
        policy=policy,
    )


def test_good_certificate_is_affirmed(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    result = appraise(validator, make_ratls_credentials(pki))
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.binding.scheme == "gramine-tcg"
    assert result.binding.freshness is Freshness.KEY_ONLY
    assert result.claims["ratls_extension"] == "tcg-dice"
    assert result.tee_type == "sgx"
    assert result.measurements["mrenclave"] == DEFAULT_MRENCLAVE.hex()


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_pubkey_hash_algorithms(
    validator: GramineRatlsValidator, pki: DcapTestPki, algorithm: str
) -> None:
    result = appraise(validator, make_ratls_credentials(pki, pubkey_hash_alg=algorithm))
    assert result.accepted
    assert result.claims["pubkey_hash_alg"] == algorithm


def test_legacy_only_certificate(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    result = appraise(validator, make_ratls_credentials(pki, extensions=("legacy",)))
    assert result.accepted
    assert result.binding.scheme == "gramine-legacy"
    assert result.claims["ratls_extension"] == "legacy"


def test_tcg_claims_binding_another_key_are_rejected(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    other = spki_of(ec.generate_private_key(ec.SECP384R1()))
    credentials = make_ratls_credentials(pki, claims=encode_claims(other))
    with pytest.raises(BindingMismatch) as info:
        appraise(validator, credentials)
    assert info.value.check == "binding.pubkey_hash"


def test_no_fallback_when_tcg_binding_fails(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    """A valid legacy extension does not rescue a TCG extension bound to another key."""
    key = ec.generate_private_key(ec.SECP384R1())
    good = make_ratls_credentials(pki, key=key, extensions=("legacy",))
    bad = make_ratls_credentials(
        pki, key=key, claims=encode_claims(spki_of(ec.generate_private_key(ec.SECP384R1())))
    )
    legacy = PeerCertificate.from_der(good.certificate_der).extension(LEGACY_OID)
    tcg = PeerCertificate.from_der(bad.certificate_der).extension(TCG_OID)
    mixed = build_ratls_certificate(key, legacy_quote=legacy, tcg_evidence=tcg)
    with pytest.raises(BindingMismatch):
        appraise(validator, RatlsCredentials(private_key=key, certificate_der=mixed))


def test_claims_without_pubkey_hash_are_refused(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    """Gramine would accept these (nothing binds the key); atls refuses."""
    credentials = make_ratls_credentials(pki, claims=cbor2.dumps({"nonce": b"1234"}))
    with pytest.raises(MalformedEvidence) as info:
        appraise(validator, credentials)
    assert info.value.check == "gramine.tcg.pubkey_hash"


def test_another_key_and_nonce(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    credentials = make_ratls_credentials(pki)
    with pytest.raises(BindingMismatch):
        appraise(validator, credentials, spki_der=spki_of(ec.generate_private_key(ec.SECP384R1())))
    result = appraise(validator, credentials, nonce=new_nonce())
    assert result.accepted
    assert result.binding.freshness is Freshness.KEY_ONLY
    strict = attrs.evolve(PINNED, require_nonce=True)
    assert [f.check for f in appraise(validator, credentials, strict).failures] == [
        "freshness.nonce"
    ]


def test_debug_enclave_is_the_cores_decision(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    credentials = make_ratls_credentials(pki, debug=True)
    result = appraise(validator, credentials)
    assert result.debug is True
    assert [f.check for f in result.failures] == ["debug"]
    allowed = appraise(validator, credentials, attrs.evolve(PINNED, allow_debug=True))
    assert allowed.accepted
    assert allowed.status is Status.WARNING


def _attributes(flags: int) -> bytes:
    return flags.to_bytes(8, "little") + (3).to_bytes(8, "little")


@pytest.mark.parametrize(
    ("flags", "failed"),
    [
        (0x04, "gramine.attributes.init"),
        (0x01, "gramine.attributes.mode64"),
        (0x15, "gramine.attributes.provision_key"),
        (0x25, "gramine.attributes.einittoken_key"),
    ],
)
def test_gramine_attribute_checks(
    validator: GramineRatlsValidator, pki: DcapTestPki, flags: int, failed: str
) -> None:
    result = appraise(validator, make_ratls_credentials(pki, attributes=_attributes(flags)))
    assert not result.accepted
    assert [f.check for f in result.failures] == [failed]


def test_isv_prod_id_and_min_isv_svn(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    credentials = make_ratls_credentials(pki, isv_prod_id=7, isv_svn=3)

    def checks(**options: Any) -> list[str]:
        policy = attrs.evolve(PINNED, options=options)
        return [f.check for f in appraise(validator, credentials, policy).failures]

    assert checks(isv_prod_id=7, min_isv_svn=3) == []
    assert checks(isv_prod_id=7, min_isv_svn=2) == []
    assert checks(isv_prod_id=8) == ["gramine.isv_prod_id"]
    assert checks(min_isv_svn=4) == ["gramine.isv_svn"]
    with pytest.raises(ConfigurationError):
        checks(min_isv_svn="3")
    with pytest.raises(ConfigurationError):
        checks(isv_prod_id=70000)


def test_measurement_pinning(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    credentials = make_ratls_credentials(pki)
    wrong = Policy(reference_values={"mrsigner": ReferenceValue(accepted=["ab" * 32])})
    assert [f.check for f in appraise(validator, credentials, wrong).failures] == [
        "reference.mrsigner"
    ]


def test_nothing_pinned_is_refused_naming_what_to_pin(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    """A genuine enclave running anything is not enough: the core's pinning rule refuses."""
    result = appraise(validator, make_ratls_credentials(pki), Policy())
    assert not result.accepted
    assert result.status is Status.CONTRAINDICATED
    assert [f.check for f in result.failures] == ["workload.unpinned"]
    failure = result.failures[0]
    assert failure.expected == ["reference_values.mrenclave", "reference_values.mrsigner"]
    assert failure.actual == {
        "mrenclave": DEFAULT_MRENCLAVE.hex(),
        "mrsigner": DEFAULT_MRSIGNER.hex(),
    }
    for text in ("mrenclave", "mrsigner", DEFAULT_MRENCLAVE.hex(), DEFAULT_MRSIGNER.hex()):
        assert text in failure.message
    assert not any(w.startswith("gramine.identity") for w in result.warnings)


def test_warn_only_reference_values_do_not_pin(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    warn_only = Policy(
        reference_values={
            "mrenclave": ReferenceValue(accepted=[DEFAULT_MRENCLAVE.hex()], enforce=False)
        }
    )
    result = appraise(validator, make_ratls_credentials(pki), warn_only)
    assert [f.check for f in result.failures] == ["workload.unpinned"]


def test_allow_any_workload_accepts_with_a_warning(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    result = appraise(validator, make_ratls_credentials(pki), Policy(allow_any_workload=True))
    assert result.accepted
    assert result.status is Status.WARNING
    assert [w.split(":", 1)[0] for w in result.warnings] == ["workload.unpinned"]
    assert result.failures == ()


@pytest.mark.parametrize(
    "pin",
    [{"mrenclave": DEFAULT_MRENCLAVE.hex()}, {"mrsigner": DEFAULT_MRSIGNER.hex()}],
    ids=["mrenclave", "mrsigner"],
)
def test_either_identity_measurement_pins(
    validator: GramineRatlsValidator, pki: DcapTestPki, pin: dict[str, str]
) -> None:
    result = appraise(validator, make_ratls_credentials(pki), Policy(reference_values=pin))
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("status", "accepted_by"),
    [
        ("SWHardeningNeeded", {"SWHardeningNeeded"}),
        ("ConfigurationNeeded", {"ConfigurationNeeded"}),
        ("OutOfDate", {"OutOfDate"}),
    ],
)
def test_tcb_status_is_reported_and_judged_by_policy(
    settings_for: Callable[..., dict[str, Any]],
    pki: DcapTestPki,
    status: str,
    accepted_by: set[str],
) -> None:
    validator = GramineRatlsValidator(settings_for(tcb_status=status))
    credentials = make_ratls_credentials(pki)
    rejected = appraise(validator, credentials)
    assert rejected.tcb.status == status
    assert [f.check for f in rejected.failures] == ["tcb.status"]
    policy = attrs.evolve(PINNED, accepted_tcb_statuses=accepted_by | {"UpToDate"})
    assert appraise(validator, credentials, policy).accepted


def test_quote_signed_by_another_root_is_untrusted(
    validator: GramineRatlsValidator,
) -> None:
    stranger = DcapTestPki.generate(seed="someone else")
    with pytest.raises(UntrustedChain):
        appraise(validator, make_ratls_credentials(stranger))


def test_tdx_quote_in_a_gramine_certificate_is_refused(
    settings_for: Callable[..., dict[str, Any]], pki: DcapTestPki, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    from atls_core.binding import report_data_for

    quote = make_tdx_quote(pki, report_data_for("gramine-legacy", spki_der=spki_of(key)))
    collateral = tmp_path / "tdx.json"
    collateral.write_text(
        pki.collateral_json("tdx", issue_date=COLLATERAL_ISSUED, next_update=COLLATERAL_NEXT_UPDATE)
    )
    settings = {**settings_for(), "collateral_file": str(collateral)}
    validator = GramineRatlsValidator(settings)
    der = build_ratls_certificate(key, legacy_quote=quote, tcg_evidence=None)
    with pytest.raises(MalformedEvidence) as info:
        appraise(validator, RatlsCredentials(private_key=key, certificate_der=der))
    assert info.value.check == "gramine.tee_type"


@pytest.mark.parametrize(
    ("after", "accepted"), [(bytes(64), True), (b"\x01", False)], ids=["zeros", "non-zero"]
)
def test_only_zero_padding_may_follow_the_quote(
    validator: GramineRatlsValidator, pki: DcapTestPki, after: bytes, accepted: bool
) -> None:
    """The bytes after a quote's end are signed by nothing: zeros pass, anything else not."""
    key = ec.generate_private_key(ec.SECP384R1())
    from atls_core.binding import report_data_for

    quote = make_sgx_quote(pki, report_data_for("gramine-legacy", spki_der=spki_of(key)))
    der = build_ratls_certificate(key, legacy_quote=quote + after, tcg_evidence=None)
    credentials = RatlsCredentials(private_key=key, certificate_der=der)
    if accepted:
        assert appraise(validator, credentials).accepted
        return
    with pytest.raises(MalformedEvidence) as info:
        appraise(validator, credentials)
    assert info.value.check == "dcap.quote_format"


def test_expired_collateral_is_stale(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    from atls_core.errors import StaleEvidence

    credentials = make_ratls_credentials(pki)
    certificate = PeerCertificate.from_der(credentials.certificate_der)
    with pytest.raises(StaleEvidence):
        validator.appraise(
            validator.evidence_from_certificate(certificate),
            binding=BindingContext(spki_der=certificate.spki_der),
            clock=FixedClock(INSIDE_WINDOW.replace(month=3)),
            policy=PINNED,
        )


def test_unexpected_media_type(validator: GramineRatlsValidator) -> None:
    evidence = Evidence(
        media_type="application/octet-stream",
        data=b"x",
        source=EvidenceSource(transport=Transport.FILE),
    )
    with pytest.raises(MalformedEvidence) as info:
        validator.appraise(
            evidence, binding=BindingContext.offline_context(), clock=CLOCK, policy=PINNED
        )
    assert info.value.check == "evidence.media_type"


@pytest.mark.parametrize(("tee", "make_quote"), [("TDX", make_tdx_quote), ("SGX", make_sgx_quote)])
def test_a_raw_quote_file_is_named_as_such(
    validator: GramineRatlsValidator,
    pki: DcapTestPki,
    tee: str,
    make_quote: Callable[[DcapTestPki, bytes], bytes],
) -> None:
    """A quote's PCK chain is PEM text: the error says "a TDX quote", not "3 certificates"."""
    quote = make_quote(pki, bytes(64))
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_file(quote, name="quote.bin")
    assert info.value.check == "gramine.file.quote"
    assert f"raw {tee} quote" in info.value.reason
    assert "not a Gramine RA-TLS certificate" in info.value.reason


def test_a_file_without_a_certificate(validator: GramineRatlsValidator) -> None:
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_file(b"hello, not a certificate\n", name="note.txt")
    assert info.value.check == "gramine.file"
    assert "not a certificate" in info.value.reason


def test_evidence_from_file_pem_and_der(validator: GramineRatlsValidator, pki: DcapTestPki) -> None:
    credentials = make_ratls_credentials(pki)
    for data in (credentials.certificate_der, credentials.certificate_pem):
        evidence = validator.evidence_from_file(data, name="cert")
        assert evidence.source.transport is Transport.FILE
        assert evidence.source.oid == TCG_OID
        result = validator.appraise(
            evidence, binding=BindingContext.offline_context(), clock=CLOCK, policy=PINNED
        )
        assert result.accepted
        assert result.binding.freshness is Freshness.UNBOUND
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_file(credentials.certificate_pem * 2, name="two")
    assert info.value.check == "gramine.file"
    assert "found 2" in info.value.reason
    with pytest.raises(MalformedEvidence):
        validator.evidence_from_file(b"\x30\x03\x02\x01", name="junk")


def test_file_evidence_must_be_its_certificates(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    one = validator.evidence_from_file(make_ratls_credentials(pki).certificate_der, name="a")
    two = validator.evidence_from_file(make_ratls_credentials(pki).certificate_der, name="b")
    swapped = attrs.evolve(one, endorsements=two.endorsements)
    with pytest.raises(MalformedEvidence) as info:
        validator.appraise(
            swapped, binding=BindingContext.offline_context(), clock=CLOCK, policy=PINNED
        )
    assert info.value.check == "gramine.certificate"


def test_file_evidence_appraised_against_another_tls_key_is_refused(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    """The certificate's own binding holds; the core's binding to the connection refuses."""
    evidence = validator.evidence_from_file(make_ratls_credentials(pki).certificate_der, name="a")
    other = PeerCertificate.from_der(make_ratls_credentials(pki).certificate_der)
    with pytest.raises(BindingMismatch) as info:
        validator.appraise(
            evidence, binding=BindingContext(spki_der=other.spki_der), clock=CLOCK, policy=PINNED
        )
    assert info.value.check == "binding.pubkey_hash"


def test_legacy_media_type_evidence_from_issuer_shape(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    credentials = make_ratls_credentials(pki)
    certificate = PeerCertificate.from_der(credentials.certificate_der)
    legacy = certificate.extension(LEGACY_OID)
    assert legacy is not None
    evidence = Evidence(
        media_type=MEDIA_TYPE_LEGACY,
        data=legacy,
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=LEGACY_OID),
    )
    result = validator.appraise(
        evidence, binding=BindingContext(spki_der=certificate.spki_der), clock=CLOCK, policy=PINNED
    )
    assert result.accepted
    assert result.binding.scheme == "gramine-legacy"


def test_settings_are_checked(settings_for: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError) as info:
        GramineRatlsValidator({**settings_for(), "bogus": 1})
    assert info.value.check == "config.settings"
    root_only = {k: v for k, v in settings_for().items() if k != "allow_custom_root"}
    with pytest.raises(ConfigurationError):
        GramineRatlsValidator(root_only)


def test_tcg_encoding_helper_round_trip(pki: DcapTestPki) -> None:
    credentials = make_ratls_credentials(pki)
    value = PeerCertificate.from_der(credentials.certificate_der).extension(TCG_OID)
    assert value is not None
    decoded = cbor2.loads(value)
    assert encode_tcg_evidence(*decoded.value) == value

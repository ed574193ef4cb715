"""Recorded real Gramine RA-TLS certificates, verified at their recorded time."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import attrs
import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, Freshness
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError, BindingMismatch, MalformedEvidence, UntrustedChain
from atls_core.evidence import Transport
from atls_core.interfaces import Validator
from atls_core.policy import Policy, ReferenceValue
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult, Status
from atls_core.testing.plugins import run_atls
from atls_gramine.gramine_env import GramineEnvValidator
from atls_gramine.ratls import TcgEvidence, encode_tcg_evidence, parse_tcg_evidence
from atls_gramine.specs import LEGACY_OID, MEDIA_TYPE_LEGACY, MEDIA_TYPE_TCG, TCG_OID
from atls_gramine.validator import GramineRatlsValidator

pytestmark = pytest.mark.vectors

KONVERA = "konvera-gramine-ratls-cert-00606a-outofdate"
CCC = "neg-ccc-gramine-cert-00606a-debug-enclave"
RECORDED_AT = FixedClock.from_unix(1757824605)
KONVERA_MRENCLAVE = "f94ccbe6a504676b2edbefdcb8781a512913f7d8864c6f88592a843d0f9d4a66"
KONVERA_MRSIGNER = "285dd1a739713e723e46f5964310423e21ed08d6d966f890ccb1d4ef9ddec9dd"
KONVERA_ADVISORIES = (
    "INTEL-SA-00828",
    "INTEL-SA-00837",
    "INTEL-SA-00657",
    "INTEL-SA-00767",
    "INTEL-SA-00960",
    "INTEL-SA-00615",
)
CCC_MRENCLAVE = "0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585"
CCC_MRSIGNER = "adc53501f21ced9b998e37a7a18e061c63e00315045fa57a49c18ef0a30d02ca"
KONVERA_PINNED = Policy(reference_values={"mrenclave": KONVERA_MRENCLAVE})
"""The default policy plus a pinned MRENCLAVE (0.2 refuses an unpinned workload)."""
CCC_PINNED = Policy(reference_values={"mrsigner": CCC_MRSIGNER})

Vector = Callable[..., Path]


def _validator(vector: Vector, folder: str) -> GramineRatlsValidator:
    collateral = vector("gramine", folder, "collateral_sgx_00606A_2025-08.json")
    return GramineRatlsValidator({"collateral_file": str(collateral), "cache_dir": "none"})


def _konvera(vector: Vector) -> tuple[GramineRatlsValidator, PeerCertificate]:
    der = vector("gramine", KONVERA, "tlscert.der").read_bytes()
    return _validator(vector, KONVERA), PeerCertificate.from_der(der)


def _online(certificate: PeerCertificate) -> BindingContext:
    return BindingContext(spki_der=certificate.spki_der, certificate_der=certificate.der)


def _appraise_own(
    validator: Validator,
    certificate: PeerCertificate,
    policy: Policy,
    clock: FixedClock = RECORDED_AT,
) -> AttestationResult:
    """Appraise the evidence a recorded certificate carries, bound to that certificate."""
    return validator.appraise(
        validator.evidence_from_certificate(certificate),
        binding=_online(certificate),
        clock=clock,
        policy=policy,
    )


def test_konvera_binds_and_is_rejected_by_default_for_its_tcb(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    evidence = validator.evidence_from_certificate(certificate)
    assert evidence.source.oid == LEGACY_OID
    assert evidence.media_type == MEDIA_TYPE_LEGACY
    assert evidence.data == vector("gramine", KONVERA, "extracted_quote.bin").read_bytes()
    result = validator.appraise(
        evidence, binding=_online(certificate), clock=RECORDED_AT, policy=KONVERA_PINNED
    )
    assert not result.accepted
    assert result.status is Status.CONTRAINDICATED
    assert result.binding.verified
    assert result.binding.scheme == "gramine-legacy"
    assert result.binding.freshness is Freshness.KEY_ONLY
    assert result.tcb.status == "OutOfDate"
    assert set(result.tcb.advisory_ids) == set(KONVERA_ADVISORIES)
    assert result.debug is False
    assert [f.check for f in result.failures] == ["tcb.status", "tcb.advisories"]
    assert result.measurements["mrenclave"] == KONVERA_MRENCLAVE
    assert result.measurements["mrsigner"] == KONVERA_MRSIGNER
    assert result.claims["fmspc"] == "00606A000000"


def test_konvera_accepted_when_outofdate_and_its_advisories_are_allowed(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    policy = Policy(
        accepted_tcb_statuses={"UpToDate", "OutOfDate"},
        accepted_advisory_ids=KONVERA_ADVISORIES,
        reference_values={
            "mrenclave": ReferenceValue(accepted=[KONVERA_MRENCLAVE]),
            "mrsigner": ReferenceValue(accepted=[KONVERA_MRSIGNER.upper()]),
        },
        options={"isv_prod_id": 0, "min_isv_svn": 0},
    )
    result = _appraise_own(validator, certificate, policy)
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING  # an OutOfDate TCB is never "affirming"
    assert result.expires_at is not None
    assert result.expires_at > RECORDED_AT.now()
    assert not any(w.startswith("workload.unpinned") for w in result.warnings)


def test_konvera_unpinned_is_refused_naming_its_measurements(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    policy = Policy(accepted_tcb_statuses={"OutOfDate"}, accepted_advisory_ids=KONVERA_ADVISORIES)
    result = _appraise_own(validator, certificate, policy)
    assert [f.check for f in result.failures] == ["workload.unpinned"]
    assert result.failures[0].actual == {
        "mrenclave": KONVERA_MRENCLAVE,
        "mrsigner": KONVERA_MRSIGNER,
    }
    assert KONVERA_MRENCLAVE in result.failures[0].message
    explored = _appraise_own(validator, certificate, attrs.evolve(policy, allow_any_workload=True))
    assert explored.accepted
    assert explored.status is Status.WARNING
    assert any(w.startswith("workload.unpinned") for w in explored.warnings)


def _konvera_env(vector: Vector, **overrides: str) -> GramineEnvValidator:
    collateral = vector("gramine", KONVERA, "collateral_sgx_00606A_2025-08.json")
    environ = {
        "RA_TLS_MRENCLAVE": KONVERA_MRENCLAVE,
        "RA_TLS_MRSIGNER": "any",
        "RA_TLS_ISV_PROD_ID": "0",
        "RA_TLS_ISV_SVN": "0",
        "RA_TLS_ALLOW_OUTDATED_TCB_INSECURE": "1",
        **overrides,
    }
    return GramineRatlsValidator.from_gramine_env(
        environ,
        settings={"collateral_file": str(collateral), "cache_dir": "none"},
        accepted_advisory_ids=KONVERA_ADVISORIES,
        manager=PluginManager(),
    )


def test_konvera_with_gramine_environment_semantics(vector: Vector) -> None:
    certificate = PeerCertificate.from_der(vector("gramine", KONVERA, "tlscert.der").read_bytes())
    selected = _konvera_env(vector)
    evidence = selected.validator.evidence_from_certificate(certificate)
    binding = _online(certificate)
    result = selected.appraise(evidence, binding=binding, clock=RECORDED_AT)
    assert result.accepted
    assert result.policy_id == "gramine-env"
    strict = _konvera_env(vector, RA_TLS_ALLOW_OUTDATED_TCB_INSECURE="true")  # only "1" counts
    result = strict.appraise(evidence, binding=binding, clock=RECORDED_AT)
    assert [f.check for f in result.failures] == ["tcb.status"]


def test_konvera_gramine_environment_any_and_any(vector: Vector) -> None:
    """Both identities "any": Gramine accepts any enclave; atls too, with a warning."""
    certificate = PeerCertificate.from_der(vector("gramine", KONVERA, "tlscert.der").read_bytes())
    selected = _konvera_env(vector, RA_TLS_MRENCLAVE="any")
    assert selected.policy.allow_any_workload
    evidence = selected.validator.evidence_from_certificate(certificate)
    result = selected.appraise(evidence, binding=_online(certificate), clock=RECORDED_AT)
    assert result.accepted
    assert result.status is Status.WARNING
    assert any(w.startswith("workload.unpinned") for w in result.warnings)


def test_konvera_gramine_environment_tuple_form_is_deprecated(vector: Vector) -> None:
    """0.1's ``validator, policy = from_gramine_env(...)`` still works, with a warning."""
    certificate = PeerCertificate.from_der(vector("gramine", KONVERA, "tlscert.der").read_bytes())
    with pytest.warns(DeprecationWarning, match="unpacking from_gramine_env"):
        validator, policy = _konvera_env(vector)
    assert isinstance(validator, GramineRatlsValidator)
    result = _appraise_own(validator, certificate, policy)
    assert result.accepted


def test_konvera_wrong_mrenclave_is_rejected(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    policy = Policy(
        accepted_tcb_statuses={"OutOfDate"},
        accepted_advisory_ids=KONVERA_ADVISORIES,
        reference_values={"mrenclave": ReferenceValue(accepted=["ee" * 32])},
    )
    result = _appraise_own(validator, certificate, policy)
    assert [f.check for f in result.failures] == ["reference.mrenclave"]


def test_konvera_flipped_quote_byte_is_untrusted(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    evidence = validator.evidence_from_certificate(certificate)
    data = bytearray(evidence.data)
    data[100] ^= 0x01  # inside the signed ISV enclave report (mrenclave)
    with pytest.raises(UntrustedChain) as info:
        validator.appraise(
            attrs.evolve(evidence, data=bytes(data)),
            binding=_online(certificate),
            clock=RECORDED_AT,
            policy=Policy(),
        )
    assert info.value.check


def test_konvera_swapped_spki_is_a_binding_mismatch(vector: Vector) -> None:
    validator, certificate = _konvera(vector)
    other = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(BindingMismatch) as info:
        validator.appraise(
            validator.evidence_from_certificate(certificate),
            binding=BindingContext(spki_der=other),
            clock=RECORDED_AT,
            policy=Policy(),
        )
    assert info.value.check == "binding.report_data"


def test_konvera_file_with_swapped_spki_fails_offline(vector: Vector) -> None:
    """A certificate file whose SPKI was replaced: its own binding breaks, even offline."""
    validator, certificate = _konvera(vector)
    der = certificate.der
    other = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert len(other) == len(certificate.spki_der)
    forged = der.replace(certificate.spki_der, other)
    evidence = validator.evidence_from_file(forged, name="forged.der")
    with pytest.raises(BindingMismatch):
        validator.appraise(
            evidence, binding=BindingContext.offline_context(), clock=RECORDED_AT, policy=Policy()
        )


def test_konvera_pem_file_offline(vector: Vector) -> None:
    validator, _ = _konvera(vector)
    path = vector("gramine", KONVERA, "tlscert.pem")
    evidence = validator.evidence_from_file(path.read_bytes(), name=str(path))
    assert evidence.source.transport is Transport.FILE
    assert evidence.source.location == str(path)
    result = validator.appraise(
        evidence,
        binding=BindingContext.offline_context(),
        clock=RECORDED_AT,
        policy=attrs.evolve(
            KONVERA_PINNED,
            accepted_tcb_statuses={"OutOfDate"},
            accepted_advisory_ids=KONVERA_ADVISORIES,
        ),
    )
    assert result.accepted
    assert result.binding.freshness is Freshness.UNBOUND
    assert any("offline" in w for w in result.warnings)
    assert result.claims["certificate_key_binding"] == "verified"


def test_konvera_after_collateral_expiry_is_stale(vector: Vector) -> None:
    from atls_core.errors import StaleEvidence

    validator, certificate = _konvera(vector)
    with pytest.raises(StaleEvidence):
        _appraise_own(
            validator, certificate, Policy(), clock=FixedClock.from_unix(1757824605 + 30 * 86400)
        )


def _ccc(vector: Vector) -> tuple[GramineRatlsValidator, PeerCertificate]:
    validator = _validator(vector, CCC)
    pem = vector("gramine", CCC, "gramine-cert.pem").read_bytes()
    from atls_gramine.validator import certificate_der_from_file

    return validator, PeerCertificate.from_der(certificate_der_from_file(pem))


def test_ccc_tcg_extension_decides(vector: Vector) -> None:
    validator, certificate = _ccc(vector)
    assert certificate.extension(LEGACY_OID) is not None
    evidence = validator.evidence_from_certificate(certificate)
    assert evidence.source.oid == TCG_OID
    assert evidence.media_type == MEDIA_TYPE_TCG
    tcg = parse_tcg_evidence(evidence.data)
    assert tcg.quote == vector("gramine", CCC, "extracted_quote_tcg_dice_oid.bin").read_bytes()
    assert tcg.pubkey_hash_alg == "sha256"


def test_ccc_debug_enclave_is_rejected_by_default(vector: Vector) -> None:
    validator, certificate = _ccc(vector)
    result = _appraise_own(
        validator,
        certificate,
        attrs.evolve(
            CCC_PINNED, accepted_tcb_statuses={"OutOfDate"}, accepted_advisory_ids=_ccc_advisories()
        ),
    )
    assert not result.accepted
    assert [f.check for f in result.failures] == ["debug"]
    assert result.debug is True
    assert result.binding.verified
    assert result.binding.scheme == "gramine-tcg"
    assert result.claims["ratls_extension"] == "tcg-dice"
    assert result.measurements == {"mrenclave": CCC_MRENCLAVE, "mrsigner": CCC_MRSIGNER}


def test_ccc_debug_enclave_accepted_only_when_policy_allows_debug(vector: Vector) -> None:
    validator, certificate = _ccc(vector)
    policy = attrs.evolve(
        CCC_PINNED,
        accepted_tcb_statuses={"OutOfDate"},
        accepted_advisory_ids=_ccc_advisories(),
        allow_debug=True,
    )
    result = _appraise_own(validator, certificate, policy)
    assert result.accepted
    assert result.status is Status.WARNING
    assert result.debug is True


def _flip_a_pubkey_hash_byte(tcg: TcgEvidence) -> bytes:
    claims = bytearray(tcg.claims)
    claims[-1] ^= 0x01  # last byte of the pubkey-hash
    return encode_tcg_evidence(tcg.quote, bytes(claims))


def _inject_a_claim(tcg: TcgEvidence) -> bytes:
    """Same pubkey-hash, one extra claim: the quote attests other claims bytes."""
    claims = cbor2.loads(tcg.claims)
    claims["injected"] = True
    return encode_tcg_evidence(tcg.quote, cbor2.dumps(claims))


def _flip_a_quote_byte(tcg: TcgEvidence) -> bytes:
    quote = bytearray(tcg.quote)
    quote[120] ^= 0x01
    return encode_tcg_evidence(bytes(quote), tcg.claims)


@pytest.mark.parametrize(
    ("tamper", "error", "check"),
    [
        pytest.param(
            _flip_a_pubkey_hash_byte, BindingMismatch, "binding.pubkey_hash", id="pubkey-hash"
        ),
        pytest.param(
            _inject_a_claim, BindingMismatch, "binding.report_data", id="claims-not-quoted"
        ),
        pytest.param(_flip_a_quote_byte, UntrustedChain, None, id="quote-byte"),
    ],
)
def test_ccc_tampered_tcg_evidence_is_refused(
    vector: Vector,
    tamper: Callable[[TcgEvidence], bytes],
    error: type[ATLSError],
    check: str | None,
) -> None:
    validator, certificate = _ccc(vector)
    evidence = validator.evidence_from_certificate(certificate)
    tampered = attrs.evolve(evidence, data=tamper(parse_tcg_evidence(evidence.data)))
    with pytest.raises(error) as info:
        validator.appraise(
            tampered, binding=_online(certificate), clock=RECORDED_AT, policy=Policy()
        )
    assert check is None or info.value.check == check


def test_ccc_broken_tcg_extension_never_falls_back_to_legacy(vector: Vector) -> None:
    """Gramine's precedence: a bad TCG extension rejects, though the legacy one is fine."""
    validator, certificate = _ccc(vector)
    der = certificate.der
    value = certificate.extension(TCG_OID)
    assert value is not None
    broken = der.replace(value, b"\xd9\xea\x61" + value[3:])  # tag 60001
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(broken))
    with pytest.raises(MalformedEvidence) as info:
        validator.appraise(
            evidence, binding=_online(certificate), clock=RECORDED_AT, policy=Policy()
        )
    assert info.value.check == "gramine.tcg.tag"


def test_ccc_legacy_extension_alone_also_binds(vector: Vector) -> None:
    validator, certificate = _ccc(vector)
    legacy = certificate.extension(LEGACY_OID)
    assert legacy is not None
    assert legacy == vector("gramine", CCC, "extracted_quote_legacy_oid.bin").read_bytes()
    from atls_core.evidence import Evidence, EvidenceSource

    evidence = Evidence(
        media_type=MEDIA_TYPE_LEGACY,
        data=legacy,
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=LEGACY_OID),
    )
    result = validator.appraise(
        evidence, binding=_online(certificate), clock=RECORDED_AT, policy=Policy(allow_debug=True)
    )
    assert result.binding.verified
    assert result.binding.scheme == "gramine-legacy"


def _ccc_advisories() -> tuple[str, ...]:
    return (
        "INTEL-SA-00586",
        "INTEL-SA-00614",
        "INTEL-SA-00615",
        "INTEL-SA-00657",
        "INTEL-SA-00730",
        "INTEL-SA-00738",
        "INTEL-SA-00767",
        "INTEL-SA-00828",
        "INTEL-SA-00837",
        "INTEL-SA-00960",
    )


def _cli(
    vector: Vector, *extra: str, evidence: Path | None = None
) -> subprocess.CompletedProcess[str]:
    collateral = vector("gramine", KONVERA, "collateral_sgx_00606A_2025-08.json")
    return run_atls(
        "verify-evidence",
        "--validator",
        "gramine.ratls",
        "--collateral",
        collateral,
        "--at",
        "1757824605",
        *extra,
        evidence or vector("gramine", KONVERA, "tlscert.pem"),
    )


def test_verify_evidence_command_line(vector: Vector, tmp_path: Path) -> None:
    """`atls verify-evidence --validator gramine.ratls --collateral C.json --at T cert.pem`."""
    rejected = _cli(vector)
    assert rejected.returncode != 0
    assert "tcb.status" in rejected.stderr
    assert "workload.unpinned: policy pins no workload identity" in rejected.stdout
    assert f'mrenclave = "{KONVERA_MRENCLAVE}"' in rejected.stdout
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'accepted_tcb_statuses = ["UpToDate", "OutOfDate"]\n'
        f"accepted_advisory_ids = {list(KONVERA_ADVISORIES)!r}\n"
        "min_isv_svn = 0\n"
        f'[reference_values]\nmrenclave = "{KONVERA_MRENCLAVE}"\n'
    )
    accepted = _cli(vector, "--policy", str(policy), "--json")
    assert accepted.returncode == 0, accepted.stderr
    result = json.loads(accepted.stdout)
    assert result["accepted"] is True
    assert result["binding"]["freshness"] == "unbound"
    assert result["measurements"]["mrenclave"] == KONVERA_MRENCLAVE


def test_verify_evidence_names_a_raw_tdx_quote(vector: Vector) -> None:
    """A TDX quote file is not "0 or 3 PEM certificates": the error says what it is."""
    refused = _cli(vector, evidence=vector("tdx", "dcap-sample", "quote.bin"))
    assert refused.returncode != 0
    assert "gramine.file.quote" in refused.stderr
    assert "raw TDX quote (version 4), not a Gramine RA-TLS certificate" in refused.stderr

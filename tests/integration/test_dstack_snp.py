"""dstack on AMD SEV-SNP, end to end: ``tdx.dstack`` hands the report to atls-snp's
``snp.report`` through the registry and binds the application through HOST_DATA.

The recorded dstack capture (a real Milan guest) is appraised offline at its
recorded time with its recorded certificates (``snp_kds = never``); synthetic
guests (atls-snp's synthetic AMD PKI, dstack's ``.8`` encoders) are appraised
over live handshakes on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, Freshness
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import ATLSVerificationError, MalformedEvidence, UntrustedChain
from atls_core.evidence import Evidence
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult, Status
from atls_core.selection import SelectedValidator, select_validator
from atls_core.testing.loopback import HTTPSServer, attested_get, tls_server_context
from atls_core.testing.plugins import heavy_modules_loaded_by
from atls_core.testing.vectors import Vector
from atls_core.tls import ATLSContext
from atls_snp import specs as snp_specs
from atls_snp.roots import Product
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.configfs import certificate_table
from atls_tdx import specs as tdx_specs
from atls_tdx.dstack_attestation import (
    DstackAttestation,
    SevSnpPlatform,
    decode_attestation,
)
from atls_tdx.dstack_snp import SNP_REPORT_MEDIA_TYPE
from atls_tdx.oids import DSTACK_ATTESTATION
from atls_tdx.testing.dstack import (
    encode_attestation,
    mr_config_document,
    octet_string,
    ratls_report_data,
    self_signed_certificate,
    snp_attestation_certificate,
    spki_of,
)

ROOT = Path(__file__).resolve().parents[2]
RECORDED = "snp/dstack-milan-v3-vcek"
RECORDED_AT = dt.datetime.fromtimestamp(1786113623, dt.UTC)
"""The MANIFEST's verification time (VCEK valid 2026-06-17 .. 2033-06-17)."""
RECORDED_COMPOSE_HASH = "86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23"
RECORDED_APP_ID = "86e59625be93207bc2351c4d1bba20037cec8e16"
RECORDED_HOST_DATA = "783f0057820acb99249af56cc3b07b4e8d80f65183167cba9cf437bb680f742f"
RECORDED_MEASUREMENT = (
    "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599"
    "847ff250dbffcd07e1ba639771d6f05d"
)
RECORDED_PINNED = Policy(options={"allowed_compose_hashes": [RECORDED_COMPOSE_HASH]})


# --- the two plugins stay apart ------------------------------------------------------------


def test_atls_tdx_never_imports_atls_snp() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+atls_snp\b|import_module\(\s*['\"]atls_snp", re.M)
    folder = ROOT / "plugins" / "atls-tdx"
    files = sorted((folder / "src").rglob("*.py")) + sorted((folder / "tests").rglob("*.py"))
    assert len(files) > 10
    offenders = [str(f.relative_to(ROOT)) for f in files if pattern.search(f.read_text())]
    assert offenders == []


def test_appraising_dstack_snp_code_paths_import_no_atls_snp() -> None:
    code = "import atls_tdx.plugin, atls_tdx.dstack, atls_tdx.dstack_snp, atls_tdx.dstack_evidence"
    assert heavy_modules_loaded_by(code, ["atls_snp"]) == []


def test_the_names_tdx_dstack_passes_on_are_atls_snps() -> None:
    assert SNP_REPORT_MEDIA_TYPE == snp_specs.SNP_REPORT_MEDIA_TYPE
    assert tdx_specs.DSTACK_SNP_MEASUREMENTS == snp_specs.MEASUREMENTS
    assert tdx_specs.DSTACK_SNP_POLICY_OPTIONS == snp_specs.POLICY_OPTIONS
    forwarded = tuple(n.removeprefix("snp_") for n in tdx_specs.DSTACK_SNP_SETTINGS)
    assert forwarded == snp_specs.SETTINGS
    assert (
        tuple(n.removeprefix("snp_") for n in tdx_specs.DSTACK_SNP_TEST_SETTINGS)
        == snp_specs.TEST_SETTINGS
    )


# --- the recorded dstack SEV-SNP attestation ------------------------------------------------


def _recorded_settings(vectors: Vector) -> dict[str, Any]:
    return {
        "snp_kds": "never",
        "snp_ark": str(vectors("snp/amd-roots/milan/ark.pem")),
        "snp_ask": str(vectors(f"{RECORDED}/ask.pem")),
        "snp_vcek": str(vectors(f"{RECORDED}/vcek.pem")),
    }


def _select(
    settings: Mapping[str, Any],
    policy: Policy,
    *,
    manager: PluginManager | None = None,
    allow_insecure: bool = False,
) -> SelectedValidator:
    return select_validator(
        "tdx.dstack",
        settings=dict(settings),
        policy=policy,
        manager=manager or PluginManager(),
        allow_insecure=allow_insecure,
    )


def _recorded_evidence(selected: SelectedValidator, blob: bytes, how: str) -> Evidence:
    """From the ``.8`` blob as a file, or from a certificate built around it."""
    if how == "file":
        return selected.validator.evidence_from_file(blob, name="attestation.bin")
    key = ec.generate_private_key(ec.SECP384R1())
    der = self_signed_certificate(key, [(DSTACK_ATTESTATION, octet_string(blob))])
    return selected.validator.evidence_from_certificate(PeerCertificate.from_der(der))


def _appraise_recorded(
    vectors: Vector,
    policy: Policy = RECORDED_PINNED,
    *,
    how: str = "file",
    blob: bytes | None = None,
    manager: PluginManager | None = None,
) -> AttestationResult:
    selected = _select(_recorded_settings(vectors), policy, manager=manager)
    data = blob if blob is not None else vectors(f"{RECORDED}/attestation.bin").read_bytes()
    return selected.appraise(
        _recorded_evidence(selected, data, how),
        binding=BindingContext.offline_context(),
        clock=FixedClock(RECORDED_AT),
    )


@pytest.mark.vectors
@pytest.mark.parametrize("how", ["file", "certificate"])
@pytest.mark.parametrize(
    "policy",
    [
        RECORDED_PINNED,
        Policy(reference_values={"compose_hash": RECORDED_COMPOSE_HASH}),
        Policy(reference_values={"host_data": RECORDED_HOST_DATA}),
    ],
    ids=["allowed_compose_hashes", "compose_hash", "host_data"],
)
def test_recorded_attestation_pinned_by_its_application(
    vectors: Vector, how: str, policy: Policy
) -> None:
    result = _appraise_recorded(vectors, policy, how=how)
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING
    assert result.verifier.validator == "tdx.dstack"
    assert result.tee_type == "sev-snp"
    assert result.binding.freshness is Freshness.UNBOUND  # offline: nothing to bind to
    assert result.debug is False
    measurements = result.measurements
    assert measurements["compose_hash"] == RECORDED_COMPOSE_HASH
    assert measurements["app_id"] == RECORDED_APP_ID
    assert measurements["instance_id"] == "d378c00e65112c4235bfeb46c6a0f98fd02145a3"
    assert measurements["host_data"] == RECORDED_HOST_DATA
    assert measurements["measurement"] == RECORDED_MEASUREMENT
    assert "os_image_hash" not in measurements  # the VM config is signed by nothing on SNP
    claims = result.claims
    assert claims["handed_over_to"][0].startswith("snp.report (atls-snp ")
    assert claims["product"] == "Milan"
    assert claims["certificates"]["ark"]["pinned"] is True
    assert json.loads(claims["mr_config"])["compose_hash"] == RECORDED_COMPOSE_HASH
    assert json.loads(claims["key_provider"])["name"] == "kms"
    assert bytes.fromhex(claims["report_data"]).rstrip(b"\0") == b"attest-test-fixture-2026"
    checks = {w.split(":")[0] for w in result.warnings}
    assert checks == {"binding.offline", "tcb", "snp.crl", "dstack.boot_chain"}


@pytest.mark.vectors
def test_recorded_attestation_unpinned_is_refused(vectors: Vector) -> None:
    result = _appraise_recorded(vectors, Policy())
    assert not result.accepted
    [failure] = [f for f in result.failures if f.enforced]
    assert failure.check == "workload.unpinned"
    assert failure.actual == {
        "compose_hash": RECORDED_COMPOSE_HASH,
        "host_data": RECORDED_HOST_DATA,
    }


@pytest.mark.vectors
def test_recorded_attestation_app_id_alone_does_not_pin(vectors: Vector) -> None:
    # The host chooses the app id: it is checked but names no application.
    result = _appraise_recorded(vectors, Policy(options={"allowed_app_ids": [RECORDED_APP_ID]}))
    assert [f.check for f in result.failures if f.enforced] == ["workload.unpinned"]


@pytest.mark.vectors
def test_recorded_attestation_for_another_application_is_refused(vectors: Vector) -> None:
    result = _appraise_recorded(vectors, Policy(options={"allowed_compose_hashes": ["00" * 32]}))
    assert [f.check for f in result.failures if f.enforced] == ["dstack.compose_hash"]


@pytest.mark.vectors
def test_recorded_launch_measurement_pin_clears_the_boot_chain_warning(vectors: Vector) -> None:
    policy = attrs.evolve(RECORDED_PINNED, reference_values={"measurement": RECORDED_MEASUREMENT})
    result = _appraise_recorded(vectors, policy)
    assert result.accepted
    assert not any(w.startswith("dstack.boot_chain") for w in result.warnings)


@pytest.mark.vectors
@pytest.mark.parametrize(("snp_spl", "status"), [(23, "UpToDate"), (24, "OutOfDate")])
def test_recorded_attestation_under_atls_snps_tcb_options(
    vectors: Vector, snp_spl: int, status: str
) -> None:
    # The host reports SNP SPL 23 (it runs 24): the option reaches snp.report by its name.
    minimum = {"Milan": {"bootloader": 4, "tee": 0, "snp": snp_spl, "microcode": 213}}
    policy = attrs.evolve(RECORDED_PINNED, options={**RECORDED_PINNED.options, "min_tcb": minimum})
    result = _appraise_recorded(vectors, policy)
    assert result.tcb.status == status
    assert result.accepted is (status == "UpToDate")


def _recorded_attestation(vectors: Vector) -> DstackAttestation:
    return decode_attestation(vectors(f"{RECORDED}/attestation.bin").read_bytes())


@pytest.mark.vectors
def test_recorded_attestation_with_a_tampered_report_is_refused(vectors: Vector) -> None:
    attestation = _recorded_attestation(vectors)
    assert isinstance(attestation.platform, SevSnpPlatform)
    report = bytearray(attestation.platform.report)
    report[0x90] ^= 1  # MEASUREMENT
    tampered = attrs.evolve(
        attestation, platform=attrs.evolve(attestation.platform, report=bytes(report))
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise_recorded(vectors, blob=encode_attestation(tampered))
    assert info.value.check == "snp.signature"


@pytest.mark.vectors
def test_recorded_attestation_with_another_mr_config_is_refused(vectors: Vector) -> None:
    attestation = _recorded_attestation(vectors)
    assert isinstance(attestation.platform, SevSnpPlatform)
    other = attestation.platform.mr_config.replace(RECORDED_COMPOSE_HASH, "00" * 32)
    swapped = attrs.evolve(
        attestation, platform=attrs.evolve(attestation.platform, mr_config=other)
    )
    with pytest.raises(UntrustedChain) as info:
        _appraise_recorded(
            vectors,
            Policy(options={"allowed_compose_hashes": ["00" * 32]}),
            blob=encode_attestation(swapped),
        )
    assert info.value.check == "dstack.host_data"


@pytest.fixture(params=["manager", "environment"])
def without_snp(request: pytest.FixtureRequest) -> PluginManager:
    """Plugins without atls-snp: disabled by the application, or by the user's environment."""
    if request.param == "manager":
        return PluginManager(disabled={"snp"})
    return PluginManager(environ={"ATLS_DISABLE_PLUGINS": "snp"})


@pytest.mark.vectors
def test_recorded_attestation_without_atls_snp(vectors: Vector, without_snp: PluginManager) -> None:
    selected = _select(_recorded_settings(vectors), RECORDED_PINNED, manager=without_snp)
    blob = vectors(f"{RECORDED}/attestation.bin").read_bytes()
    with pytest.raises(MalformedEvidence) as info:
        selected.appraise(
            _recorded_evidence(selected, blob, "file"),
            binding=BindingContext.offline_context(),
            clock=FixedClock(RECORDED_AT),
        )
    assert info.value.check == "dstack.platform_plugin_missing"
    assert "atls-snp" in info.value.reason


# --- synthetic dstack SEV-SNP guests over live handshakes -------------------------------------


COMPOSE_HASH = "c0" * 32
APP_ID = "a1" * 20
MR_CONFIG = mr_config_document(
    app_id=APP_ID, compose_hash=COMPOSE_HASH, instance_id="1d" * 20, key_provider_id="3f" * 32
)
PINNED = Policy(options={"allowed_compose_hashes": [COMPOSE_HASH]})


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSnp:
    return SyntheticSnp(tmp_path_factory.mktemp("dstack-snp"), product=Product.MILAN)


def _dstack_snp_server(
    guest: SyntheticSnp,
    *,
    wire_version: int = 0,
    table: bool = False,
    tamper: bool = False,
    report_data: bytes | None = None,
) -> HTTPSServer:
    """A dstack RA-TLS server on SEV-SNP: its certificate's only evidence is ``.8``."""
    key = ec.generate_private_key(ec.SECP256R1())
    vcek, ask, _ark = guest.chain()
    # Upstream carries either the ASK and the VCEK, or the host's certificate table.
    chain = (certificate_table([("ask", ask), ("vcek", vcek)]),) if table else (ask, vcek)
    der = snp_attestation_certificate(
        key,
        lambda data, host_data: guest.report(data, host_data=host_data),
        mr_config=MR_CONFIG,
        cert_chain=chain,
        report_data=report_data,
        wire_version=wire_version,
        tamper=tamper,
    )
    return HTTPSServer(tls_server_context(key, der))


def _client(
    guest: SyntheticSnp, policy: Policy = PINNED, *, manager: PluginManager | None = None
) -> ssl.SSLContext:
    settings = {"snp_test_ark": str(guest.ark_file), "snp_kds": "never"}
    return ATLSContext.for_validator(
        _select(settings, policy, manager=manager, allow_insecure=True)
    )


@pytest.mark.parametrize("table", [False, True], ids=["ask-vcek", "certificate-table"])
@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_live_dstack_snp_pinned_by_application(guest: SyntheticSnp, wire: int, table: bool) -> None:
    with _dstack_snp_server(guest, wire_version=wire, table=table) as server:
        result, data = attested_get(_client(guest), server.port)
    assert b'"/hello"' in data
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING  # a synthetic AMD root: never affirming
    assert result.tee_type == "sev-snp"
    assert result.binding.scheme == "dstack-ratls-cert"
    assert result.binding.verified
    assert result.binding.freshness is Freshness.KEY_ONLY
    assert result.measurements["compose_hash"] == COMPOSE_HASH
    assert result.measurements["app_id"] == APP_ID
    assert result.measurements["measurement"] == DEFAULT_MEASUREMENT.hex()
    # The certificates came from the attestation (nothing configured but the test root).
    assert result.claims["certificates"]["vek"]["source"] == "evidence"
    assert result.claims["certificates"]["intermediate"]["source"] == "evidence"
    checks = {w.split(":")[0] for w in result.warnings}
    assert {"snp.test_root", "insecure.test_knob"} <= checks
    assert "workload.unpinned" not in checks


def test_live_dstack_snp_unpinned_is_refused(guest: SyntheticSnp) -> None:
    with _dstack_snp_server(guest) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_client(guest, Policy()), server.port)
        assert server.requests == []
    assert info.value.check == "workload.unpinned"


def test_live_dstack_snp_tampered_report_is_refused(guest: SyntheticSnp) -> None:
    with _dstack_snp_server(guest, tamper=True) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_client(guest), server.port)
        assert server.requests == []
    assert info.value.check == "snp.signature"


def test_live_dstack_snp_for_another_key_is_refused(guest: SyntheticSnp) -> None:
    other = ratls_report_data(spki_of(ec.generate_private_key(ec.SECP256R1())))
    with _dstack_snp_server(guest, report_data=other) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_client(guest), server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"


def test_live_dstack_snp_without_atls_snp(guest: SyntheticSnp, without_snp: PluginManager) -> None:
    with _dstack_snp_server(guest) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_client(guest, manager=without_snp), server.port)
        assert server.requests == []
    assert info.value.check == "dstack.platform_plugin_missing"
    assert "atls-snp" in str(info.value)


def test_a_synthetic_amd_root_needs_the_tests_only_gate(guest: SyntheticSnp) -> None:
    from atls_core.errors import ConfigurationError

    settings = {"snp_test_ark": str(guest.ark_file), "snp_kds": "never"}
    with pytest.raises(ConfigurationError) as info:
        _select(settings, PINNED)
    assert info.value.check == "config.test_settings"
    # Without it, the synthetic chain leads to no pinned ARK: refused by snp.report.
    with _dstack_snp_server(guest) as server:
        with pytest.raises(ATLSVerificationError) as refused:
            attested_get(
                ATLSContext.for_validator(_select({"snp_kds": "never"}, PINNED)), server.port
            )
        assert server.requests == []
    assert refused.value.check.startswith("snp.chain")

"""tdx.dstack on AMD SEV-SNP: the hand-over to ``snp.report`` and the MrConfig binding.

atls-snp is neither imported nor needed here: a stand-in ``snp`` plugin defined
in this file registers ``snp.report`` (media type, settings and measurement
names as atls-snp's), records what it is handed and "verifies" a report by a
SHA-384 over its signed part, so that tampering is refused as by the real one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import types
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import (
    BindingMismatch,
    ConfigurationError,
    MalformedEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult
from atls_core.selection import SelectedValidator, select_validator
from atls_core.testing.plugins import manager_with, plugin_module
from atls_core.testing.vectors import Vector
from atls_tdx.dstack import DstackValidator, compose_hash
from atls_tdx.dstack_attestation import (
    decode_attestation,
)
from atls_tdx.dstack_evidence import evidence_from_attestation
from atls_tdx.dstack_snp import (
    MR_CONFIG_DOMAIN,
    certificate_blobs,
    mr_config_host_data,
    parse_mr_config,
)
from atls_tdx.oids import DSTACK_APP_ID
from atls_tdx.specs import (
    DSTACK_SNP_MEASUREMENTS,
    DSTACK_SNP_MEDIA_TYPE,
    DSTACK_SNP_POLICY_OPTIONS,
    DSTACK_SNP_SETTINGS,
    DSTACK_SPEC,
)
from atls_tdx.testing.dstack import (
    attestation_certificate,
    dstack_event_log,
    mr_config_document,
    octet_string,
    ratls_report_data,
    snp_attestation_certificate,
    spki_of,
)

SNP_REPORT_MEDIA_TYPE = "application/vnd.atls.snp-report"
NOW = dt.datetime(2026, 8, 7, 12, 0, tzinfo=dt.UTC)
COMPOSE_HASH = hashlib.sha256(b"synthetic app-compose.json").digest()
APP_ID = bytes.fromhex("11" * 20)
MEASUREMENT = bytes.fromhex("5e" * 48)
MR_CONFIG = mr_config_document(
    app_id=APP_ID.hex(),
    compose_hash=COMPOSE_HASH.hex(),
    instance_id="22" * 20,
    key_provider_id="33" * 32,
)
PINNED = Policy(options={"allowed_compose_hashes": [COMPOSE_HASH.hex()]})
SIGNED = 0x2A0


# --- a stand-in snp plugin ------------------------------------------------------------------

RECEIVED: list[tuple[Evidence, dict[str, Any]]] = []

FAKE_SNP_SPEC = ValidatorSpec(
    id="snp.report",
    media_types=(SNP_REPORT_MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="sev-snp",
    measurements=DSTACK_SNP_MEASUREMENTS,
    workload_identity=("measurement",),
    policy_options=DSTACK_SNP_POLICY_OPTIONS,
    settings=tuple(name.removeprefix("snp_") for name in DSTACK_SNP_SETTINGS),
    test_settings=("test_ark",),
)


class FakeSnpReport(ValidatorBase):
    spec = FAKE_SNP_SPEC

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        RECEIVED.append((evidence, self.settings))
        raw = evidence.data
        if len(raw) != 1184 or raw[SIGNED : SIGNED + 48] != hashlib.sha384(raw[:SIGNED]).digest():
            raise UntrustedChain("the stand-in's signature does not verify", check="snp.signature")
        appraisal.set_tee_type("sev-snp")
        appraisal.set_debug(False)
        appraisal.no_tcb("the stand-in judges no TCB")
        appraisal.measure("measurement", raw[0x90:0xC0])
        appraisal.measure("host_data", raw[0xC0:0xE0])
        return ReportData(value=raw[0x50:0x90])


def _manager(*, with_snp: bool = True) -> PluginManager:
    named: dict[str, str | types.ModuleType] = {"tdx": "atls_tdx.plugin"}
    if with_snp:
        named["snp"] = plugin_module(
            "atls_tdx_test_fake_snp_plugin", (FAKE_SNP_SPEC, FakeSnpReport)
        )
    return manager_with(named=named)


def _report(report_data: bytes, host_data: bytes, *, measurement: bytes = MEASUREMENT) -> bytes:
    raw = bytearray(1184)
    raw[0] = 3
    raw[0x50:0x90] = report_data
    raw[0x90:0xC0] = measurement
    raw[0xC0:0xE0] = host_data
    raw[SIGNED : SIGNED + 48] = hashlib.sha384(bytes(raw[:SIGNED])).digest()
    return bytes(raw)


# --- building dstack SEV-SNP certificates ---------------------------------------------------


@attrs.frozen
class Server:
    key: Any
    certificate: bytes

    @property
    def binding(self) -> b.BindingContext:
        return b.BindingContext(spki_der=spki_of(self.key), certificate_der=self.certificate)


def _server(
    *,
    mr_config: str = MR_CONFIG,
    host_data: bytes | None = None,
    report_data: bytes | None = None,
    stack_report_data: bytes | None = None,
    cert_chain: tuple[bytes, ...] = (),
    extensions: tuple[tuple[str, bytes], ...] = (),
    tamper: bool = False,
    wire_version: int = 0,
) -> Server:
    key = ec.generate_private_key(ec.SECP256R1())
    der = snp_attestation_certificate(
        key,
        _report,
        mr_config=mr_config,
        cert_chain=cert_chain,
        host_data=host_data,
        report_data=report_data,
        stack_report_data=stack_report_data,
        wire_version=wire_version,
        extensions=extensions,
        tamper=tamper,
    )
    return Server(key=key, certificate=der)


def _select(
    policy: Policy = PINNED,
    settings: Mapping[str, Any] | None = None,
    *,
    manager: PluginManager | None = None,
    allow_insecure: bool = False,
) -> SelectedValidator:
    return select_validator(
        "tdx.dstack",
        settings=dict(settings or {"snp_kds": "never"}),
        policy=policy,
        manager=manager or _manager(),
        allow_insecure=allow_insecure,
    )


def _appraise(
    server: Server, selected: SelectedValidator | None = None, **kw: Any
) -> AttestationResult:
    selected = selected or _select(**kw)
    evidence = selected.validator.evidence_from_certificate(
        PeerCertificate.from_der(server.certificate)
    )
    return selected.appraise(evidence, binding=server.binding, clock=FixedClock(NOW))


@pytest.fixture(autouse=True)
def _fresh_record() -> None:
    RECEIVED.clear()


# --- the hand-over -----------------------------------------------------------------------------


@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_the_report_is_handed_to_snp_report_and_the_app_read_from_mr_config(wire: int) -> None:
    server = _server(wire_version=wire)
    result = _appraise(server)
    assert result.accepted, result.to_json()
    assert result.verifier.validator == "tdx.dstack"
    assert result.tee_type == "sev-snp"
    assert result.binding.scheme == "dstack-ratls-cert"
    assert result.binding.verified
    assert result.binding.freshness is b.Freshness.KEY_ONLY
    assert result.measurements["compose_hash"] == COMPOSE_HASH.hex()
    assert result.measurements["app_id"] == APP_ID.hex()
    assert result.measurements["instance_id"] == "22" * 20
    assert result.measurements["host_data"] == mr_config_host_data(MR_CONFIG).hex()
    assert result.claims["mr_config"] == MR_CONFIG
    assert json.loads(result.claims["key_provider"]) == {"name": "kms", "id": "33" * 32}
    assert result.claims["handed_over_to"][0].startswith("snp.report (")
    assert result.claims["attestation_version"] == str(wire)
    assert "os_image_hash" not in result.measurements  # the VM config is signed by nothing
    [(handed, settings)] = RECEIVED
    assert handed.media_type == SNP_REPORT_MEDIA_TYPE
    assert handed.data[0x50:0x90] == ratls_report_data(spki_of(server.key))
    assert handed.endorsements == {}  # the attestation carried no certificates
    assert settings == {"kds": "never"}


def test_only_the_snp_settings_are_passed_on_without_their_prefix(tmp_path: Path) -> None:
    ark = tmp_path / "ark.pem"
    ark.write_text("not read by the stand-in")
    _appraise(
        _server(),
        settings={
            "snp_kds": "never",
            "snp_ark": str(ark),
            "snp_kds_timeout": 3,
            "collateral": "pcs",
            "cache_dir": "none",
        },
    )
    [(_, settings)] = RECEIVED
    assert settings == {"kds": "never", "ark": str(ark), "kds_timeout": 3}


def test_the_certificates_travel_as_the_cert_chain_endorsement() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    der = b"\x30\x03\x02\x01\x01"
    _appraise(_server(cert_chain=(der, pem)))
    [(handed, _)] = RECEIVED
    assert handed.endorsements["cert_chain"] == der + b"\n" + pem


def _table(entries: list[tuple[str, bytes]], *, little_endian: bool) -> bytes:
    """A GHCB certificate table, as a host hands it to the guest."""
    header, payload = bytearray(), bytearray()
    start = 24 * (len(entries) + 1)
    for guid_text, blob in entries:
        guid = uuid.UUID(guid_text)
        header += guid.bytes_le if little_endian else guid.bytes
        header += (start + len(payload)).to_bytes(4, "little") + len(blob).to_bytes(4, "little")
        payload += blob
    return bytes(header + bytes(24) + payload)


@pytest.mark.parametrize("little_endian", [False, True], ids=["guid-bytes", "guid-bytes-le"])
def test_a_host_certificate_table_is_flattened_to_its_certificates(little_endian: bool) -> None:
    vcek, ask, crl = b"\x30\x01V", b"\x30\x02AS", b"\x30\x01C"
    table = _table(
        [
            ("63da758d-e664-4564-adc5-f4b93be8accd", vcek),
            ("92f81bc3-5811-4d3d-97ff-d19f88dc67ea", crl),  # not a certificate: skipped
            ("4ab7b379-bbac-4fe4-a02f-05aef327c782", ask),
        ],
        little_endian=little_endian,
    )
    assert certificate_blobs([table]) == vcek + b"\n" + ask
    with pytest.raises(MalformedEvidence) as info:
        certificate_blobs([table[:30]])  # no terminator
    assert info.value.check == "dstack.cert_chain"


def test_the_hand_over_carries_the_core_test_gate(tmp_path: Path) -> None:
    root = tmp_path / "test-ark.pem"
    root.write_text("a synthetic root")
    settings = {"snp_kds": "never", "snp_test_ark": str(root)}
    with pytest.raises(ConfigurationError) as info:
        _select(settings=settings)
    assert info.value.check == "config.test_settings"
    result = _appraise(_server(), _select(settings=settings, allow_insecure=True))
    assert result.accepted
    assert list(result.claims["test_knobs"]) == ["snp_test_ark"]
    assert any(w.startswith("insecure.test_knob") for w in result.warnings)
    [(_, handed)] = RECEIVED
    assert handed["test_ark"] == str(root)


# --- what binds, and what is refused -------------------------------------------------------------


def test_nothing_pinned_is_refused_naming_the_apps_values() -> None:
    result = _appraise(_server(), policy=Policy())
    assert not result.accepted
    failure = next(f for f in result.failures if f.check == "workload.unpinned")
    assert failure.actual["compose_hash"] == COMPOSE_HASH.hex()
    assert failure.actual["host_data"] == mr_config_host_data(MR_CONFIG).hex()
    assert "reference_values.host_data" in failure.expected


def test_allow_any_workload_accepts_with_a_warning() -> None:
    result = _appraise(_server(), policy=Policy(allow_any_workload=True))
    assert result.accepted
    assert any(w.startswith("workload.unpinned") for w in result.warnings)


@pytest.mark.parametrize(
    "policy",
    [
        Policy(reference_values={"compose_hash": COMPOSE_HASH.hex()}),
        Policy(reference_values={"host_data": mr_config_host_data(MR_CONFIG).hex()}),
        Policy(options={"allowed_compose_hashes": [COMPOSE_HASH.hex()]}),
    ],
    ids=["compose_hash", "host_data", "allowed_compose_hashes"],
)
def test_the_application_pins(policy: Policy) -> None:
    assert _appraise(_server(), policy=policy).accepted


@pytest.mark.parametrize(
    "policy",
    [
        Policy(reference_values={"app_id": APP_ID.hex()}),
        Policy(options={"allowed_app_ids": [APP_ID.hex()]}),
    ],
    ids=["app_id", "allowed_app_ids"],
)
def test_the_app_id_alone_does_not_pin(policy: Policy) -> None:
    # The host chooses the app id (the guest measures the deploy-time one): checked, no pin.
    result = _appraise(_server(), policy=policy)
    assert [f.check for f in result.failures if f.enforced] == ["workload.unpinned"]


def test_the_launch_measurement_alone_does_not_pin() -> None:
    policy = Policy(reference_values={"measurement": MEASUREMENT.hex()})
    result = _appraise(_server(), policy=policy)
    assert [f.check for f in result.failures if f.enforced] == ["workload.unpinned"]


def test_the_boot_chain_warning_names_the_launch_measurement() -> None:
    result = _appraise(_server())
    assert "dstack.boot_chain: the boot chain is not pinned (reference values for measurement)" in (
        result.warnings
    )
    pinned = attrs.evolve(PINNED, reference_values={"measurement": MEASUREMENT.hex()})
    result = _appraise(_server(), policy=pinned)
    assert not any(w.startswith("dstack.boot_chain") for w in result.warnings)


def test_another_application_is_refused() -> None:
    policy = Policy(options={"allowed_compose_hashes": ["00" * 32]})
    result = _appraise(_server(), policy=policy)
    assert [f.check for f in result.failures if f.enforced] == ["dstack.compose_hash"]


def test_an_os_image_allow_list_cannot_be_met_on_sev_snp() -> None:
    # The VM config's os_image_hash is signed by nothing on SEV-SNP: pin `measurement`.
    policy = attrs.evolve(
        PINNED, options={**PINNED.options, "allowed_os_image_hashes": ["aa" * 32]}
    )
    result = _appraise(_server(), policy=policy)
    failure = next(f for f in result.failures if f.enforced)
    assert failure.check == "dstack.os_image_hash"
    assert "measures no os_image_hash" in failure.message


def test_a_document_host_data_does_not_commit_to_is_refused() -> None:
    other = MR_CONFIG.replace(COMPOSE_HASH.hex(), "44" * 32)
    with pytest.raises(UntrustedChain) as info:
        _appraise(_server(mr_config=other, host_data=mr_config_host_data(MR_CONFIG)))
    assert info.value.check == "dstack.host_data"


def test_host_data_hashes_the_documents_exact_bytes() -> None:
    # The same fields written with spaces are another document: upstream hashes the bytes.
    spaced = json.dumps(json.loads(MR_CONFIG), sort_keys=True)
    assert parse_mr_config(spaced).compose_hash == COMPOSE_HASH
    assert mr_config_host_data(spaced) != mr_config_host_data(MR_CONFIG)
    assert (
        mr_config_host_data(MR_CONFIG)
        == hashlib.sha256(MR_CONFIG_DOMAIN + b"\0" + MR_CONFIG.encode()).digest()
    )
    with pytest.raises(UntrustedChain):
        _appraise(_server(mr_config=spaced, host_data=mr_config_host_data(MR_CONFIG)))


def test_a_tampered_report_is_refused_by_snp_report() -> None:
    with pytest.raises(UntrustedChain) as info:
        _appraise(_server(tamper=True))
    assert info.value.check == "snp.signature"


def test_a_report_bound_to_another_key_is_refused() -> None:
    other = ratls_report_data(spki_of(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(BindingMismatch) as info:
        _appraise(_server(report_data=other))
    assert info.value.check == "binding.report_data"


def test_the_stack_report_data_must_be_the_reports() -> None:
    with pytest.raises(MalformedEvidence) as info:
        _appraise(_server(stack_report_data=bytes(64)))
    assert info.value.check == "dstack.report_data"


def test_the_certificate_app_id_must_be_the_documents() -> None:
    extension = ((DSTACK_APP_ID, octet_string(bytes(20))),)
    with pytest.raises(UntrustedChain) as info:
        _appraise(_server(extensions=extension))
    assert info.value.check == "dstack.app_id"
    assert "MrConfig document" in info.value.reason
    assert _appraise(_server(extensions=((DSTACK_APP_ID, octet_string(APP_ID)),))).accepted


def test_without_snp_report_the_error_names_the_plugin_to_install() -> None:
    with pytest.raises(MalformedEvidence) as info:
        _appraise(_server(), manager=_manager(with_snp=False))
    assert info.value.check == "dstack.platform_plugin_missing"
    assert "atls-snp" in info.value.reason


def test_a_disabled_snp_plugin_is_missing_too() -> None:
    named: dict[str, str | types.ModuleType] = {
        "tdx": "atls_tdx.plugin",
        "snp": plugin_module("atls_tdx_test_fake_snp_plugin", (FAKE_SNP_SPEC, FakeSnpReport)),
    }
    manager = manager_with(named=named, environ={"ATLS_DISABLE_PLUGINS": "snp"})
    with pytest.raises(MalformedEvidence) as info:
        _appraise(_server(), manager=manager)
    assert info.value.check == "dstack.platform_plugin_missing"
    assert RECEIVED == []


# --- the MrConfig document -----------------------------------------------------------------------


def _document(**changes: Any) -> str:
    fields = json.loads(MR_CONFIG)
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    "document",
    [
        _document(gpu_policy="x"),
        MR_CONFIG[:-1] + ',"compose_hash":"' + "00" * 32 + '"}',
        _document(compose_hash=...),
        _document(compose_hash="zz" * 32),
        _document(compose_hash="00" * 31),
        _document(app_id="0x" + "11" * 19),
        _document(version=2),
        _document(version=True),
        _document(key_provider="hsm"),
        _document(key_provider=...),
        _document(init_script_hashes=["00" * 32] * 6),
        _document(init_script_hashes=["00" * 31]),
        "[]",
        "{",
    ],
    ids=[
        "unknown-field",
        "duplicate-key",
        "no-compose-hash",
        "not-hex",
        "short-compose-hash",
        "0x-prefix",
        "version-2",
        "version-bool",
        "unknown-key-provider",
        "no-key-provider",
        "too-many-init-scripts",
        "short-init-script-hash",
        "not-an-object",
        "not-json",
    ],
)
def test_a_malformed_mr_config_is_refused(document: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        parse_mr_config(document)
    assert info.value.check == "dstack.mr_config"


def test_optional_fields_may_be_absent_or_null() -> None:
    parsed = parse_mr_config(
        json.dumps(
            {
                "compose_hash": COMPOSE_HASH.hex(),
                "key_provider": "none",
                "app_id": None,
                "gpu_policy_hash": "55" * 32,
                "init_script_hashes": ["aa" * 32],
            }
        )
    )
    assert parsed.app_id is None
    assert parsed.instance_id is None
    assert parsed.gpu_policy_hash == bytes.fromhex("55" * 32)
    assert parsed.init_script_hashes == (bytes.fromhex("aa" * 32),)
    assert json.loads(parsed.key_provider_info()) == {"name": "none", "id": ""}


def test_a_malformed_document_is_refused_before_the_hand_over() -> None:
    with pytest.raises(MalformedEvidence) as info:
        _appraise(_server(mr_config="{}"))
    assert info.value.check == "dstack.mr_config"
    assert RECEIVED == []


# --- the spec, TDX evidence and inspection -----------------------------------------------------


def test_the_spec_declares_the_snp_names_it_accepts() -> None:
    assert DSTACK_SNP_MEDIA_TYPE in DSTACK_SPEC.media_types
    assert set(DSTACK_SNP_MEASUREMENTS) <= set(DSTACK_SPEC.measurements)
    assert "host_data" in DSTACK_SPEC.workload_identity
    assert "measurement" not in DSTACK_SPEC.workload_identity
    assert set(DSTACK_SNP_POLICY_OPTIONS) <= set(DSTACK_SPEC.policy_options)
    assert set(DSTACK_SNP_SETTINGS) <= set(DSTACK_SPEC.settings)
    assert "snp_test_ark" in DSTACK_SPEC.test_settings
    flags = {option.flag: option.setting for option in DSTACK_SPEC.cli_options}
    assert flags["--snp-ark"] == "snp_ark"
    assert flags["--snp-kds"] == "snp_kds"


def test_snp_options_on_tdx_evidence_are_reported_as_not_applying(synthetic: Any) -> None:
    compose = '{"manifest_version":2,"name":"tdx","runner":"docker-compose"}'
    key = ec.generate_private_key(ec.SECP256R1())

    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        made: bytes = synthetic.quote(report_data, rtmr=rtmrs, mr_config_id=mr_config_id)
        return made

    der = attestation_certificate(key, quote, events=dstack_event_log(app_compose=compose))
    validator = DstackValidator(synthetic.settings())
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(der))
    policy = Policy(
        options={"allowed_compose_hashes": [compose_hash(compose).hex()], "max_vmpl": 1}
    )
    result = validator.appraise(
        evidence,
        binding=b.BindingContext(spki_der=spki_of(key), certificate_der=der),
        clock=synthetic.clock,
        policy=policy,
    )
    assert result.accepted, result.to_json()
    assert any(w.startswith("dstack.snp_options") for w in result.warnings)
    assert not any(w.startswith("dstack.snp_options") for w in _appraise(_server()).warnings)


def test_describe_shows_the_report_and_the_document() -> None:
    server = _server()
    validator = DstackValidator({})
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(server.certificate))
    described = validator.describe(evidence)
    assert "SEV-SNP" in described["format"]
    assert described["mr_config"]["compose_hash"] == COMPOSE_HASH.hex()
    assert described["host_data_matches"] is True


@pytest.mark.vectors
def test_recorded_attestation_becomes_sev_snp_evidence(vectors: Vector) -> None:
    folder = "snp/dstack-milan-v3-vcek"
    data = vectors(f"{folder}/attestation.bin").read_bytes()
    evidence = evidence_from_attestation(
        data, source=EvidenceSource(transport=Transport.FILE, location="attestation.bin")
    )
    assert evidence.media_type == DSTACK_SNP_MEDIA_TYPE
    assert evidence.data == vectors(f"{folder}/report.bin").read_bytes()
    assert "cert_chain" not in evidence.endorsements  # this recording carries none
    document = evidence.endorsements["mr_config"].decode()
    # Upstream's binding, checked on the recording: HOST_DATA = SHA-256(domain, 0, document).
    assert mr_config_host_data(document) == evidence.data[0xC0:0xE0]
    parsed = parse_mr_config(document)
    assert parsed.compose_hash.hex() == (
        "86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23"
    )
    assert evidence.endorsements["report_data"] == decode_attestation(data).stack.report_data

"""A container format handing its SEV-SNP report to snp.report (as dstack's validator will).

The container here is a minimal stand-in plugin defined in this file: its
evidence is JSON with the report and a list of PEM certificates (dstack's
``SevSnpPlatform`` carries ``report`` and ``cert_chain`` the same way).  Its
``verify`` builds an :data:`~atls_snp.specs.SNP_REPORT_MEDIA_TYPE` evidence,
calls ``appraisal.hand_over(..., validator="snp.report")`` and returns the
report data snp.report verified.  Nothing from atls-tdx is imported.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import types
from typing import Any

import pytest

from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import BindingContext, Freshness, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError, MalformedEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, Settings, ValidatorBase
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult
from atls_core.testing.facts import unit_spec
from atls_core.testing.plugins import manager_with, plugin_module
from atls_core.testing.vectors import Vector
from atls_snp.report import parse_report
from atls_snp.specs import MEASUREMENTS, SNP_REPORT_MEDIA_TYPE
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.pki import _pem

CONTAINER_MEDIA_TYPE = "application/vnd.test.snp-container+json"
CONTAINER_SPEC = unit_spec(
    "container.snp",
    media_type=CONTAINER_MEDIA_TYPE,
    oids=("1.3.9999.77.1",),
    measurements=MEASUREMENTS,
    workload_identity=("measurement",),
)
SPKI = b"the TLS key"


class ContainerValidator(ValidatorBase):
    spec = CONTAINER_SPEC

    def __init__(self, settings: Settings) -> None:
        self.snp_settings = dict(settings.get("snp", {}))

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        document = json.loads(evidence.data)
        embedded = Evidence(
            media_type=SNP_REPORT_MEDIA_TYPE,
            data=base64.b64decode(document["report"]),
            source=evidence.source,
            endorsements={"cert_chain": "".join(document["cert_chain"]).encode()},
        )
        verified = appraisal.hand_over(embedded, validator="snp.report", settings=self.snp_settings)
        return ReportData(value=verified.value)


def _manager(*, with_snp: bool = True) -> PluginManager:
    named: dict[str, str | types.ModuleType] = {
        "container": plugin_module(
            "atls_snp_test_container_plugin", (CONTAINER_SPEC, ContainerValidator)
        )
    }
    if with_snp:
        named["snp"] = "atls_snp.plugin"
    return manager_with(named=named)


def _container(report: bytes, certificates: list[bytes]) -> Evidence:
    document = {
        "report": base64.b64encode(report).decode(),
        "cert_chain": [
            c.decode() if c.startswith(b"-----") else _pem(c).decode() for c in certificates
        ],
    }
    return Evidence(
        media_type=CONTAINER_MEDIA_TYPE,
        data=json.dumps(document).encode(),
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid="1.3.9999.77.1"),
    )


def _appraise(
    evidence: Evidence,
    settings: dict[str, Any],
    *,
    binding: BindingContext,
    now: dt.datetime,
    policy: Policy,
    manager: PluginManager | None = None,
    test_knobs: tuple[str, ...] = ("snp_test_ark",),
    allow_insecure: bool | None = None,
) -> AttestationResult:
    """``test_knobs``: as when the container's selection passed the core's tests-only gate
    (``allow_insecure`` follows unless given)."""
    return appraise(
        ContainerValidator({"snp": settings}),
        evidence,
        binding=binding,
        clock=FixedClock(now),
        policy=policy,
        manager=manager or _manager(),
        test_knobs=test_knobs,
        allow_insecure=bool(test_knobs) if allow_insecure is None else allow_insecure,
    )


def _appraise_milan(
    milan: SyntheticSnp,
    report: bytes,
    *,
    binding: BindingContext | None = None,
    policy: Policy,
    **options: Any,
) -> AttestationResult:
    """A synthetic Milan report in the container, with its chain and settings (offline unless
    a ``binding`` is given)."""
    return _appraise(
        _container(report, milan.chain()),
        milan.settings(),
        binding=binding or BindingContext.offline_context(),
        now=milan.now,
        policy=policy,
        **options,
    )


def test_hand_over_verifies_the_report_and_returns_its_report_data(milan: SyntheticSnp) -> None:
    nonce = new_nonce()
    report = milan.report(report_data_for("atls-v1", spki_der=SPKI, nonce=nonce))
    result = _appraise_milan(
        milan,
        report,
        binding=BindingContext(spki_der=SPKI, nonce=nonce),
        policy=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
    )
    assert result.accepted, result.to_json()
    assert result.verifier.validator == "container.snp"
    assert result.binding.verified
    assert result.binding.freshness is Freshness.NONCE
    assert result.tee_type == "sev-snp"
    assert result.measurements["measurement"] == DEFAULT_MEASUREMENT.hex()
    assert result.claims["product"] == "Milan"
    assert result.claims["handed_over_to"][0].startswith("snp.report (")
    assert any(w.startswith("snp.test_root") for w in result.warnings)


def test_a_test_root_needs_the_containers_tests_only_gate(milan: SyntheticSnp) -> None:
    # The core's hand-over refuses tests-only settings unless the container's selection
    # allowed insecure test validators.
    with pytest.raises(ConfigurationError) as info:
        _appraise_milan(
            milan,
            milan.report(),
            policy=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
            test_knobs=(),
        )
    assert info.value.check == "config.test_settings"


def test_a_test_root_is_refused_when_the_container_had_no_tests_only_settings(
    milan: SyntheticSnp,
) -> None:
    """``allow_insecure`` lets the hand-over's ``test_ark`` through, but the container's own
    selection used no tests-only setting (no ``test_knobs``): snp.report refuses the root."""
    result = _appraise_milan(
        milan,
        milan.report(),
        policy=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
        test_knobs=(),
        allow_insecure=True,
    )
    assert [f.check for f in result.failures] == ["snp.test_root"]


def test_hand_over_applies_snp_defaults_and_the_core_policy(milan: SyntheticSnp) -> None:
    nonce = new_nonce()
    report_data = report_data_for("atls-v1", spki_der=SPKI, nonce=nonce)
    pinned = Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()})
    binding = BindingContext(spki_der=SPKI, nonce=nonce)
    debug = milan.report(report_data, policy=0x30000 | 1 << 19)
    result = _appraise_milan(milan, debug, binding=binding, policy=pinned)
    assert [f.check for f in result.failures if f.enforced] == ["debug"]
    vmpl = milan.report(report_data, vmpl=1)
    result = _appraise_milan(milan, vmpl, binding=binding, policy=pinned)
    assert [f.check for f in result.failures if f.enforced] == ["snp.vmpl"]


def test_a_tampered_report_is_refused_through_the_hand_over(milan: SyntheticSnp) -> None:
    report = bytearray(milan.report())
    report[0x90] ^= 1
    with pytest.raises(UntrustedChain) as info:
        _appraise_milan(milan, bytes(report), policy=Policy(allow_any_workload=True))
    assert info.value.check == "snp.signature"


def test_without_atls_snp_the_error_says_what_to_install(milan: SyntheticSnp) -> None:
    with pytest.raises(MalformedEvidence) as info:
        _appraise_milan(
            milan,
            milan.report(),
            policy=Policy(allow_any_workload=True),
            manager=_manager(with_snp=False),
        )
    assert info.value.check == "evidence.hand_over"
    assert "'snp'" in info.value.reason


@pytest.mark.vectors
def test_recorded_dstack_sev_snp_report_handed_over(vectors: Vector) -> None:
    folder = "snp/dstack-milan-v3-vcek"
    report = vectors(f"{folder}/report.bin").read_bytes()
    chain = [vectors(f"{folder}/vcek.pem").read_bytes(), vectors(f"{folder}/ask.pem").read_bytes()]
    settings = {"ark": str(vectors("snp/amd-roots/milan/ark.pem")), "kds": "never"}
    result = _appraise(
        _container(report, chain),
        settings,
        binding=BindingContext.offline_context(),
        now=dt.datetime.fromtimestamp(1786113623, dt.UTC),
        policy=Policy(reference_values={"measurement": parse_report(report).measurement.hex()}),
        test_knobs=(),
    )
    assert result.accepted, result.to_json()
    assert result.claims["certificates"]["ark"]["pinned"] is True
    assert bytes.fromhex(result.claims["report_data"]).rstrip(b"\0") == b"attest-test-fixture-2026"

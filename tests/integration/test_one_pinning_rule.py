"""One pinning rule for every validator: a policy that pins nothing is refused, by all of them.

With every distribution installed, the test walks the registry (not a list of
its own) and appraises, for each validator, genuine evidence offline -- the
bytes a user would hand to ``atls verify-evidence``, read by the validator's own
``evidence_from_file`` -- under three policies:

* nothing pinned: refused, and ``workload.unpinned`` is the only enforced failure;
* ``allow_any_workload``: accepted with status ``warning`` (the evidence is good);
* the workload pinned: accepted without the ``workload.unpinned`` warning.

Every validator's evidence comes from its plugin's public test kit, over
loopback stand-ins where the real one is a service; each producer's docstring
says how.  A validator registered without a producer here fails the test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from atls_azure.issuer import aci_runtime_data
from atls_azure.testing.maa import STAND_IN_VM_ID, StandInMaa, held_data_for, new_tls_key
from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.clock import Clock, FixedClock
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import AttestationResult, Status
from atls_core.selection import select_validator
from atls_core.testing.simulated import DEFAULT_MEASUREMENTS, SimulatedHardware, SimulatedIssuer
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRENCLAVE, DEFAULT_MRTD, make_tdx_quote
from atls_gramine.testing.certs import INSIDE_WINDOW, make_ratls_credentials, validator_settings
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_tdx.testing.dstack import dstack_event_log, replay_rtmrs

DCAP_ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DCAP_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
DCAP_NEXT_UPDATE = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
COMPOSE = '{"manifest_version":2,"name":"pinning","runner":"docker-compose"}'

REGISTERED = sorted(spec.id for status in PluginManager().load_all() for spec in status.validators)


@attrs.frozen(kw_only=True)
class Source:
    """One validator's evidence as a file, its settings, when to appraise it, and its pin."""

    settings: Mapping[str, Any]
    data: bytes
    clock: Clock
    pin: Policy
    """A policy that pins this evidence's workload."""


@attrs.frozen
class World:
    """What the producers share: a folder, a synthetic DCAP PKI and the running stand-ins."""

    directory: Path
    pki: DcapTestPki
    maa: StandInMaa
    ita_tdx: StandInIta
    ita_sgx: StandInIta
    snp: SyntheticSnp

    def dcap_settings(self) -> dict[str, Any]:
        return self.pki.file_settings(
            self.directory, "tdx", issue_date=DCAP_ISSUED, next_update=DCAP_NEXT_UPDATE
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ExitStack() as stack:
        ita_sgx = stack.enter_context(StandInIta(api_key="pinning"))
        ita_sgx.tee = "sgx"
        directory = tmp_path_factory.mktemp("pinning")
        yield World(
            directory=directory,
            pki=DcapTestPki.generate(seed="atls one pinning rule"),
            maa=stack.enter_context(StandInMaa()),
            ita_tdx=stack.enter_context(StandInIta(api_key="pinning")),
            ita_sgx=ita_sgx,
            snp=SyntheticSnp(directory),
        )


# -- one producer per validator ------------------------------------------------------------


def _simulated(world: World, *, challenge: bool = False) -> Source:
    """The simulated issuer's signed JSON envelope (with a certificate digest for challenge)."""
    hardware = SimulatedHardware.generate()
    issuer = SimulatedIssuer(hardware.issuer_settings())
    extra = {"certificate_sha256": bytes(32)} if challenge else {}
    evidence = issuer.issue(bytes(64), **extra)
    return Source(
        settings=hardware.validator_settings(),
        data=evidence.data,
        clock=FixedClock(dt.datetime.now(dt.UTC)),
        pin=Policy(reference_values={"image": DEFAULT_MEASUREMENTS["image"]}),
    )


def _simulated_challenge(world: World) -> Source:
    """The simulated envelope as the challenge endpoint answers it (naming a certificate)."""
    return _simulated(world, challenge=True)


def _tdx_dcap(world: World) -> Source:
    """A TDX quote v4 signed under the synthetic DCAP PKI (atls_dcap.testing.quotes)."""
    return Source(
        settings=world.dcap_settings(),
        data=make_tdx_quote(world.pki, bytes(64)),
        clock=FixedClock(DCAP_NOW),
        pin=Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()}),
    )


def _dstack(world: World, pin: Policy) -> Source:
    """A dstack quote document: a synthetic quote whose RTMRs replay a dstack event log."""
    events = dstack_event_log(app_compose=COMPOSE)
    quote = make_tdx_quote(world.pki, bytes(64), rtmr=replay_rtmrs(events))
    return Source(
        settings=world.dcap_settings(),
        data=json.dumps({"quote": quote.hex(), "event_log": json.dumps(events)}).encode(),
        clock=FixedClock(DCAP_NOW),
        pin=pin,
    )


def _tdx_dstack(world: World) -> Source:
    """The dstack quote document, pinned by the ``app_compose`` pinning option (no reference
    value)."""
    return _dstack(world, Policy(options={"app_compose": COMPOSE}))


def _tdx_dstack_challenge(world: World) -> Source:
    """The same dstack quote document, as the guest agent's challenge answer carries it.

    Pinned by the compose hash the event log measures (a reference value).
    """
    compose_hash = hashlib.sha256(COMPOSE.encode()).hexdigest()
    return _dstack(world, Policy(reference_values={"compose_hash": compose_hash}))


def _gramine_ratls(world: World) -> Source:
    """A Gramine RA-TLS certificate (DER) with an SGX quote under the synthetic PKI."""
    return Source(
        settings=validator_settings(world.pki, world.directory / "gramine"),
        data=make_ratls_credentials(world.pki).certificate_der,
        clock=FixedClock(INSIDE_WINDOW),
        pin=Policy(reference_values={"mrenclave": DEFAULT_MRENCLAVE.hex()}),
    )


def _ita(world: World, service: StandInIta, tee: str) -> Source:
    issued = issue_token(service, nonce=new_nonce())
    return Source(
        settings=service.validator_settings(world.directory / f"ita-{tee}-root.pem"),
        data=issued.token.encode(),
        clock=FixedClock(service.clock.now() + dt.timedelta(seconds=1)),
        pin=Policy(reference_values=workload_pin(tee)),
    )


def _ita_tdx(world: World) -> Source:
    """A TDX token signed by the stand-in Intel Trust Authority (loopback)."""
    return _ita(world, world.ita_tdx, "tdx")


def _ita_sgx(world: World) -> Source:
    """An SGX token signed by the stand-in Intel Trust Authority (loopback)."""
    return _ita(world, world.ita_sgx, "sgx")


def _maa(claims: Mapping[str, Any], world: World, pin: Policy) -> Source:
    return Source(
        settings=world.maa.settings(),
        data=world.maa.sign(claims).encode(),
        clock=FixedClock.from_unix(int(claims["iat"]) + 5),
        pin=pin,
    )


def _azure_aci(world: World) -> Source:
    """An ACI token signed by the stand-in MAA (loopback), pinned by its host data."""
    _key, spki = new_tls_key()
    claims = world.maa.aci_claims(aci_runtime_data(spki, new_nonce()))
    hostdata = hashlib.sha256(b"package policy").hexdigest()  # the stand-in's CCE policy
    return _maa(claims, world, Policy(options={"hostdata": [hostdata]}))


def _azure_cvm(world: World) -> Source:
    """A confidential-VM (azurevm) token signed by the stand-in MAA, pinned by its VM id."""
    _key, spki = new_tls_key()
    claims = world.maa.cvm_claims(report_data_for("atls-v1", spki_der=spki, nonce=new_nonce()))
    vmid = uuid.UUID(STAND_IN_VM_ID).hex
    return _maa(claims, world, Policy(reference_values={"vmid": vmid}))


def _azure_sgx(world: World) -> Source:
    """An SGX token signed by the stand-in MAA, the key's held data inside the token."""
    key, _spki = new_tls_key()
    claims = world.maa.sgx_claims(held_data_for(key))
    return _maa(claims, world, Policy(reference_values={"mrenclave": "11" * 32}))


def _azure_tdx(world: World) -> Source:
    """A TDX token signed by the stand-in MAA, the key's runtime data inside the token."""
    key, _spki = new_tls_key()
    claims = world.maa.tdx_claims(held_data_for(key))
    return _maa(claims, world, Policy(reference_values={"mrtd": "33" * 48}))


def _snp_report(world: World) -> Source:
    """A SEV-SNP report and its VCEK chain in atls's DER envelope, under a synthetic AMD root."""
    return Source(
        settings=world.snp.settings(),
        data=world.snp.envelope(),
        clock=FixedClock(world.snp.now),
        pin=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
    )


PRODUCERS: dict[str, Callable[[World], Source]] = {
    "insecure.simulated": _simulated,
    "insecure.simulated-challenge": _simulated_challenge,
    "tdx.dcap": _tdx_dcap,
    "tdx.dstack": _tdx_dstack,
    "tdx.dstack-challenge": _tdx_dstack_challenge,
    "gramine.ratls": _gramine_ratls,
    "ita.tdx": _ita_tdx,
    "ita.sgx": _ita_sgx,
    "azure.aci": _azure_aci,
    "azure.cvm": _azure_cvm,
    "azure.sgx": _azure_sgx,
    "azure.tdx": _azure_tdx,
    "snp.report": _snp_report,
    "snp.report-challenge": _snp_report,  # the challenge answer is the same envelope
}


# -- the tests -------------------------------------------------------------------------------


def test_every_registered_validator_has_a_producer() -> None:
    assert REGISTERED, "no validator is registered"
    assert sorted(PRODUCERS) == REGISTERED, "add (or remove) a producer for each validator"


def _appraise(validator_id: str, source: Source, policy: Policy) -> AttestationResult:
    selected = select_validator(
        validator_id,
        policy=policy,
        settings=source.settings,
        allow_insecure=True,
        manager=PluginManager(),
    )
    evidence = selected.validator.evidence_from_file(source.data, name=f"{validator_id}.evidence")
    return selected.appraise(evidence, binding=BindingContext.offline_context(), clock=source.clock)


def _unpinned_warnings(result: AttestationResult) -> list[str]:
    return [w for w in result.warnings if w.startswith("workload.unpinned")]


@pytest.mark.parametrize("validator_id", REGISTERED)
def test_nothing_pinned_is_refused_by_every_validator(world: World, validator_id: str) -> None:
    produce = PRODUCERS.get(validator_id)
    if produce is None:
        pytest.fail(f"{validator_id}: no producer (see test_every_registered_validator_...)")
    source = produce(world)

    pinned = _appraise(validator_id, source, source.pin)
    assert pinned.accepted, pinned.to_json()
    assert not _unpinned_warnings(pinned), "the producer's pin must pin the workload"

    unpinned = _appraise(validator_id, source, Policy())
    assert not unpinned.accepted
    assert [f.check for f in unpinned.failures if f.enforced] == ["workload.unpinned"]

    explore = _appraise(validator_id, source, Policy(allow_any_workload=True))
    assert explore.accepted, explore.to_json()
    assert explore.status is Status.WARNING
    assert _unpinned_warnings(explore)


@pytest.mark.parametrize(
    ("validator_id", "unset"),
    [("tdx.dcap", "mrowner"), ("tdx.dcap", "mrconfigid"), ("tdx.dstack", "mrconfigid")],
)
def test_an_all_zero_value_pins_nothing(world: World, validator_id: str, unset: str) -> None:
    """A TD without MROWNER or MRCONFIGID shows zeros there, as any TD may: pinning the zeros
    would accept every workload, so they count as no pin (the refusal says why)."""
    source = PRODUCERS[validator_id](world)
    zeros = Policy(reference_values={unset: "00" * 48})
    refused = _appraise(validator_id, source, zeros)
    assert [f.check for f in refused.failures if f.enforced] == ["workload.unpinned"]
    (failure,) = [f for f in refused.failures if f.enforced]
    assert f"reference_values.{unset} accepts all zeros" in failure.message
    assert f'{unset} = "' not in failure.message, "an unset value is not offered as a pin"
    # Beside a real pin, requiring the zeros is a legitimate extra check.
    both = attrs.evolve(
        source.pin,
        reference_values={**source.pin.reference_values, unset: "00" * 48},
    )
    assert _appraise(validator_id, source, both).accepted

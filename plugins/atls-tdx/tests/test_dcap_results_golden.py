"""tdx.dcap results, byte for byte: accepted and refused appraisals against recorded JSON.

The appraisal's hot path is tuned for speed; these cases hold every result field (claim
order included) to what it was, so that no tuning changes what a client is told.  The
synthetic PKI, quotes, key and nonce are seeded, so each case is reproducible; only the
versions and the collateral's location are written as placeholders.

After a deliberate change of results, rewrite the expected file and review its diff::

    python tests/test_dcap_results_golden.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.measurements import SGX_WORKLOAD
from atls_core.policy import Policy
from atls_core.selection import select_validator
from atls_dcap import DcapSettings, DcapVerifier, record_quote
from atls_dcap.report import SGX_MEASUREMENTS
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import (
    DEFAULT_MRENCLAVE,
    DEFAULT_MRSEAM,
    DEFAULT_MRTD,
    make_sgx_quote,
    make_tdx_quote,
)
from atls_tdx.dcap_validator import TdxDcapValidator
from atls_tdx.oids import ATLS_TDX_QUOTE
from atls_tdx.specs import TDX_QUOTE_MEDIA_TYPE

EXPECTED = Path(__file__).with_name("dcap_results_golden.json")
ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NEXT_UPDATE = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
NONCE = bytes(range(32))
PIN = {"mrtd": DEFAULT_MRTD.hex()}


def _spki(seed: int) -> bytes:
    key = ec.derive_private_key(seed, ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


SPKI = _spki(0x61746C73)


class World:
    """The seeded PKI, its collateral files and the settings of a validator using them."""

    def __init__(self, directory: Path) -> None:
        self.pki = DcapTestPki.generate(seed="atls-tdx golden results")
        self.directory = directory
        (directory / "root.der").write_bytes(self.pki.root_ca_der)

    def collateral(self, tee: str = "tdx", **kw: Any) -> str:
        return self.pki.collateral_json(
            tee, **{"issue_date": ISSUED, "next_update": NEXT_UPDATE, **kw}
        )

    def settings(self, name: str = "default", **kw: Any) -> dict[str, Any]:
        path = self.directory / f"collateral-{name}.json"
        path.write_text(self.collateral(**kw))
        return {
            "collateral_file": str(path),
            "root_ca": str(self.directory / "root.der"),
            "allow_custom_root": True,
            "cache_dir": "none",
        }

    def quote(self, nonce: bytes | None = NONCE, **kw: Any) -> bytes:
        data = b.report_data_for("atls-v1", spki_der=SPKI, nonce=nonce or b"")
        return make_tdx_quote(self.pki, data, **kw)


def _appraise(
    world: World,
    *,
    quote_kw: dict[str, Any] | None = None,
    nonce: bytes | None = NONCE,
    context: b.BindingContext | None = None,
    policy: Policy | None = None,
    collateral: dict[str, Any] | None = None,
    quote: bytes | None = None,
) -> dict[str, Any]:
    name = hashlib.sha256(repr(sorted((collateral or {}).items())).encode()).hexdigest()[:12]
    settings = world.settings(name, **(collateral or {}))
    validator = TdxDcapValidator(settings)
    evidence = Evidence(
        media_type=TDX_QUOTE_MEDIA_TYPE,
        data=quote if quote is not None else world.quote(nonce, **(quote_kw or {})),
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ATLS_TDX_QUOTE),
    )
    if context is None:
        context = b.BindingContext(spki_der=SPKI, nonce=NONCE)
    chosen = policy or Policy(reference_values=PIN)
    return _outcome(
        lambda: validator.appraise(evidence, binding=context, clock=FixedClock(NOW), policy=chosen),
        world,
    )


def _outcome(run: Callable[[], Any], world: World) -> dict[str, Any]:
    """The result as JSON, or the refusal's class, check, reason, expected and actual."""
    try:
        result = run()
    except ATLSError as error:
        return {
            "raised": type(error).__name__,
            "check": error.check,
            "reason": error.reason,
            "expected": repr(error.expected),
            "actual": repr(error.actual),
        }
    text = result.to_json().replace(str(world.directory), "<dir>")
    answer: dict[str, Any] = json.loads(text)
    answer["measurement_order"] = list(result.measurements)  # to_json sorts them
    answer["verifier"]["plugin_version"] = answer["verifier"]["core_version"] = "<version>"
    source = answer["claims"].get("collateral_source", "")
    if source.startswith("pccs:"):
        answer["claims"]["collateral_source"] = "pccs:<url>"
    return answer


class _SgxRecorder(ValidatorBase):
    """An SGX quote verified by :class:`DcapVerifier` and recorded by ``record_quote``, as
    SGX validators do (``tdx.dcap`` refuses SGX quotes)."""

    spec = ValidatorSpec(
        id="sgx.golden",
        media_types=("application/octet-stream",),
        binding_schemes=("atls-v1",),
        transport=Transport.FILE,
        tee_type="sgx",
        measurements=SGX_MEASUREMENTS,
        workload_identity=SGX_WORKLOAD,
    )

    def __init__(self, settings: dict[str, Any]) -> None:
        self._verifier = DcapVerifier(DcapSettings.for_validator(settings))

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        verified = self._verifier.verify(evidence.data, now=appraisal.now)
        record_quote(appraisal, verified)
        return ReportData(value=verified.report_data)


def _sgx(world: World, **quote_kw: Any) -> dict[str, Any]:
    settings = world.settings("sgx", tee="sgx")
    data = b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)
    evidence = Evidence(
        media_type="application/octet-stream",
        data=make_sgx_quote(world.pki, data, **quote_kw),
        source=EvidenceSource(transport=Transport.FILE),
    )
    policy = Policy(reference_values={"mrenclave": DEFAULT_MRENCLAVE.hex()})
    return _outcome(
        lambda: _SgxRecorder(settings).appraise(
            evidence,
            binding=b.BindingContext(spki_der=SPKI, nonce=NONCE),
            clock=FixedClock(NOW),
            policy=policy,
        ),
        world,
    )


def _pccs(world: World) -> dict[str, Any]:
    """Collateral from a (loopback) PCCS through the verifier's cache, twice, the
    validator chosen as configuration chooses it (its test root is a tests-only knob)."""
    with FakePcs(world.collateral()) as pcs:
        settings = {
            "collateral": "pccs",
            "pccs_url": pcs.url,
            "cache_dir": "none",
            "root_ca": str(world.directory / "root.der"),
            "allow_custom_root": True,
        }
        selected = select_validator(
            "tdx.dcap",
            settings=settings,
            policy=Policy(reference_values=PIN),
            allow_insecure=True,
        )
        evidence = Evidence(
            media_type=TDX_QUOTE_MEDIA_TYPE,
            data=world.quote(),
            source=EvidenceSource(transport=Transport.FILE, location="quote.bin"),
        )
        context = b.BindingContext(spki_der=SPKI, nonce=NONCE)
        first, second = (
            _outcome(
                lambda: selected.appraise(evidence, binding=context, clock=FixedClock(NOW)),
                world,
            )
            for _ in range(2)
        )
    assert first == second
    return first


CASES: dict[str, Callable[[World], dict[str, Any]]] = {
    "accepted_nonce": lambda w: _appraise(w),
    "accepted_key_only": lambda w: _appraise(w, nonce=None),
    "accepted_v5": lambda w: _appraise(w, quote_kw={"version": 5}),
    "accepted_rtmrs_set": lambda w: _appraise(
        w, quote_kw={"rtmr": (b"\x01" * 48, b"\x02" * 48, b"\x03" * 48, b"\x04" * 48)}
    ),
    "accepted_pccs_cached": _pccs,
    "offline_unbound": lambda w: _appraise(w, context=b.BindingContext.offline_context()),
    "nonce_required_key_only": lambda w: _appraise(
        w, nonce=None, policy=Policy(reference_values=PIN, require_nonce=True)
    ),
    "refused_binding": lambda w: _appraise(
        w, context=b.BindingContext(spki_der=_spki(7), nonce=NONCE)
    ),
    "refused_reference": lambda w: _appraise(
        w, policy=Policy(reference_values={"mrtd": "ab" * 48, "mrseam": DEFAULT_MRSEAM.hex()})
    ),
    "warn_only_reference": lambda w: _appraise(
        w,
        policy=Policy.from_mapping(
            {"reference_values": {"mrtd": {"values": ["cd" * 48], "enforce": False}}}
        ),
    ),
    "warn_only_reference_pinned": lambda w: _appraise(
        w,
        policy=Policy.from_mapping(
            {"reference_values": {**PIN, "rtmr0": {"values": ["cd" * 48], "enforce": False}}}
        ),
    ),
    "refused_unpinned": lambda w: _appraise(
        w,
        quote_kw={"rtmr": (b"\x01" * 48,) * 4},
        policy=Policy(reference_values={"mrseam": DEFAULT_MRSEAM.hex(), "mrowner": "00" * 48}),
    ),
    "any_workload": lambda w: _appraise(w, policy=Policy(allow_any_workload=True)),
    "refused_outofdate": lambda w: _appraise(w, quote_kw={"tcb": "outofdate"}),
    "accepted_outofdate_by_policy": lambda w: _appraise(
        w,
        quote_kw={"tcb": "outofdate"},
        policy=Policy.from_mapping(
            {
                "reference_values": PIN,
                "accepted_tcb_statuses": ["UpToDate", "OutOfDate"],
                "accepted_advisory_ids": ["INTEL-SA-00837", "INTEL-SA-00960"],
            }
        ),
    ),
    "refused_advisories": lambda w: _appraise(w, collateral={"advisory_ids": ["INTEL-SA-01234"]}),
    "refused_debug": lambda w: _appraise(w, quote_kw={"debug": True}),
    "accepted_debug_by_policy": lambda w: _appraise(
        w, quote_kw={"debug": True}, policy=Policy(reference_values=PIN, allow_debug=True)
    ),
    "refused_mrsignerseam": lambda w: _appraise(
        w,
        quote_kw={"mr_signer_seam": b"\x01" * 48},
        collateral={"tdx_module_signer": b"\x01" * 48},
    ),
    "refused_expired": lambda w: _appraise(
        w, collateral={"next_update": NOW - dt.timedelta(days=1)}
    ),
    "crl_expires_first": lambda w: _appraise(
        w, collateral={"crl_next_update": NOW + dt.timedelta(hours=1)}
    ),
    "max_age": lambda w: _appraise(
        w, policy=Policy.from_mapping({"reference_values": PIN, "max_age": 60})
    ),
    "refused_sgx_quote": lambda w: _appraise(
        w,
        collateral={"tee": "sgx"},
        quote=make_sgx_quote(w.pki, b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)),
    ),
    "sgx_accepted": lambda w: _sgx(w, isv_prod_id=3, isv_svn=7, misc_select=1),
    "sgx_kss_fields": lambda w: _sgx(
        w,
        config_id=bytes(range(64)),
        config_svn=9,
        isv_family_id=b"\x0f" * 16,
        isv_ext_prod_id=b"\xe0" * 16,
    ),
    "sgx_refused_debug": lambda w: _sgx(w, debug=True),
    "refused_malformed": lambda w: _appraise(w, quote=b"\x04\x00\x02\x00" + bytes(60)),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(EXPECTED.read_text())
    return answer


@pytest.mark.parametrize("name", sorted(CASES))
def test_result_is_unchanged(world: World, expected: dict[str, Any], name: str) -> None:
    # As text: a dict compares equal in any order, and claims keep the report's order.
    assert _text(CASES[name](world)) == _text(expected[name])


def _text(outcome: dict[str, Any]) -> str:
    return json.dumps(outcome, indent=1, sort_keys=False)


def test_every_recorded_case_runs(expected: dict[str, Any]) -> None:
    assert sorted(expected) == sorted(CASES)


def _rewrite() -> None:
    with tempfile.TemporaryDirectory() as directory:
        world = World(Path(directory))
        answers = {name: CASES[name](world) for name in sorted(CASES)}
    EXPECTED.write_text(_text(answers) + "\n")


if __name__ == "__main__":
    _rewrite()
    sys.exit(0)

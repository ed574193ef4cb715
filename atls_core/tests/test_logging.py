"""What ``atls.appraisal`` logs: one record per appraisal, details at DEBUG, never a secret.

A small validator in this file (no built-in warnings, unlike the simulated TEE)
checks a MAC over its evidence with a key that is a configuration
:class:`Secret`: the canary.  The last tests run the whole TLS stack with the
simulated TEE, its hardware key read from the environment as a Secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.config import ATLSConfig, Secret, reveal
from atls_core.errors import UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.requests_adapter import ATLSAdapter
from atls_core.result import AttestationResult
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE

LOGGER = "atls.appraisal"
HOST = "tee.example.com"
CANARY = "c4na7y" + "5e" * 29
IMAGE = "ab" * 32
MEDIA_TYPE = "application/vnd.atls.log-test+json"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

SPEC = ValidatorSpec(
    id="logtest.mac",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="log-test",
    oids=(),
    description="a MAC-checked test validator",
    measurements=("image",),
    workload_identity=("image",),
    settings=("mac_key",),
)


class MacValidator(ValidatorBase):
    """Evidence is JSON with a MAC under a secret key; the JSON says what to record."""

    spec = SPEC

    def __init__(self, mac_key: Secret) -> None:
        self._key = mac_key

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        envelope = json.loads(evidence.data)
        body = envelope["body"].encode()
        mac = hmac.new(reveal(self._key).encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, envelope["mac"]):
            raise UntrustedChain("the evidence MAC does not verify", check="logtest.mac")
        payload = json.loads(body)
        appraisal.set_tcb(payload["tcb"])
        appraisal.set_debug(False)
        appraisal.measure("image", payload["image"])
        return ReportData(value=bytes.fromhex(payload["report_data"]))


def _spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _appraise(policy: Policy, *, tcb: str = "UpToDate", mac_key: str = CANARY) -> AttestationResult:
    """One appraisal of evidence bound to a fresh key and nonce."""
    spki, nonce = _spki(), new_nonce()
    payload = {
        "report_data": report_data_for("atls-v1", spki_der=spki, nonce=nonce).hex(),
        "image": IMAGE,
        "tcb": tcb,
    }
    body = json.dumps(payload)
    mac = hmac.new(mac_key.encode(), body.encode(), hashlib.sha256).hexdigest()
    evidence = Evidence(
        media_type=MEDIA_TYPE,
        data=json.dumps({"body": body, "mac": mac}).encode(),
        source=EvidenceSource(transport=Transport.CERTIFICATE),
    )
    return appraise(
        MacValidator(Secret(CANARY, "test canary")),
        evidence,
        binding=BindingContext(spki_der=spki, nonce=nonce),
        clock=FixedClock(NOW),
        policy=policy,
        host=HOST,
    )


PINNED = Policy(reference_values={"image": IMAGE})


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """This logger's records of the test body (fixtures read them at teardown too)."""
    return [r for r in caplog.get_records("call") if r.name == LOGGER]


def _summary(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> str:
    """The message of the one record at INFO or above, which is at ``level``."""
    shown = [r for r in _records(caplog) if r.levelno >= logging.INFO]
    assert len(shown) == 1, [r.getMessage() for r in shown]
    assert shown[0].levelno == level
    return shown[0].getMessage()


@pytest.fixture
def info(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger=LOGGER)
    yield caplog
    assert not [r for r in _records(caplog) if r.levelno < logging.INFO]
    _no_canary(caplog)


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield caplog
    _no_canary(caplog)


def _no_canary(caplog: pytest.LogCaptureFixture) -> None:
    """The secret is in no record: message, arguments or attached exception."""
    records = caplog.get_records("call")
    assert records
    for record in records:
        text = " ".join(
            [record.getMessage(), repr(record.args), record.exc_text or "", str(record.exc_info)]
        )
        assert CANARY not in text


def test_accepted_is_one_info_record(info: pytest.LogCaptureFixture) -> None:
    result = _appraise(PINNED)
    assert result.accepted
    assert not result.warnings
    message = _summary(info)
    assert message.startswith("accepted")
    assert f"host={HOST}" in message
    assert "validator=logtest.mac" in message
    assert "status=affirming" in message


def test_refused_by_policy_is_one_info_record(info: pytest.LogCaptureFixture) -> None:
    result = _appraise(Policy(reference_values={"image": "cd" * 32}))
    assert not result.accepted
    message = _summary(info)
    assert message.startswith("refused")
    assert f"host={HOST}" in message
    assert "failed=reference.image" in message


def test_refused_by_an_error_is_one_info_record(info: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UntrustedChain):
        _appraise(PINNED, mac_key="wrong key")
    message = _summary(info)
    assert message.startswith("refused")
    assert "check=logtest.mac" in message
    assert "validator=logtest.mac" in message


def test_accepted_with_warnings_is_one_warning_record(info: pytest.LogCaptureFixture) -> None:
    policy = Policy(
        reference_values={"image": IMAGE},
        accepted_tcb_statuses=frozenset({"UpToDate", "SWHardeningNeeded"}),
    )
    result = _appraise(policy, tcb="SWHardeningNeeded")
    assert result.accepted
    assert result.warnings
    message = _summary(info, logging.WARNING)
    assert message.startswith("accepted with warnings")
    assert "SWHardeningNeeded" in message


def test_an_unpinned_acceptance_warns(info: pytest.LogCaptureFixture) -> None:
    result = _appraise(Policy(allow_any_workload=True))
    assert result.accepted
    warnings = [r for r in _records(info) if r.levelno == logging.WARNING]
    assert any("workload.unpinned" in r.getMessage() for r in warnings)
    assert not [r for r in _records(info) if r.levelno == logging.INFO]


def test_details_only_at_debug(debug: pytest.LogCaptureFixture) -> None:
    result = _appraise(PINNED)
    records = _records(debug)
    assert [r.levelno for r in records] == [logging.INFO, logging.DEBUG]
    details = records[1].getMessage()
    assert result.evidence_digest in details
    assert result.policy_digest[:16] in details
    assert "binding=atls-v1/nonce" in details
    assert "tcb=UpToDate" in details


def test_silent_above_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    _appraise(PINNED)
    _appraise(Policy(reference_values={"image": "cd" * 32}))
    assert _records(caplog) == []


# -- the whole stack: TLS, the registry, the configuration's secrets ----------


def _config(tee: SimulatedTEE, monkeypatch: pytest.MonkeyPatch) -> ATLSConfig:
    """The simulated TEE's rule, with its hardware key read from the environment (a Secret)."""
    mapping = tee.config_mapping("127.0.0.1")
    rule = mapping["hosts"]["127.0.0.1"]
    monkeypatch.setenv("ATLS_TEST_HARDWARE_KEY", rule["settings"]["hardware_key"])
    rule["settings"]["hardware_key"] = {"$env": "ATLS_TEST_HARDWARE_KEY"}
    config = ATLSConfig.from_mapping(mapping)
    assert isinstance(config.hosts[0].settings["hardware_key"], Secret)
    return config


def _get(config: ATLSConfig, server: HTTPSServer) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.mount("httpa://", ATLSAdapter(config))
    with session:
        return session.get(server.url("httpa", "/"), timeout=10)


def test_over_tls(
    tee: SimulatedTEE, debug: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tee, monkeypatch)
    secret = tee.hardware.public_key_hex
    with HTTPSServer(tee.certificates().server_context()) as server:
        _get(config, server)
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with (
        HTTPSServer(liar.server_context()) as server,
        pytest.raises(requests.exceptions.SSLError),
    ):
        _get(config, server)
    records = _records(debug)
    summaries = [r for r in records if r.levelno >= logging.INFO]
    assert [r.levelno for r in summaries] == [logging.WARNING, logging.INFO]
    assert summaries[0].getMessage().startswith("accepted with warnings host=127.0.0.1")
    assert summaries[1].getMessage().startswith("refused host=127.0.0.1")
    assert "check=binding.report_data" in summaries[1].getMessage()
    for record in debug.get_records("call"):
        assert secret not in record.getMessage()

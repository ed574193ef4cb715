"""A canary secret in every setting that can carry one never reaches any output.

Each case puts a fresh random string where an operator puts credentials (URL
userinfo and query, an API key, a ``$env`` secret), drives the failure paths and
the success path against the loopback stand-ins, and searches everything a user
or a log could see: the error's str, repr and ``to_dict()``, the result's JSON,
every DEBUG log record (message and traceback) and, where a CLI path exists, the
CLI's text and ``--json`` output.  A leak here is a credential in a ticket.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from atls_azure.issuer import AciIssuer
from atls_azure.testing.maa import StandInMaa, new_tls_key
from atls_azure.validators import AciTokenValidator
from atls_core import binding as b
from atls_core.appraisal import appraise
from atls_core.cli import main as atls_main
from atls_core.clock import FixedClock
from atls_core.config import ATLSConfig, Secret
from atls_core.errors import ATLSError, ATLSVerificationError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, tls_connect
from atls_core.testing.simulated import SimulatedHardware
from atls_core.tls import ATLSContext
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote
from atls_ita.issuer import ItaIssuer
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.validator import ItaValidator
from atls_tdx.dcap_validator import TdxDcapValidator
from atls_tdx.oids import ATLS_TDX_QUOTE
from atls_tdx.specs import TDX_QUOTE_MEDIA_TYPE
from atls_tdx.testing.dstack import FakeConfigfsTsm

ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NEXT_UPDATE = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


# -- the search -------------------------------------------------------------------------------


@pytest.fixture
def canary() -> str:
    """A fresh secret per test: any occurrence in output is a leak, never a coincidence."""
    return "canary" + secrets.token_hex(12)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog


def error_text(error: BaseException) -> str:
    """What an error shows: str, repr, ``to_dict()`` and its attached result's JSON."""
    parts = [str(error), repr(error)]
    if isinstance(error, ATLSError):
        parts.append(json.dumps(error.to_dict(), default=repr))
    result = getattr(error, "result", None)
    if isinstance(result, AttestationResult):
        parts.append(result.to_json())
    return "\n".join(parts)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and its traceback, however it is carried."""
    formatter = logging.Formatter()
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_text:
            parts.append(record.exc_text)
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def assert_hidden(canary: str, *shown: str) -> None:
    for text in shown:
        assert canary not in text, f"the secret leaked into: {text[:2000]}"


def refused(call: Callable[[], object]) -> ATLSError:
    """The ATLSError ``call`` raises (anything else, or nothing, fails the test)."""
    with pytest.raises(ATLSError) as info:
        call()
    return info.value


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that is bound (nobody else gets it) but not listening: a service that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def credentialed(base: str, canary: str, path: str = "/", *, query: bool = True) -> str:
    """``base`` (``http://127.0.0.1:port``) with the canary as password and in the query
    (the ITA and MAA stand-ins match whole request paths: ``query=False`` for them)."""
    scheme, _, host = base.partition("://")
    tail = f"?token={canary}" if query else ""
    return f"{scheme}://operator:{canary}@{host}{path}{tail}"


# -- DCAP: pccs_url ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> DcapTestPki:
    return DcapTestPki.generate(seed=b"secret canary")


def _dcap_case(pki: DcapTestPki) -> tuple[Evidence, b.BindingContext]:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    quote = make_tdx_quote(pki, b.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
    evidence = Evidence(
        media_type=TDX_QUOTE_MEDIA_TYPE,
        data=quote,
        source=EvidenceSource(transport=Transport.CERTIFICATE, oid=ATLS_TDX_QUOTE),
    )
    return evidence, b.BindingContext(spki_der=spki, nonce=nonce)


def _dcap_appraise(pki: DcapTestPki, tmp_path: Path, pccs_url: str) -> AttestationResult:
    root = tmp_path / "root.der"
    root.write_bytes(pki.root_ca_der)
    validator = TdxDcapValidator(
        {
            "pccs_url": pccs_url,
            "root_ca": str(root),
            "allow_custom_root": True,
            "cache_dir": "none",
        }
    )
    evidence, binding = _dcap_case(pki)
    return appraise(
        validator,
        evidence,
        binding=binding,
        clock=FixedClock(NOW),
        policy=Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()}),
    )


def _collateral(pki: DcapTestPki) -> str:
    return pki.collateral_json("tdx", issue_date=ISSUED, next_update=NEXT_UPDATE)


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = atls_main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _dcap_cli(
    capsys: pytest.CaptureFixture[str], pki: DcapTestPki, tmp_path: Path, pccs_url: str
) -> str:
    """``atls verify-evidence --pccs-url`` in text and JSON: both refuse, both are searched."""
    quote = tmp_path / "quote.bin"
    quote.write_bytes(_dcap_case(pki)[0].data)
    base = ["verify-evidence", "--validator", "tdx.dcap", "--pccs-url", pccs_url]
    base += ["--at", NOW.isoformat(), "--reference", f"mrtd={DEFAULT_MRTD.hex()}"]
    text_code, text = _cli(capsys, [*base, str(quote)])
    json_code, as_json = _cli(capsys, [*base, "--json", str(quote)])
    assert text_code != 0, text
    assert json_code != 0, as_json
    return text + as_json


def test_dcap_pccs_down(
    canary: str,
    pki: DcapTestPki,
    tmp_path: Path,
    closed_port: int,
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = credentialed(f"http://127.0.0.1:{closed_port}", canary)
    error = refused(lambda: _dcap_appraise(pki, tmp_path, url))
    assert error.check.startswith("collateral"), error_text(error)
    cli = _dcap_cli(capsys, pki, tmp_path, url)
    assert_hidden(canary, error_text(error), log_text(logs), cli)


def test_dcap_pccs_answering_500(
    canary: str,
    pki: DcapTestPki,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakePcs(_collateral(pki)) as pccs:
        pccs.fail_with = 500
        url = credentialed(pccs.url, canary)
        error = refused(lambda: _dcap_appraise(pki, tmp_path, url))
        cli = _dcap_cli(capsys, pki, tmp_path, url)
        assert pccs.total_requests > 0
    assert "500" in str(error)
    assert_hidden(canary, error_text(error), log_text(logs), cli)


def test_dcap_canary_in_the_pccs_path_of_a_failing_service(
    canary: str, pki: DcapTestPki, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """A named URL is its origin only: a token in the path is cut like one in the query."""
    with FakePcs(_collateral(pki)) as pccs:
        url = credentialed(pccs.url, canary, path=f"/{canary}")  # FakePcs 404s this prefix
        error = refused(lambda: _dcap_appraise(pki, tmp_path, url))
        assert f"{pccs.url}/***" in str(error), "the service is still named"
    assert_hidden(canary, error_text(error), log_text(logs))


def test_dcap_pccs_with_credentials_succeeds_without_showing_them(
    canary: str, pki: DcapTestPki, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    with FakePcs(_collateral(pki)) as pccs:
        result = _dcap_appraise(pki, tmp_path, credentialed(pccs.url, canary))
        assert pccs.authorizations, "the PCCS was asked"
        assert all(pccs.authorizations), "credentials were sent"
        assert all(canary in path for path in pccs.paths), "the query was sent"
    assert result.accepted, result.to_json()
    source = str(result.claims["collateral_source"])
    assert source.startswith("pccs:http://127.0.0.1:")
    assert_hidden(canary, source, result.to_json(), repr(result), log_text(logs))


# -- ITA: jwks_url / portal_url and the issuer's api_key ----------------------------------------


@pytest.fixture
def tsm(tmp_path: Path) -> FakeConfigfsTsm:
    root = tmp_path / "tsm"
    root.mkdir()
    return FakeConfigfsTsm(root, lambda report_data: b"EMULATED-TDX-QUOTE:" + report_data)


def _ita_issuer(api_url: str, key: str, tsm: FakeConfigfsTsm) -> ItaIssuer:
    settings = {
        "api_url": api_url,
        "api_key": Secret(key, "test"),
        "configfs_root": str(tsm.root),
        "allow_http_loopback": True,
    }
    return ItaIssuer(settings, fs=tsm)


def _ita_evidence(
    ita: StandInIta, key: str, tsm: FakeConfigfsTsm
) -> tuple[Evidence, b.BindingContext]:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    report_data = b.report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    evidence = _ita_issuer(ita.url, key, tsm).issue(report_data)
    return evidence, b.BindingContext(spki_der=spki, nonce=nonce)


def _ita_appraise(
    ita: StandInIta, evidence: Evidence, binding: b.BindingContext, tmp_path: Path, **keys: str
) -> AttestationResult:
    settings = ita.validator_settings(tmp_path / "root.pem")
    del settings["jwks_url"]
    validator = ItaValidator({**settings, **keys})
    return validator.appraise(
        evidence,
        binding=binding,
        clock=FixedClock(ita.clock.now() + dt.timedelta(seconds=1)),
        policy=Policy(reference_values=workload_pin("tdx")),
    )


def _key_urls(base: str, canary: str, *, query: bool = True) -> list[dict[str, str]]:
    return [
        {"jwks_url": credentialed(base, canary, path="/certs", query=query)},
        {"portal_url": f"{base.replace('://', f'://operator:{canary}@')}"},
    ]


@pytest.fixture
def ita_attested(tsm: FakeConfigfsTsm) -> Iterator[tuple[StandInIta, Evidence, b.BindingContext]]:
    """A stand-in ITA (its API key no secret of these tests) and evidence it attested."""
    key = secrets.token_hex(8)
    with StandInIta(api_key=key, clock=FixedClock(dt.datetime.now(dt.UTC))) as ita:
        yield (ita, *_ita_evidence(ita, key, tsm))


def test_ita_key_urls_service_down(
    canary: str,
    ita_attested: tuple[StandInIta, Evidence, b.BindingContext],
    tmp_path: Path,
    closed_port: int,
    logs: pytest.LogCaptureFixture,
) -> None:
    ita, evidence, binding = ita_attested
    for keys in _key_urls(f"http://127.0.0.1:{closed_port}", canary):
        error = refused(partial(_ita_appraise, ita, evidence, binding, tmp_path, **keys))
        assert_hidden(canary, error_text(error), log_text(logs))
    ita.fail_certs = True
    for keys in _key_urls(ita.url, canary):
        error = refused(partial(_ita_appraise, ita, evidence, binding, tmp_path, **keys))
        assert_hidden(canary, error_text(error), log_text(logs))


def test_ita_key_urls_with_credentials_succeed(
    canary: str,
    ita_attested: tuple[StandInIta, Evidence, b.BindingContext],
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
) -> None:
    ita, evidence, binding = ita_attested
    for keys in _key_urls(ita.url, canary, query=False):
        result = _ita_appraise(ita, evidence, binding, tmp_path, **keys)
        assert result.accepted, result.to_json()
        assert_hidden(canary, result.to_json(), repr(result), log_text(logs))


def test_ita_api_key_refused_down_and_accepted(
    canary: str,
    tsm: FakeConfigfsTsm,
    tmp_path: Path,
    closed_port: int,
    logs: pytest.LogCaptureFixture,
) -> None:
    down = _ita_issuer(f"http://127.0.0.1:{closed_port}", canary, tsm)
    shown = [error_text(refused(lambda: down.issue(bytes(64)))), repr(down)]
    with StandInIta(api_key="not-" + canary, clock=FixedClock(dt.datetime.now(dt.UTC))) as other:
        wrong = _ita_issuer(other.url, canary, tsm)
        unauthorised = refused(lambda: wrong.issue(bytes(64)))
        assert unauthorised.actual == 401
        shown += [error_text(unauthorised), repr(wrong)]
    with StandInIta(api_key=canary, clock=FixedClock(dt.datetime.now(dt.UTC))) as ita:
        evidence, binding = _ita_evidence(ita, canary, tsm)
        result = _ita_appraise(ita, evidence, binding, tmp_path, jwks_url=ita.jwks_url)
        assert result.accepted, result.to_json()
        shown += [result.to_json(), evidence.data.decode(errors="replace")]
    assert any("appraisal/v2" in r.getMessage() for r in logs.records), "logging was on"
    assert_hidden(canary, *shown, log_text(logs))


# -- Azure: MAA instances and the ACI issuer's sidecar_url --------------------------------------


HOSTDATA_POLICY = Policy(options={"hostdata": [hashlib.sha256(b"package policy").hexdigest()]})


def _aci_evidence(sidecar_url: str) -> tuple[Evidence, b.BindingContext]:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    issuer = AciIssuer({"sidecar_url": sidecar_url, "maa_endpoint": "127.0.0.1", "timeout": 5})
    return issuer.issue_for_key(spki, nonce), b.BindingContext(spki_der=spki, nonce=nonce)


def _maa_appraise(
    instance: str, evidence: Evidence, binding: b.BindingContext
) -> AttestationResult:
    validator = AciTokenValidator(
        {"instances": [instance], "allow_http_loopback": True, "timeout": 5}
    )
    return validator.appraise(
        evidence,
        binding=binding,
        clock=FixedClock(dt.datetime.now(dt.UTC)),
        policy=HOSTDATA_POLICY,
    )


def test_azure_sidecar_down_or_failing(
    canary: str, closed_port: int, logs: pytest.LogCaptureFixture
) -> None:
    gone = credentialed(f"http://127.0.0.1:{closed_port}", canary)
    shown = [error_text(refused(lambda: _aci_evidence(gone)))]
    with StandInMaa() as maa:
        maa.down = True
        shown.append(error_text(refused(lambda: _aci_evidence(credentialed(maa.url, canary)))))
    assert_hidden(canary, *shown, log_text(logs))


def test_azure_instance_with_credentials_is_refused_without_showing_them(
    canary: str, closed_port: int, logs: pytest.LogCaptureFixture
) -> None:
    """An MAA instance is an origin: credentials in it are refused at configuration."""
    shown = []
    with StandInMaa() as maa:
        evidence, binding = _aci_evidence(maa.url)
        for base in (f"http://127.0.0.1:{closed_port}", maa.url):
            for instance in (credentialed(base, canary), credentialed(base, canary, query=False)):
                error = refused(partial(_maa_appraise, instance, evidence, binding))
                assert error.check == "config.settings", error_text(error)
                shown.append(error_text(error))
    assert_hidden(canary, *shown, log_text(logs))


def test_azure_with_credentials_succeeds(canary: str, logs: pytest.LogCaptureFixture) -> None:
    with StandInMaa() as maa:
        evidence, binding = _aci_evidence(credentialed(maa.url, canary, query=False))
        assert maa.requests["/attest/maa"] == 1
        result = _maa_appraise(maa.url, evidence, binding)
    assert result.accepted, result.to_json()
    assert_hidden(canary, result.to_json(), repr(result), log_text(logs))


# -- a $env secret in configuration, through ATLSContext and a refused handshake --------------


def test_env_secret_in_configuration_and_a_refused_handshake(
    logs: pytest.LogCaptureFixture,
) -> None:
    tee = SimulatedTEE()
    canary = SimulatedHardware.generate().public_key_hex  # another TEE's key: refused
    mapping: dict[str, Any] = tee.config_mapping("127.0.0.1")
    mapping["hosts"]["127.0.0.1"]["settings"]["hardware_key"] = {"$env": "ATLS_CANARY_KEY"}
    config = ATLSConfig.from_mapping(mapping, environ={"ATLS_CANARY_KEY": canary})
    assert isinstance(config.rule_for("127.0.0.1").settings["hardware_key"], Secret)
    context = ATLSContext(config)
    with HTTPSServer(tee.certificates().server_context()) as server:
        with pytest.raises(ATLSVerificationError) as info:
            tls_connect(context, server.port)
        assert server.wait_finished(1)
    assert_hidden(canary, error_text(info.value), repr(config), log_text(logs))

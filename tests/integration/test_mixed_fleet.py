"""One configuration, one client, a fleet of different TEEs on 127.0.0.1.

Five servers, each built from a plugin's public issuer and test kit:

* ``tdx.test``     - per-connection certificates from ``tdx.configfs-tsm`` over a
  fake configfs, quotes under a synthetic DCAP PKI (``root_ca`` +
  ``allow_custom_root``), appraised by ``tdx.dcap``;
* ``gramine.test`` - a Gramine RA-TLS certificate from ``gramine.dev-attestation``
  over a fake ``/dev/attestation`` (same synthetic PKI), ``gramine.ratls``;
* ``azure.test``   - per-connection certificates carrying tokens of the stand-in
  MAA (``atls_azure.testing.maa``), ``azure.aci``;
* ``ita.test``     - per-connection certificates carrying tokens of the stand-in
  Intel Trust Authority (``atls_ita.testing``), ``ita.tdx``;
* ``sim.test``     - the simulated TEE of ``atls_core.testing``, ``insecure.simulated``.

Every rule's policy pins its workload (the core refuses one that pins nothing):
``tdx.test`` the synthetic TD's MRTD, ``gramine.test`` the synthetic enclave's
MRENCLAVE, ``azure.test`` the stand-in's container policy (``cce_policies``, a
pinning option), ``ita.test`` the stand-in's MRTD and ``sim.test`` the simulated
image.

``.test`` is a reserved top-level domain; the tests resolve it to 127.0.0.1
(``socket.create_connection`` + ``server_hostname`` for raw TLS, a resolver
fixture for requests; a redirect from one kind to another is appraised by the
target's rule).  The CLI runs as a real subprocess against
``localhost`` and ``127.0.0.1``, which the same configuration maps too.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import ssl
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests

from atls_azure.issuer import AciIssuer
from atls_azure.server import AciCertificates
from atls_azure.testing.maa import StandInMaa
from atls_core.config import ATLSConfig, Secret
from atls_core.errors import ATLSVerificationError
from atls_core.requests_adapter import ATLSAdapter, attestation_result
from atls_core.server import AttestedCertificates, select_issuer
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, attested_get
from atls_core.testing.plugins import run_atls
from atls_core.tls import ATLSContext
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import (
    DEFAULT_MRENCLAVE,
    DEFAULT_MRTD,
    make_sgx_quote,
    make_tdx_quote,
)
from atls_gramine.issuer import DevAttestationIssuer
from atls_gramine.testing.certs import validator_settings as gramine_settings
from atls_gramine.testing.dev_attestation import FakeDevAttestation
from atls_ita.issuer import ItaIssuer
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_tdx.issuers import ConfigfsTsmIssuer
from atls_tdx.testing.dstack import FakeConfigfsTsm

ITA_API_KEY = "mixed-fleet-ita-key"
CCE_POLICY = "package policy"  # what the stand-in MAA reports as host data

VALIDATORS = {
    "tdx.test": "tdx.dcap",
    "gramine.test": "gramine.ratls",
    "azure.test": "azure.aci",
    "ita.test": "ita.tdx",
    "sim.test": "insecure.simulated",
}
KIND = {name: name.split(".")[0] for name in VALIDATORS}
ALIASES = {"localhost": "tdx.test", "127.0.0.1": "azure.test"}
"""Names that resolve without help, for the CLI subprocess."""
WARNED = {"tdx.test": "insecure.test_knob:", "azure.test": "tcb:"}
"""Why each CLI result is ``warning``, not ``affirming``: tdx.dcap trusts the synthetic DCAP root
(a tests-only setting, which caps results), azure.aci by design (MAA tokens carry SVNs, not a
TCB status)."""


Rules = dict[str, tuple[dict[str, Any], dict[str, Any]]]
"""Host name -> (validator settings, policy), as the configuration file spells them."""
PINS = ("reference_values", "cce_policies")
"""The policy keys the fleet's rules pin their workloads with."""


@attrs.frozen
class Fleet:
    servers: dict[str, HTTPSServer]
    """By kind: tdx, gramine, azure, ita, sim; and tdx-redirect (a TDX server that redirects)."""
    rules: Rules
    toml: str
    config: ATLSConfig
    config_file: Path

    def port(self, name: str) -> int:
        return self.servers[KIND[name]].port


def _toml_value(value: Any) -> str:
    if isinstance(value, (str, bool, int)) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return json.dumps(value)  # TOML's basic strings, booleans and arrays read the same
    if isinstance(value, dict):  # an inline table, e.g. reference_values = { mrtd = "..." }
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML rendering for {value!r}")


def _rule(name: str, validator: str, settings: dict[str, Any], policy: dict[str, Any]) -> str:
    lines = [f'[hosts."{name}"]', f"validator = {_toml_value(validator)}"]
    lines += [f'[hosts."{name}".settings]']
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    if policy:
        lines += [f'[hosts."{name}".policy]']
        lines += [f"{key} = {_toml_value(value)}" for key, value in policy.items()]
    return "\n".join(lines)


def _fleet_toml(rules: Rules) -> str:
    blocks = ["[atls]\nallow_insecure_test_validators = true  # sim.test; tests-only settings"]
    for name, validator in VALIDATORS.items():
        settings, policy = rules[name]
        blocks.append(_rule(name, validator, settings, policy))
    for alias, name in ALIASES.items():
        settings, policy = rules[name]
        blocks.append(_rule(alias, VALIDATORS[name], settings, policy))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    now = dt.datetime.now(dt.UTC)
    pki = DcapTestPki.generate(seed="atls mixed fleet")
    rules: Rules = {}

    # tdx.dcap: configfs-tsm issuer (built by id, like a server would) over a fake configfs.
    (work / "tsm").mkdir()
    (work / "root.pem").write_text(pki.root_ca_pem)
    (work / "tdx-collateral.json").write_text(pki.collateral_json("tdx"))
    tdx_fs = FakeConfigfsTsm(work / "tsm", lambda rd: make_tdx_quote(pki, rd))
    # The issuer a server names by id is this class; the fake configfs is its fs= hook.
    assert isinstance(
        select_issuer("tdx.configfs-tsm", settings={"root": str(work / "tsm")}), ConfigfsTsmIssuer
    )
    tdx_issuer = ConfigfsTsmIssuer({"root": str(work / "tsm")}, fs=tdx_fs)
    rules["tdx.test"] = (
        {
            "collateral_file": str(work / "tdx-collateral.json"),
            "root_ca": str(work / "root.pem"),
            "allow_custom_root": True,
            "cache_dir": "none",
        },
        {"reference_values": {"mrtd": DEFAULT_MRTD.hex()}},
    )

    # gramine.ratls: Gramine-format credentials from the issuer over a fake /dev/attestation.
    rules["gramine.test"] = (
        gramine_settings(
            pki,
            work / "gramine-dcap",
            issue_date=now - dt.timedelta(days=1),
            next_update=now + dt.timedelta(days=30),
        ),
        {"reference_values": {"mrenclave": DEFAULT_MRENCLAVE.hex()}},
    )

    # ita.tdx: stand-in ITA; the server's issuer quotes through an emulated configfs.
    (work / "ita-tsm").mkdir()
    ita_fs = FakeConfigfsTsm(work / "ita-tsm", lambda rd: b"EMULATED-TDX-QUOTE:" + rd)

    tee = SimulatedTEE()
    rules["sim.test"] = (
        tee.hardware.validator_settings(),
        {"reference_values": {"image": tee.image}},
    )

    with (
        StandInMaa() as maa,
        StandInIta(api_key=ITA_API_KEY) as ita,
        FakeDevAttestation(work / "attestation", lambda rd: make_sgx_quote(pki, rd)) as device,
    ):
        rules["azure.test"] = (maa.settings(), {"cce_policies": [CCE_POLICY]})
        rules["ita.test"] = (
            ita.validator_settings(work / "ita-root.pem"),
            {"reference_values": workload_pin()},
        )
        gramine_key, gramine_cert = DevAttestationIssuer(
            {"attestation_dir": str(device.root)}
        ).write_credentials(work)
        gramine_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        gramine_context.load_cert_chain(gramine_cert, gramine_key)
        aci = AciCertificates(AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"}))
        ita_certificates = AttestedCertificates(
            ItaIssuer(
                {
                    "api_url": ita.url,
                    "allow_http_loopback": True,  # the stand-in ITA speaks plain http
                    "api_key": Secret(ITA_API_KEY, "test"),
                    "configfs_root": str(work / "ita-tsm"),
                },
                fs=ita_fs,
            )
        )
        contexts = {
            "tdx": AttestedCertificates(tdx_issuer).server_context(per_connection=True),
            "gramine": gramine_context,
            "azure": aci.server_context(),
            "ita": ita_certificates.server_context(),
            "sim": tee.certificates().server_context(),
        }
        servers = {kind: HTTPSServer(context).start() for kind, context in contexts.items()}
        # A second TDX server whose every answer is a redirect (GET /<host>/<path>).
        redirector = HTTPSServer(contexts["tdx"])
        redirector.RequestHandlerClass = _Redirect
        servers["tdx-redirect"] = redirector.start()
        try:
            toml = _fleet_toml(rules)
            config_file = work / "atls.toml"
            config_file.write_text(toml)
            config = ATLSConfig.from_mapping(tomllib.loads(toml), source="mixed-fleet.toml")
            yield Fleet(
                servers=servers, rules=rules, toml=toml, config=config, config_file=config_file
            )
        finally:
            for server in servers.values():
                server.stop()
        assert not device.errors


@pytest.fixture
def resolve_test_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``*.test`` (a reserved TLD) to 127.0.0.1 in this process only."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class _Redirect(http.server.BaseHTTPRequestHandler):
    """``GET /<host:port>/<path>`` answers ``302 Location: https://<host:port>/<path>``."""

    protocol_version = "HTTP/1.1"
    server: HTTPSServer

    def do_GET(self) -> None:
        self.server.note_request(self)  # type: ignore[arg-type]
        self.send_response(302)
        self.send_header("Location", "https:/" + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_the_config_maps_every_host_to_its_plugin(fleet: Fleet) -> None:
    for name, validator in VALIDATORS.items():
        assert fleet.config.rule_for(name).validator == validator
    assert fleet.config.rule_for("localhost").validator == "tdx.dcap"
    assert fleet.config.rule_for("127.0.0.1").validator == "azure.aci"


def test_one_context_appraises_each_host_with_its_validator(fleet: Fleet) -> None:
    context = ATLSContext(fleet.config)
    results = {}
    for name, validator in VALIDATORS.items():
        result, data = attested_get(context, fleet.port(name), f"/{KIND[name]}", name=name)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert f'"/{KIND[name]}"'.encode() in data
        assert result is not None
        assert result.accepted, result.to_json()
        assert result.verifier.validator == validator
        assert result.binding.verified
        assert not [w for w in result.warnings if w.startswith("workload.unpinned")], name
        results[name] = result
    assert results["tdx.test"].binding.scheme == "atls-v1"
    assert results["gramine.test"].binding.scheme == "gramine-tcg"
    assert results["azure.test"].tee_type != results["tdx.test"].tee_type
    # The stand-in MAA and ITA serve their keys over http on loopback: tests only, and said so.
    for name in ("azure.test", "ita.test"):
        assert list(results[name].claims["test_knobs"]) == ["allow_http_loopback"], name
    # Every server saw exactly the one request it was sent.
    for name in VALIDATORS:
        assert fleet.servers[KIND[name]].requests.count(f"/{KIND[name]}") == 1


def test_one_requests_session_across_the_fleet(fleet: Fleet, resolve_test_names: None) -> None:
    with requests.Session() as session:
        session.trust_env = False
        session.mount("httpa://", ATLSAdapter(fleet.config))
        for name, validator in VALIDATORS.items():
            response = session.get(f"httpa://{name}:{fleet.port(name)}/v1/models", timeout=20)
            assert response.json()["data"][0]["id"] == "demo-model"
            result = attestation_result(response)
            assert result is not None
            assert result.accepted
            assert result.verifier.validator == validator


def test_a_host_without_a_rule_is_refused(fleet: Fleet, resolve_test_names: None) -> None:
    server = fleet.servers["sim"]
    before = list(server.requests)
    context = ATLSContext(fleet.config)
    with pytest.raises(ATLSVerificationError) as caught:
        attested_get(context, server.port, "/secret", name="unlisted.test")
    assert caught.value.check == "config.hosts"
    with requests.Session() as session:
        session.trust_env = False
        session.mount("httpa://", ATLSAdapter(fleet.config))
        with pytest.raises(requests.exceptions.SSLError) as refused:
            session.post(f"httpa://unlisted.test:{server.port}/secret", data=b"x", timeout=20)
    assert "config.hosts" in str(refused.value)
    assert server.requests == before


def test_a_rule_that_pins_nothing_is_refused_for_every_kind(fleet: Fleet) -> None:
    """The same fleet under policies without their pins: every kind refuses, before any byte."""
    unpinned = {
        name: (settings, {k: v for k, v in policy.items() if k not in PINS})
        for name, (settings, policy) in fleet.rules.items()
    }
    config = ATLSConfig.from_mapping(tomllib.loads(_fleet_toml(unpinned)), source="unpinned.toml")
    context = ATLSContext(config)
    for name, validator in VALIDATORS.items():
        server = fleet.servers[KIND[name]]
        before = list(server.requests)
        with pytest.raises(ATLSVerificationError) as caught:
            attested_get(context, server.port, "/secret", name=name)
        assert caught.value.check == "workload.unpinned", f"{validator}: {caught.value}"
        assert "allow_any_workload" in str(caught.value), "the refusal says how to explore"
        assert server.requests == before


# (host name asked for, kind of server that answers, the check that refuses it)
IMPOSTORS = [
    ("tdx.test", "gramine", "evidence.extension"),
    ("gramine.test", "tdx", "evidence.extension"),
    ("azure.test", "ita", "evidence.extension"),
    ("ita.test", "azure", "evidence.extension"),
    ("tdx.test", "sim", "evidence.extension"),
    ("sim.test", "tdx", "evidence.extension"),
]


@pytest.mark.parametrize(("name", "kind", "check"), IMPOSTORS)
def test_a_server_of_another_kind_is_refused(
    fleet: Fleet, name: str, kind: str, check: str
) -> None:
    server = fleet.servers[kind]
    before = list(server.requests)
    with pytest.raises(ATLSVerificationError) as caught:
        attested_get(ATLSContext(fleet.config), server.port, "/secret", name=name)
    assert caught.value.check == check, str(caught.value)
    assert isinstance(caught.value, ssl.SSLCertVerificationError)
    assert server.requests == before


def _cli(fleet: Fleet, url: str) -> subprocess.CompletedProcess[str]:
    return run_atls("verify", url, "--config", fleet.config_file, "--json")


def test_atls_verify_cli_against_two_kinds(fleet: Fleet) -> None:
    for alias, name in ALIASES.items():
        done = _cli(fleet, f"https://{alias}:{fleet.port(name)}")
        assert done.returncode == 0, done.stdout + done.stderr
        document = json.loads(done.stdout)
        assert document["verifier"]["validator"] == VALIDATORS[name]
        assert document["accepted"] is True
        assert document["status"] == "warning"
        assert [w for w in document["warnings"] if w.startswith(WARNED[name])], document
    # localhost is configured for tdx.dcap: the Gramine server answering there is refused.
    refused = _cli(fleet, f"https://localhost:{fleet.servers['gramine'].port}")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["error"]["check"] == "evidence.extension"


def test_a_redirect_to_another_kind_is_appraised_by_the_targets_rule(
    fleet: Fleet, resolve_test_names: None
) -> None:
    """tdx.test sends the client to gramine.test (as https://): gramine.ratls appraises it."""
    entry = f"httpa://tdx.test:{fleet.servers['tdx-redirect'].port}"
    gramine = fleet.servers["gramine"]
    with requests.Session() as session:
        session.trust_env = False
        session.mount("httpa://", ATLSAdapter(fleet.config))
        response = session.get(f"{entry}/gramine.test:{gramine.port}/landed", timeout=20)
        assert response.json() == {"path": "/landed"}
        assert response.url == f"httpa://gramine.test:{gramine.port}/landed"
        first, final = attestation_result(response.history[0]), attestation_result(response)
        assert first is not None
        assert first.verifier.validator == "tdx.dcap"
        assert final is not None
        assert final.verifier.validator == "gramine.ratls"
        # The same server under a name without a rule: refused before a request is sent.
        before = list(gramine.requests)
        with pytest.raises(requests.exceptions.SSLError) as refused:
            session.get(f"{entry}/unlisted.test:{gramine.port}/secret", timeout=20)
        assert "config.hosts" in str(refused.value)
        assert gramine.requests == before

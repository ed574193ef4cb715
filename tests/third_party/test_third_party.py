"""Third-party plugins, built as wheels and installed next to the atls-core wheel.

Run by ``nox -s third_party`` after ``example-plugin``, ``broken-plugin``,
``incompatible-plugin`` and ``duplicate-plugin`` were built and installed (no
dependency resolution: the incompatible one requires atls-core>=99).  These
tests prove, from outside the repository's packages, what a plugin author
relies on: discovery from metadata, selection imports one entry point, a broken
plugin breaks nothing until selected, incompatible and duplicate plugins are
refused, ``ATLS_DISABLE_PLUGINS``, ``atls plugins`` and ``atls verify-evidence``
with an option the plugin's spec declares, the core's pinning rule applied to a
plugin that only names its ``workload_identity``, and the conformance kit
against the installed example.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from atls_example.conformance import IMAGE, TEST_KEY, ExampleConformance
from atls_example.hmac_tee import HmacIssuer
from atls_example.plugin import OID as EXAMPLE_OID
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atls_core import binding as atls_binding
from atls_core._version import __version__ as core_version
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import (
    AppraisalFailed,
    BindingMismatch,
    ConfigurationError,
    DuplicateRegistration,
    IncompatiblePlugin,
    PluginLoadError,
    PluginNotFound,
)
from atls_core.policy import Policy
from atls_core.registry import ENTRY_POINT_GROUP, PluginManager
from atls_core.result import Status
from atls_core.selection import select_validator

ATLS = Path(sys.executable).with_name("atls")
FIXTURES = {
    "example": ("atls-example", "0.1.0", "atls_example.plugin"),
    "broken": ("atls-broken", "0.3.1", "atls_broken.plugin"),
    "incompatible": ("atls-incompatible", "0.2.0", "atls_incompatible.plugin"),
    "duplicate": ("atls-duplicate", "0.1.0", "atls_duplicate.plugin"),
}
ISSUED = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ATLS_DISABLE_PLUGINS"}
    env.update(extra)
    return env


def _manager(**environ: str) -> PluginManager:
    return PluginManager(environ=environ)


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=env or _environ(), timeout=120, check=False
    )


def _python(code: str, **environ: str) -> Any:
    """Run code in a fresh interpreter (a clean sys.modules); it prints one JSON value."""
    done = _run(sys.executable, "-c", code, env=_environ(**environ))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 1, done.stderr


def _spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- discovery -------------------------------------------------------------------------------


def test_fixtures_are_installed_as_wheels() -> None:
    for name, (distribution, version, value) in FIXTURES.items():
        dist = md.distribution(distribution)
        assert dist.version == version
        eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        assert [(ep.name, ep.value) for ep in eps] == [(name, value)]
        assert "site-packages" in Path(str(dist.locate_file(""))).parts


def test_discovery_reads_metadata_and_imports_nothing() -> None:
    found = _python(
        "import json, sys\n"
        "from atls_core.registry import PluginManager\n"
        "infos = PluginManager(environ={}).available()\n"
        "print(json.dumps({'infos': [[i.name, i.distribution, i.version, i.value] for i in infos],"
        " 'imported': sorted(m for m in sys.modules if m.startswith('atls_') and m != 'atls_core'"
        " and not m.startswith('atls_core.'))}))"
    )
    infos = {name: (dist, version, value) for name, dist, version, value in found["infos"]}
    for name, expected in FIXTURES.items():
        assert infos[name] == expected
    assert infos["insecure"][0] == "atls-core"
    assert found["imported"] == []


def test_selecting_example_imports_only_its_entry_point() -> None:
    imported = _python(
        "import json, sys\n"
        "from atls_core.registry import PluginManager\n"
        "from atls_core.selection import select_validator\n"
        "manager = PluginManager(environ={})\n"
        f"selected = select_validator('example.hmac', settings={{'key': {TEST_KEY!r}}},"
        " allow_insecure=True, manager=manager)\n"
        "assert selected.spec.id == 'example.hmac'\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('atls_'))))"
    )
    assert "atls_example.plugin" in imported
    assert "atls_example.hmac_tee" in imported
    for other in ("atls_broken", "atls_incompatible", "atls_duplicate"):
        assert not [m for m in imported if m == other or m.startswith(other + ".")], imported


# -- isolation of a broken plugin -------------------------------------------------------------


def test_broken_plugin_breaks_nothing_unless_selected() -> None:
    manager = _manager()
    selected = select_validator(
        "example.hmac", settings={"key": TEST_KEY}, allow_insecure=True, manager=manager
    )
    assert selected.plugin.distribution == "atls-example"
    with pytest.raises(PluginLoadError) as info:
        manager.validator_factory("broken.anything")
    error = info.value
    assert error.check == "plugins.import"
    for fragment in ("atls-broken", "0.3.1", "RuntimeError", "fails at import on purpose"):
        assert fragment in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    # The failure is remembered and the healthy plugin keeps working.
    with pytest.raises(PluginLoadError):
        manager.validator_factory("broken.anything")
    again = select_validator(
        "example.hmac", settings={"key": TEST_KEY}, allow_insecure=True, manager=manager
    )
    assert again.spec.id == "example.hmac"


def test_incompatible_plugin_is_refused_with_both_versions() -> None:
    with pytest.raises(IncompatiblePlugin) as info:
        _manager().validator_factory("incompatible.future")
    error = info.value
    assert isinstance(error, PluginLoadError)
    assert error.check == "plugins.core_version"
    assert error.expected == ">=99"
    assert error.actual == core_version
    assert "atls-incompatible 0.2.0" in str(error)
    assert core_version in str(error)
    assert "atls_incompatible.plugin" not in sys.modules, "refused before import"


# -- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("example", "duplicate"), ("duplicate", "example")])
def test_duplicate_oid_is_refused_in_either_order(first: str, second: str) -> None:
    manager = _manager()
    manager.load(first)
    with pytest.raises(DuplicateRegistration) as info:
        manager.load(second)
    assert info.value.check == "plugins.duplicate_oid"
    assert info.value.actual == EXAMPLE_OID
    # Nothing of the refused plugin was registered; the first one is intact.
    with pytest.raises(DuplicateRegistration):
        manager.validator_spec(f"{second}.hmac")
    assert manager.validator_spec(f"{first}.hmac").oids == (EXAMPLE_OID,)


def test_duplicate_plugin_name_is_refused() -> None:
    installed = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "example"]
    assert len(installed) == 1
    impostor = md.EntryPoint(name="example", value="atls_duplicate.plugin", group=ENTRY_POINT_GROUP)
    manager = PluginManager(environ={}, entry_points=[*installed, impostor])
    with pytest.raises(DuplicateRegistration) as info:
        manager.validator_factory("example.hmac")
    assert info.value.check == "plugins.duplicate_name"
    assert "atls-example 0.1.0" in str(info.value)


# -- ATLS_DISABLE_PLUGINS -----------------------------------------------------------------------


def test_disable_plugins_blocks_by_name() -> None:
    manager = _manager(ATLS_DISABLE_PLUGINS="example, broken")
    with pytest.raises(PluginNotFound) as info:
        select_validator(
            "example.hmac", settings={"key": TEST_KEY}, allow_insecure=True, manager=manager
        )
    assert info.value.check == "plugins.disabled"
    statuses = {s.info.name: s for s in manager.load_all()}
    assert statuses["example"].disabled
    assert statuses["broken"].disabled
    assert not statuses["example"].loaded
    assert statuses["duplicate"].loaded, "only the named plugins are blocked"


def test_disable_plugins_reaches_the_command_line(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.bin"
    evidence.write_bytes(b"x")
    done = _run(
        str(ATLS),
        "verify-evidence",
        str(evidence),
        "--validator",
        "example.hmac",
        env=_environ(ATLS_DISABLE_PLUGINS="example"),
    )
    assert done.returncode == 2
    _no_traceback(done)
    assert done.stderr.startswith("atls: plugins.disabled:")


# -- atls plugins -------------------------------------------------------------------------------


def _plugins_json(**environ: str) -> dict[str, Any]:
    done = _run(str(ATLS), "plugins", "--json", env=_environ(**environ))
    assert done.returncode == 2, done.stderr  # the broken plugins installed here fail the check
    assert done.stderr == ""
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_atls_plugins_json_lists_ok_broken_incompatible_and_disabled() -> None:
    data = _plugins_json(ATLS_DISABLE_PLUGINS="duplicate")
    assert data["atls_core"] == core_version
    plugins = {p["name"]: p for p in data["plugins"]}
    example = plugins["example"]
    assert (example["status"], example["distribution"], example["version"]) == (
        "ok",
        "atls-example",
        "0.1.0",
    )
    assert example["error"] is None
    (validator,) = example["validators"]
    assert validator == {
        "id": "example.hmac",
        "media_types": ["application/vnd.atls-example.hmac"],
        "oids": [EXAMPLE_OID],
        "transport": "certificate",
        "binding_scheme": "atls-v1",
        "binding_schemes": ["atls-v1"],
        "tee_type": "example-hmac",
        "insecure": True,
        "plugin_version": "0.1.0",  # from the wheel's metadata: the spec names no version
        "scheme_version": 1,
        "description": validator["description"],
        "settings": ["key", "key_file"],
        "measurements": ["image"],
        "workload_identity": ["image"],
        "pinning_options": [],
        "policy_options": [],
    }
    assert [i["id"] for i in example["issuers"]] == ["example.hmac"]
    broken = plugins["broken"]
    assert broken["status"] == "broken"
    assert broken["validators"] == []
    for fragment in ("plugins.import", "atls-broken 0.3.1", "RuntimeError"):
        assert fragment in broken["error"]
    incompatible = plugins["incompatible"]
    assert incompatible["status"] == "broken"
    assert "plugins.core_version" in incompatible["error"]
    assert ">=99" in incompatible["error"]
    assert core_version in incompatible["error"]
    assert plugins["duplicate"]["status"] == "disabled"
    assert plugins["insecure"]["status"] == "ok"


def test_atls_plugins_shows_the_oid_clash() -> None:
    plugins = {p["name"]: p for p in _plugins_json()["plugins"]}
    pair = [plugins["example"], plugins["duplicate"]]
    refused = [p for p in pair if p["status"] == "broken"]
    assert len(refused) == 1, "exactly one of the two loads; the other is refused, loudly"
    assert "plugins.duplicate_oid" in refused[0]["error"]
    assert EXAMPLE_OID in refused[0]["error"]


def test_atls_plugins_text() -> None:
    done = _run(str(ATLS), "plugins", env=_environ(ATLS_DISABLE_PLUGINS="duplicate"))
    assert done.returncode == 2  # broken and incompatible plugins are installed
    out = done.stdout
    assert "atls-example 0.1.0" in out
    assert "validator example.hmac [INSECURE: test only]" in out
    assert "settings: key, key_file" in out
    assert "plugin broken (atls_broken.plugin): BROKEN: plugins.import" in out
    assert "plugin duplicate (atls_duplicate.plugin): disabled" in out


# -- the conformance kit against the installed example ---------------------------------------


class TestExampleConformance(ExampleConformance):
    """The core's kit, from the installed atls-example wheel."""


def test_certificate_transport_end_to_end() -> None:
    """A certificate carrying example evidence, read by the core's tolerant reader."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    clock = FixedClock(ISSUED)
    evidence = HmacIssuer({"key": TEST_KEY, "image": "cd" * 32}, clock=clock).issue(
        atls_binding.report_data_for("atls-v1", spki_der=spki, nonce=b"")
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(ISSUED - dt.timedelta(days=1))
        .not_valid_after(ISSUED + dt.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(EXAMPLE_OID), evidence.data),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    peer = PeerCertificate.from_der(cert.public_bytes(serialization.Encoding.DER))
    selected = select_validator(
        "example.hmac",
        settings={"key": TEST_KEY},
        policy=Policy(reference_values={"image": "cd" * 32}),
        allow_insecure=True,
        manager=_manager(),
    )
    found = selected.validator.evidence_from_certificate(peer)
    assert found.data == evidence.data
    context = atls_binding.BindingContext(spki_der=peer.spki_der, nonce=atls_binding.new_nonce())
    result = selected.appraise(found, binding=context, clock=FixedClock(ISSUED))
    assert result.accepted
    assert result.status is Status.WARNING  # the toy always warns that it proves nothing
    assert result.binding.freshness is atls_binding.Freshness.KEY_ONLY
    assert result.measurements["image"] == "cd" * 32
    other = atls_binding.BindingContext(spki_der=_spki(), nonce=None)
    with pytest.raises(BindingMismatch):
        selected.appraise(found, binding=other, clock=FixedClock(ISSUED))


def test_the_core_applies_the_pinning_rule_to_a_third_party_validator() -> None:
    """The plugin only names ``workload_identity``; refusing an unpinned policy is the core's."""
    spki = _spki()
    evidence = HmacIssuer({"key": TEST_KEY, "image": IMAGE}, clock=FixedClock(ISSUED)).issue(
        atls_binding.report_data_for("atls-v1", spki_der=spki, nonce=b"")
    )
    context = atls_binding.BindingContext(spki_der=spki)

    def appraise(policy: Policy) -> Any:
        selected = select_validator(
            "example.hmac",
            settings={"key": TEST_KEY},
            policy=policy,
            allow_insecure=True,
            manager=_manager(),
        )
        return selected.appraise(evidence, binding=context, clock=FixedClock(ISSUED))

    unpinned = appraise(Policy())
    assert not unpinned.accepted
    (failure,) = [f for f in unpinned.failures if f.enforced]
    assert failure.check == "workload.unpinned"
    assert "reference_values.image" in failure.message
    assert IMAGE in failure.message, "the refusal shows the value to pin"
    with pytest.raises(AppraisalFailed) as info:
        unpinned.raise_for_status()
    assert info.value.check == "workload.unpinned"

    explore = appraise(Policy(allow_any_workload=True))
    assert explore.accepted
    assert explore.status is Status.WARNING
    assert any(w.startswith("workload.unpinned") for w in explore.warnings)

    pinned = appraise(Policy(reference_values={"image": IMAGE}))
    assert pinned.accepted
    assert not any(w.startswith("workload.unpinned") for w in pinned.warnings)
    other = appraise(Policy(reference_values={"image": "ee" * 32}))
    assert [f.check for f in other.failures if f.enforced] == ["reference.image"]


def test_insecure_example_needs_explicit_permission() -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator("example.hmac", settings={"key": TEST_KEY}, manager=_manager())
    assert info.value.check == "config.insecure"


# -- atls verify-evidence with the example validator ------------------------------------------


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """Evidence recorded at ISSUED (valid for an hour) and the key file for --key-file."""
    issuer = HmacIssuer({"key": TEST_KEY, "image": IMAGE}, clock=FixedClock(ISSUED))
    evidence = issuer.issue(atls_binding.report_data_for("atls-v1", spki_der=_spki(), nonce=b""))
    path = tmp_path / "evidence.bin"
    path.write_bytes(evidence.data)
    key = tmp_path / "hmac.key"
    key.write_text(TEST_KEY + "\n")
    return path, key


def _verify(evidence: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(str(ATLS), "verify-evidence", str(evidence), "--validator", "example.hmac", *extra)


PIN = ("--reference", f"image={IMAGE}")
"""Pins the recorded evidence's workload on the command line."""


def test_verify_evidence_accepts_at_the_recorded_time(recorded: tuple[Path, Path]) -> None:
    evidence, key = recorded
    at = str(int(ISSUED.timestamp()) + 60)
    done = _verify(evidence, "--key-file", str(key), "--at", at, "--allow-insecure", *PIN, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["accepted"] is True
    assert result["verifier"]["validator"] == "example.hmac"
    assert result["binding"]["freshness"] == "unbound"
    assert result["measurements"] == {"image": IMAGE}
    assert result["issued_at"] == "2025-06-01T12:01:00Z"
    assert not [w for w in result["warnings"] if w.startswith("workload.unpinned")]
    text = _verify(
        evidence, "--key-file", str(key), "--at", "2025-06-01T12:30:00Z", "--allow-insecure", *PIN
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("ACCEPTED (status: warning)")
    assert "image: " + IMAGE in text.stdout
    assert "offline appraisal" in text.stdout


def test_verify_evidence_refuses_an_unpinned_workload(recorded: tuple[Path, Path]) -> None:
    evidence, key = recorded
    at = ["--key-file", str(key), "--at", str(int(ISSUED.timestamp()) + 60), "--allow-insecure"]
    unpinned = _verify(evidence, *at)
    assert unpinned.returncode == 1
    _no_traceback(unpinned)
    assert unpinned.stderr.startswith("atls: workload.unpinned:")
    assert "reference_values.image" in unpinned.stderr
    assert IMAGE in unpinned.stderr, "the refusal shows the value to pin"
    explore = _verify(evidence, *at, "--allow-any-workload", "--json")
    assert explore.returncode == 0, explore.stderr
    result = json.loads(explore.stdout)
    assert result["status"] == "warning"
    assert [w for w in result["warnings"] if w.startswith("workload.unpinned")]


def test_verify_evidence_rejections_are_one_line(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, key = recorded
    base = ["--at", str(int(ISSUED.timestamp()) + 60), "--allow-insecure"]
    at = [*base, *PIN]
    wrong = tmp_path / "wrong.key"
    wrong.write_text("ff" * 32)
    done = _verify(evidence, "--key-file", str(wrong), *at)
    assert done.returncode == 1
    _no_traceback(done)
    assert done.stderr.startswith("atls: example.mac:")

    late = _verify(
        evidence, "--key-file", str(key), "--at", "2025-06-01T13:00:00Z", "--allow-insecure", *PIN
    )
    assert late.returncode == 1
    _no_traceback(late)
    assert late.stderr.startswith("atls: example.validity:")

    policy = tmp_path / "policy.toml"
    policy.write_text('id = "pinned"\n[reference_values]\nimage = "' + "ee" * 32 + '"\n')
    pinned = _verify(evidence, "--key-file", str(key), "--policy", str(policy), *base)
    assert pinned.returncode == 1
    _no_traceback(pinned)
    assert pinned.stderr.startswith("atls: reference.image:")
    assert "REJECTED (status: contraindicated)" in pinned.stdout
    assert "policy:        pinned" in pinned.stdout


def test_verify_evidence_usage_errors(recorded: tuple[Path, Path]) -> None:
    evidence, key = recorded
    refused = _verify(evidence, "--key-file", str(key))
    assert refused.returncode == 2
    _no_traceback(refused)
    assert refused.stderr.startswith("atls: config.insecure:")
    assert "--allow-insecure" in refused.stderr

    help_text = _verify(evidence, "--help")
    assert help_text.returncode == 0
    assert "--key-file FILE" in help_text.stdout

    unknown = _run(str(ATLS), "verify-evidence", str(evidence), "--validator", "broken.thing")
    assert unknown.returncode == 2
    _no_traceback(unknown)
    assert "atls-broken 0.3.1" in unknown.stderr

    foreign = _verify(evidence, "--hardware-key", "00", "--allow-insecure")
    assert foreign.returncode == 2, "another plugin's option is not accepted"

"""Configuration: host matching, secrets by indirection, located errors, safe selection."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from atls_core.config import ATLSConfig, Secret, reveal
from atls_core.errors import ConfigurationError
from atls_core.registry import PluginManager
from atls_core.selection import select_validator, validator_for_host
from atls_core.testing.plugins import manager_with
from atls_core.testing.simulated import SimulatedHardware

SECRET_VALUE = "s3cr3t-value-never-shown"
HARDWARE = SimulatedHardware.generate()


def _manager() -> PluginManager:
    return manager_with()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atls.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _host(validator: str = "insecure.simulated", **body: Any) -> dict[str, Any]:
    return {"validator": validator, **body}


# -- host rules -----------------------------------------------------------------------------


def test_exact_names_win_over_patterns_and_longest_pattern_wins() -> None:
    config = ATLSConfig.from_mapping(
        {
            "hosts": {
                "*.example.com": _host("a.any"),
                "*.api.example.com": _host("a.api"),
                "api.example.com": _host("a.exact"),
                "db-?.example.com": _host("a.db"),
            }
        },
        check=False,  # rule matching only: the validator ids are placeholders
    )
    assert config.rule_for("api.example.com").validator == "a.exact"
    assert config.rule_for("API.Example.COM.").validator == "a.exact"
    assert config.rule_for("v1.api.example.com").validator == "a.api"
    assert config.rule_for("www.example.com").validator == "a.any"
    assert config.rule_for("db-1.example.com").validator == "a.db"
    with pytest.raises(ConfigurationError) as info:
        config.rule_for("example.org")
    assert info.value.check == "config.hosts"
    assert info.value.actual == "example.org"
    assert "<dict>" in str(info.value)


def test_exact_rule_wins_regardless_of_order() -> None:
    config = ATLSConfig.from_mapping(
        {"hosts": {"api.example.com": _host("a.exact"), "*.example.com": _host("a.any")}},
        check=False,
    )
    assert config.rule_for("api.example.com").validator == "a.exact"


def test_general_section_and_rule_fields(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [atls]
        allow_insecure_test_validators = true
        disable_plugins = ["gramine"]

        [hosts."svc.local"]
        validator = "insecure.simulated"
        pki = true
        [hosts."svc.local".policy]
        id = "p"
        allow_debug = true
        [hosts."svc.local".settings]
        hardware_key = "00"
        """,
    )
    config = ATLSConfig.load(path)
    assert config.allow_insecure_test_validators is True
    assert config.disable_plugins == {"gramine"}
    assert config.source == str(path)
    rule = config.rule_for("svc.local")
    assert rule.pki is True
    assert rule.policy.id == "p"
    assert rule.policy.allow_debug is True
    assert dict(rule.settings) == {"hardware_key": "00"}
    assert rule.where == f'{path}: hosts."svc.local"'
    with pytest.raises(TypeError):
        rule.settings["x"] = 1  # type: ignore[index]


# -- secrets --------------------------------------------------------------------------------


def test_env_and_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text(SECRET_VALUE + "\n")
    path = _write(
        tmp_path,
        """
        [hosts."a"]
        validator = "x.y"
        [hosts."a".settings]
        from_env = { "$env" = "ATLS_TEST_SECRET" }
        from_file = { "$file" = "key.txt" }
        nested = { list = [{ "$env" = "ATLS_TEST_SECRET" }] }
        """,
    )
    config = ATLSConfig.load(path, environ={"ATLS_TEST_SECRET": SECRET_VALUE}, check=False)
    settings = config.rule_for("a").settings
    for secret in (settings["from_env"], settings["from_file"], settings["nested"]["list"][0]):
        assert isinstance(secret, Secret)
        assert secret.reveal() == SECRET_VALUE
        assert reveal(secret) == SECRET_VALUE
        assert SECRET_VALUE not in repr(secret)
        assert SECRET_VALUE not in str(secret)
        assert SECRET_VALUE not in f"{secret}"
    assert settings["from_env"].origin == "$env ATLS_TEST_SECRET"
    assert str(tmp_path / "key.txt") in settings["from_file"].origin
    assert reveal("plain") == "plain"
    for text in (repr(config), str(config), repr(config.rule_for("a")), repr(settings)):
        assert SECRET_VALUE not in text


def test_secrets_are_not_equal_by_value() -> None:
    assert Secret(SECRET_VALUE, "a") != Secret(SECRET_VALUE, "a")


def test_secret_lives_in_its_own_module_and_config_still_exports_it() -> None:
    """Settings rules take secrets without loading hosts and policies; old imports keep working."""
    import atls_core
    from atls_core import secret

    assert Secret is secret.Secret
    assert reveal is secret.reveal
    assert atls_core.Secret is secret.Secret


def test_missing_env_secret_names_the_key_not_a_value() -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(
            {"hosts": {"a": _host(settings={"api_key": {"$env": "ATLS_UNSET_VAR"}})}},
            source="cfg.toml",
            environ={"OTHER": SECRET_VALUE},
        )
    text = str(info.value)
    assert info.value.check == "config.secret"
    assert 'cfg.toml: hosts."a".settings.api_key' in text
    assert "ATLS_UNSET_VAR" in text
    assert SECRET_VALUE not in text


def test_missing_file_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(
            {"hosts": {"a": _host(settings={"k": {"$file": "absent.key"}})}},
            source="cfg.toml",
            base=tmp_path,
            environ={},
        )
    assert info.value.check == "config.secret"
    assert str(tmp_path / "absent.key") in str(info.value)
    assert 'hosts."a".settings.k' in str(info.value)


def test_secret_reference_has_exactly_one_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(
            {"hosts": {"a": _host(settings={"k": {"$env": "X", "$file": "y"}})}}, environ={"X": "1"}
        )
    assert "exactly one key" in str(info.value)


# -- errors name the file, the key and the problem ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nx = 1\n", "unknown top-level key(s) ['server']"),
        ("atls = 5\n", "[atls] must be a table"),
        ("[atls]\nallow_insecure = true\n", "[atls]: unknown key(s) ['allow_insecure']"),
        (
            "[atls]\nallow_insecure_test_validators = 1\n",
            "atls.allow_insecure_test_validators must be true or false",
        ),
        ("[atls]\ndisable_plugins = 'tdx'\n", "atls.disable_plugins must be a list"),
        ("hosts = 1\n", "[hosts] must be a table"),
        ('[hosts]\n"a" = 1\n', 'hosts."a" must be a table'),
        ('[hosts."a"]\nvalidator = "x.y"\nport = 1\n', "unknown key(s) ['port']"),
        ('[hosts."a"]\nvalidator = "tdx"\n', 'hosts."a".validator must be a validator id'),
        ('[hosts."a"]\npki = true\n', 'hosts."a".validator must be a validator id'),
        ('[hosts."a"]\nvalidator = "x.y"\npki = "no"\n', 'hosts."a".pki must be true or false'),
        ('[hosts."a"]\nvalidator = "x.y"\nsettings = 3\n', 'hosts."a".settings must be a table'),
        (
            '[hosts."a"]\nvalidator = "x.y"\n[hosts."a".policy]\nallow_debug = "yes"\n',
            'hosts."a".policy.allow_debug must be true or false',
        ),
        ("[hosts.\n", "invalid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.load(path, environ={})
    assert fragment in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.check.startswith("config.")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.load(tmp_path / "missing.toml")
    assert info.value.check == "config.file"
    assert "missing.toml" in str(info.value)
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[hosts."caf\u00e9.example"]\n'.encode("latin-1"))
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.load(latin)
    assert info.value.check == "config.file"
    assert "not UTF-8" in str(info.value)


# -- selection -------------------------------------------------------------------------------


def _config(check: bool = False, **general: Any) -> ATLSConfig:
    body = _host(settings=HARDWARE.validator_settings())
    return ATLSConfig.from_mapping(
        {"atls": general, "hosts": {"sim.local": body}},
        source="cfg.toml",
        environ={},
        manager=_manager(),
        check=check,
    )


def test_insecure_validator_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError) as info:
        validator_for_host(_config(), "sim.local", manager=_manager())
    assert info.value.check == "config.insecure"
    assert "allow_insecure_test_validators" in str(info.value)
    assert 'cfg.toml: hosts."sim.local"' in str(info.value)
    with pytest.raises(ConfigurationError) as at_load:
        _config(check=True)
    assert at_load.value.check == "config.insecure"
    selected = validator_for_host(
        _config(allow_insecure_test_validators=True), "sim.local", manager=_manager()
    )
    assert selected.spec.id == "insecure.simulated"
    assert selected.plugin.distribution == "atls-core"


def test_disabled_plugin_in_configuration() -> None:
    config = _config(allow_insecure_test_validators=True, disable_plugins=["insecure"])
    with pytest.raises(ConfigurationError) as info:
        validator_for_host(config, "sim.local", manager=_manager())
    assert info.value.check == "config.disabled"
    with pytest.raises(ConfigurationError) as at_load:
        _config(check=True, allow_insecure_test_validators=True, disable_plugins=["insecure"])
    assert at_load.value.check == "config.disabled"


# -- mistakes are found when the configuration is loaded ----------------------------------------


def _load(tmp_path: Path, text: str) -> ATLSConfig:
    return ATLSConfig.load(_write(tmp_path, text), manager=_manager())


@pytest.mark.parametrize(
    ("body", "check", "fragment"),
    [
        ('validator = "nosuch.thing"', "config.validator", "no installed plugin provides"),
        ('validator = "insecure.nosuch"', "config.validator", "provides no validator"),
        (
            'validator = "insecure.simulated"\n[hosts."h".settings]\nhardwar_key = "00"',
            "config.settings",
            "did you mean 'hardware_key'",
        ),
        (
            'validator = "insecure.simulated"\n[hosts."h".policy]\nacepted_tcb_statuses = []',
            "config.policy_options",
            "did you mean 'accepted_tcb_statuses'",
        ),
        (
            'validator = "insecure.simulated"\n[hosts."h".policy.reference_values]\nmrtd = "00"',
            "config.reference_values",
            "mrtd",
        ),
        (
            'validator = "insecure.simulated"\n[hosts."h".policy.reference_values]\nimage = "xyz"',
            "config.reference_values",
            "hex digits",
        ),
    ],
)
def test_configuration_mistakes_fail_at_load(
    tmp_path: Path, body: str, check: str, fragment: str
) -> None:
    text = '[atls]\nallow_insecure_test_validators = true\n[hosts."h"]\n' + body + "\n"
    with pytest.raises(ConfigurationError) as info:
        _load(tmp_path, text)
    assert info.value.check == check
    assert fragment in str(info.value)
    assert str(tmp_path / "atls.toml") in str(info.value), "the error names the file"
    assert 'hosts."h"' in str(info.value), "the error names the host"


def test_a_policy_built_in_code_takes_plain_hex_strings() -> None:
    from atls_core.policy import Policy

    policy = Policy(reference_values={"image": "0xAB", "config": ["01", b"\x02"]})
    assert policy.reference_values["image"].accepted == {"ab"}
    assert policy.reference_values["config"].accepted == {"01", "02"}
    with pytest.raises(ConfigurationError) as info:
        Policy(reference_values={"image": "not hex"})
    assert info.value.check == "config.reference_values"


@pytest.mark.parametrize(
    ("kwargs", "check", "unknown"),
    [
        ({"settings": {"hardware_key": "00", "api_kee": 1}}, "config.settings", ["api_kee"]),
        ({"policy": {"min_svn": 3}}, "config.policy_options", ["min_svn"]),
        ({"policy": {"reference_values": {"mrtd": "00"}}}, "config.reference_values", ["mrtd"]),
    ],
)
def test_unknown_names_are_refused(kwargs: dict[str, Any], check: str, unknown: list[str]) -> None:
    from atls_core.policy import Policy

    policy = Policy.from_mapping(kwargs.get("policy", {}))
    settings = kwargs.get("settings", HARDWARE.validator_settings())
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "insecure.simulated",
            policy=policy,
            settings=settings,
            allow_insecure=True,
            manager=_manager(),
            where='cfg.toml: hosts."x"',
        )
    assert info.value.check == check
    assert info.value.actual == unknown
    assert 'cfg.toml: hosts."x"' in str(info.value)


def test_a_setting_the_validator_refuses_names_the_host_rule() -> None:
    """Refused while the validator is built (its settings rules), not only by name checks."""
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "insecure.simulated",
            settings={"hardware_key": "zz"},
            allow_insecure=True,
            manager=_manager(),
            where='cfg.toml: hosts."x"',
        )
    assert str(info.value).startswith('config.settings: cfg.toml: hosts."x": settings.hardware_key')


def test_secret_values_stay_out_of_selection_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {"hardware_key": Secret(SECRET_VALUE, "$env X"), "bogus": Secret(SECRET_VALUE, "y")}
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "insecure.simulated", settings=settings, allow_insecure=True, manager=_manager()
        )
    assert SECRET_VALUE not in str(info.value)
    assert SECRET_VALUE not in repr(info.value)
    assert SECRET_VALUE not in caplog.text


def test_unicode_host_patterns_become_idna() -> None:
    config = ATLSConfig.from_mapping(
        {"hosts": {"*.bücher.example": _host("a.b"), "API.Example.com": _host("a.c")}},
        check=False,
    )
    assert config.rule_for("shop.xn--bcher-kva.example").validator == "a.b"
    assert config.rule_for("api.example.com").validator == "a.c"
    assert [r.pattern for r in config.hosts] == ["*.xn--bcher-kva.example", "api.example.com"]


def test_a_mistyped_common_policy_key_names_the_common_keys() -> None:
    from atls_core.policy import Policy

    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "insecure.simulated",
            policy=Policy.from_mapping({"alow_debug": True}),
            settings=HARDWARE.validator_settings(),
            allow_insecure=True,
            manager=_manager(),
        )
    assert "did you mean 'allow_debug'" in str(info.value)
    assert "allow_any_workload" in info.value.expected


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({"atsl": {}}, "'atls'"),
        ({"atls": {"disable_plugin": []}}, "'disable_plugins'"),
        ({"hosts": {"a": {"validatr": "x"}}}, "'validator'"),
        (
            {
                "hosts": {
                    "a": {"validator": "a.b", "policy": {"accepted_tcb_statuses": ["UpToDat"]}}
                }
            },
            "'UpToDate'",
        ),
    ],
)
def test_a_mistyped_configuration_key_or_status_gets_a_suggestion(
    data: dict[str, Any], hint: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(data, check=False)
    assert f"(did you mean {hint}?)" in str(info.value)


@pytest.mark.parametrize("data", [{1: "x"}, {"atls": {1: True}}, {"atls": {}, 2: [], "hostz": {}}])
def test_keys_that_are_not_text_are_refused_as_unknown(data: dict[Any, Any]) -> None:
    """YAML or JSON can give a number as a key: refused like any unknown key, no TypeError."""
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(data, check=False)
    assert info.value.check == "config.keys"

"""One set of rules for validator settings, declared once as a class."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from atls_core.errors import ConfigurationError
from atls_core.interfaces import CliOption
from atls_core.secret import Secret
from atls_core.self_signed import self_signed_certificate
from atls_core.settings import (
    Invalid,
    SpecInputs,
    certificate,
    check_url,
    duration,
    existing_path,
    flag,
    hex_bytes,
    integer,
    is_loopback,
    joined,
    list_of,
    load,
    path,
    seconds,
    secret,
    secret_or_text,
    setting,
    setting_names,
    settings_class,
    spec_inputs,
    table,
    text,
    url,
)

SECRET = "s3cr3t-value"


@settings_class
class Example:
    """Every rule once, as a plugin would declare its settings."""

    endpoint: str = setting(url(http_knob="allow_http_loopback"))
    timeout: float = setting(seconds(), default=5.0)
    refresh: float = setting(seconds(positive=False, at_most=3600), default=60.0)
    leeway: dt.timedelta = setting(duration(at_most=600), default=dt.timedelta(seconds=30))
    check: bool = setting(flag(), default=False)
    image: bytes | None = setting(hex_bytes(4), default=None)
    names: tuple[str, ...] = setting(list_of(text()), default=())
    mode: str = setting(text(choices=("fast", "safe")), default="safe")
    token: Secret | None = setting(secret(), default=None, hint="use $env")
    label: str | Secret | None = setting(secret_or_text(), default=None)
    extra: Mapping[str, Any] | None = setting(table(), default=None)
    root: Path | None = setting(existing_path(), default=None)
    cache: Path | None = setting(existing_path(directory=True), default=None)
    tags: list[str] = setting(list_of(text()), default=attrs.Factory(list))
    allow_http_loopback: bool = setting(flag(), default=False, test_only=True)

    def __attrs_post_init__(self) -> None:
        if self.check and self.image is None:
            raise Invalid("is needed when check is on", setting="image")
        if self.mode == "fast" and self.check:
            raise Invalid("fast mode does not check")


def _read(**settings: Any) -> Example:
    return load(Example, {"endpoint": "https://svc.example/v1", **settings})


def _refused(**settings: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        _read(**settings)
    assert info.value.check == "config.settings"
    return info.value


def test_names_are_declared_once() -> None:
    assert setting_names(Example)[:3] == ("endpoint", "timeout", "refresh")
    assert setting_names(Example)[-2:] == ("tags", "allow_http_loopback")
    assert setting_names(Example, tests_only=True) == ("allow_http_loopback",)


def test_defaults_and_typed_values() -> None:
    read = _read()
    assert (read.timeout, read.refresh, read.leeway) == (5.0, 60.0, dt.timedelta(seconds=30))
    assert read.tags == []
    assert read.names == ()
    assert read.image is None
    read = _read(
        timeout=2,
        refresh=0,
        leeway=1.5,
        image="DEADbeef",
        names=("a", Secret("b", "$env B")),  # configuration hands lists over as tuples
        extra={"k": [1]},
        check=True,
    )
    assert read.timeout == 2.0
    assert isinstance(read.timeout, float)
    assert read.refresh == 0.0
    assert read.leeway == dt.timedelta(seconds=1.5)
    assert read.image == bytes.fromhex("deadbeef")
    assert read.names == ("a", "b")
    assert read.extra == {"k": [1]}
    assert read.extra is not None
    with pytest.raises(TypeError):
        read.extra["k"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"timeout": "5"}, "settings.timeout"),  # text is not a number, in every plugin
        ({"timeout": True}, "settings.timeout"),
        ({"timeout": 0}, "settings.timeout"),
        ({"timeout": -1}, "settings.timeout"),
        ({"timeout": math.inf}, "settings.timeout"),
        ({"timeout": math.nan}, "settings.timeout"),
        ({"timeout": 10**400}, "settings.timeout"),
        ({"refresh": 3601}, "settings.refresh"),
        ({"leeway": 601}, "settings.leeway"),
        ({"check": "true"}, "settings.check"),  # a TOML boolean only
        ({"check": 1}, "settings.check"),
        ({"image": "deadbe"}, "settings.image"),
        ({"image": "0xdeadbe"}, "settings.image"),
        ({"image": "deadbeeg"}, "settings.image"),
        ({"names": "a"}, "settings.names"),  # a bare string is not a list
        ({"names": ["a", ""]}, "settings.names[1]"),
        ({"names": ["a", 5]}, "settings.names[1]"),
        ({"mode": "slow"}, "settings.mode"),
        ({"mode": "  "}, "settings.mode"),
        ({"extra": ["k"]}, "settings.extra"),
        ({"root": "/nonexistent/root.pem"}, "settings.root"),
        ({"cache": __file__}, "settings.cache"),  # a file, not a directory
        ({"endpoint": None}, "settings.endpoint is required"),
        ({"check": True}, "settings.image is needed when check is on"),
        ({"check": True, "image": "00000000", "mode": "fast"}, "settings: fast mode"),
    ],
)
def test_every_refusal_names_the_setting(settings: dict[str, Any], named: str) -> None:
    assert named in str(_refused(**settings))


def test_unknown_names_are_refused_unless_the_class_reads_a_part() -> None:
    error = _refused(timeuot=5)
    assert "timeuot" in str(error)
    assert "did you mean 'timeout'" in str(error)
    read = load(Example, {"endpoint": "https://x", "wire": "someone else's"}, partial=True)
    assert read.endpoint == "https://x"


def test_where_names_the_configuration_place() -> None:
    with pytest.raises(ConfigurationError) as info:
        load(Example, {"endpoint": "ftp://x"}, where='atls.toml:hosts."a".settings')
    assert str(info.value).startswith('config.settings: atls.toml:hosts."a".settings.endpoint ')


def test_secrets_are_text_but_only_shown_by_origin(tmp_path: Path) -> None:
    path = tmp_path / "root.pem"
    path.write_text("x")
    read = _read(
        endpoint=Secret("https://svc.example/v1", "$env URL"),
        root=Secret(str(path), "$file p"),
        token=Secret(SECRET, "$env TOKEN"),
        label=Secret(SECRET, "$env LABEL"),
    )
    assert read.endpoint == "https://svc.example/v1"
    assert read.root == path
    assert isinstance(read.token, Secret)
    assert read.token.reveal() == SECRET
    assert isinstance(read.label, Secret)  # kept wrapped: it stays masked downstream
    assert _read(label="plain").label == "plain"
    for settings in (
        {"timeout": Secret(SECRET, "$env T")},
        {"image": Secret(SECRET, "$env T")},
        {"mode": Secret(SECRET, "$env T")},
        {"endpoint": Secret(f"http://{SECRET}.example/", "$env T")},
        {"root": Secret(f"/nonexistent/{SECRET}", "$env T")},
        {"names": [Secret(f"{SECRET}", "$env T")], "mode": "x"},
    ):
        error = _refused(**settings)
        assert SECRET not in str(error)
        assert SECRET not in repr(error.to_dict())
        assert "$env T" in str(error) or "settings.mode" in str(error)


def test_a_secret_setting_refuses_plain_text_with_its_hint() -> None:
    error = _refused(token=SECRET)
    assert "settings.token must not be plain text: use $env" in str(error)
    assert SECRET not in str(error)
    assert "use $env" in str(_refused(token=Secret("  ", "$env T")))


@pytest.mark.parametrize(
    ("value", "plain", "with_knob"),
    [
        ("https://svc.example:8443/a?b=c", True, True),
        ("https://svc.example/#", True, True),
        ("http://127.0.0.1:8080/x", False, True),  # loopback: only with the test knob
        ("http://[::1]:8080/x", False, True),
        ("http://localhost/x", False, True),
        ("http://svc.example/", False, False),
        ("http://10.0.0.1/x", False, False),
        ("http://localhost.example/x", False, False),
        ("https://svc.example/#frag", False, False),
        ("ftp://svc.example/", False, False),
        ("https:///path", False, False),
        ("https://svc.example:port/", False, False),
        ("https://[::1/", False, False),
        ("svc.example", False, False),
    ],
)
def test_urls_are_https_and_http_only_to_loopback_with_the_test_knob(
    value: str, plain: bool, with_knob: bool
) -> None:
    for knob, allowed in ((False, plain), (True, with_knob)):
        if allowed:
            assert _read(endpoint=value, allow_http_loopback=knob).endpoint == value
        else:
            assert "settings.endpoint" in str(_refused(endpoint=value, allow_http_loopback=knob))
    if with_knob and not plain:
        assert "allow_http_loopback = true" in str(_refused(endpoint=value))
    assert "allow_http_loopback" in str(_refused(endpoint=value, allow_http_loopback="true"))


def test_url_errors_show_no_credentials() -> None:
    error = _refused(endpoint=f"http://user:{SECRET}@svc.example/p?key={SECRET}")
    assert SECRET not in str(error)
    assert error.actual == "http://svc.example:80/***"


def test_origins() -> None:
    @settings_class
    class Origins:
        instances: tuple[str, ...] = setting(list_of(url(origin=True), non_empty=True))

    read = load(Origins, {"instances": ["HTTPS://X.Example/", "https://y.example:8443"]})
    assert read.instances == ("https://x.example", "https://y.example:8443")
    for bad in ("https://x.example/p", "https://x.example?q=1", "https://u:p@x.example"):
        with pytest.raises(ConfigurationError, match=r"settings\.instances\[0\]"):
            load(Origins, {"instances": [bad]})
    with pytest.raises(ConfigurationError, match="must not be empty"):
        load(Origins, {"instances": []})


def test_the_http_knob_must_be_a_declared_test_flag() -> None:
    @settings_class
    class Misdeclared:
        endpoint: str = setting(url(http_knob="insecure"))
        insecure: bool = setting(flag(), default=False)  # not test_only

    with pytest.raises(TypeError, match="tests-only flag"):
        load(Misdeclared, {"endpoint": "https://x"})


def test_fields_must_be_declared_as_settings() -> None:
    @settings_class
    class Plain:
        value: int = attrs.field(default=0)

    with pytest.raises(TypeError, match="not declared"):
        setting_names(Plain)


def test_paths_expand_home_and_accept_path_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "root.pem").write_text("x")
    assert _read(root="~/root.pem").root == tmp_path / "root.pem"
    assert _read(root=tmp_path / "root.pem", cache=tmp_path).cache == tmp_path


def test_check_url_and_loopback_names() -> None:
    assert check_url("https://a.example/x", name="api_url") == "https://a.example/x"
    assert check_url("http://127.0.0.1/", name="api_url", allow_http_loopback=True)
    with pytest.raises(ConfigurationError, match=r"settings\.api_url must be an https URL"):
        check_url("http://127.0.0.1/", name="api_url")
    assert [is_loopback(h) for h in ("127.0.0.2", "::1", "[::1]", "LocalHost")] == [True] * 4
    assert [is_loopback(h) for h in ("10.0.0.1", "localhost.example", "")] == [False] * 3


@settings_class
class Anchored:
    """A tests-only root and a place that need not exist yet, as DCAP declares them."""

    mirror: str | None = setting(url(plain_http=True), default=None, repr=False)
    cache: Path | None = setting(path(), default=None)
    root: bytes | None = setting(certificate(knob="allow_root"), default=None, test_only=True)
    allow_root: bool = setting(flag(), default=False, test_only=True)

    def __attrs_post_init__(self) -> None:
        if self.cache is not None and self.mirror is None:
            raise Invalid("is only used with a mirror", setting="cache")


def _anchored(**settings: Any) -> Anchored:
    return load(Anchored, settings, check="config.example")


def test_certificates_are_read_as_der_from_a_file_or_bytes(tmp_path: Path) -> None:
    der = self_signed_certificate(ed25519.Ed25519PrivateKey.generate())
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    (tmp_path / "root.pem").write_bytes(pem)
    for given in (der, pem, tmp_path / "root.pem", str(tmp_path / "root.pem")):
        assert _anchored(root=given, allow_root=True).root == der
    bad: object
    for bad, why in (
        (b"not a certificate", "is not a PEM or DER certificate"),
        (tmp_path / "missing.pem", "cannot be read"),
        (5, "must be a non-empty string"),
    ):
        with pytest.raises(ConfigurationError, match=rf"settings\.root {why}") as info:
            _anchored(root=bad, allow_root=True)
        assert info.value.check == "config.example"


def test_a_tests_only_certificate_needs_its_knob_before_it_is_read(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"root is for tests only and needs allow_root = true"
    ) as info:
        _anchored(root=tmp_path / "never-read.pem")
    assert info.value.check == "config.example.root"
    assert setting_names(Anchored, tests_only=True) == ("root", "allow_root")


def test_paths_that_need_not_exist_and_plain_http_mirrors(tmp_path: Path) -> None:
    read = _anchored(mirror="http://mirror.example:8081/base", cache=tmp_path / "new" / "dir")
    assert read.cache == tmp_path / "new" / "dir"
    assert read.mirror == "http://mirror.example:8081/base"
    assert "mirror.example" not in repr(read)
    with pytest.raises(ConfigurationError, match=r"must be an http\(s\) URL") as info:
        _anchored(mirror="ftp://mirror.example")
    assert info.value.check == "config.example"
    with pytest.raises(ConfigurationError, match=r"settings\.cache is only used with a mirror"):
        _anchored(cache=tmp_path)
    with pytest.raises(ConfigurationError, match=r"settings\.cache must be a non-empty string"):
        _anchored(mirror="https://m.example", cache="  ")


def test_spec_inputs_come_from_the_class_and_join() -> None:
    option = CliOption(flag="--mirror", setting="mirror", help="a mirror", metavar="URL")
    inputs = spec_inputs(Anchored, [option])
    assert inputs == SpecInputs(
        settings=("mirror", "cache", "root", "allow_root"),
        test_settings=("root", "allow_root"),
        cli_options=(option,),
    )
    both = joined(inputs, spec_inputs(Example), settings=("own",))
    assert both["settings"][-2:] == ("allow_http_loopback", "own")
    assert both["test_settings"] == ("root", "allow_root", "allow_http_loopback")
    assert both["cli_options"] == (option,)
    stray = CliOption(flag="--nope", setting="nope", help="not a setting")
    with pytest.raises(TypeError, match="--nope sets nope, not a Anchored setting"):
        spec_inputs(Anchored, [stray])


@settings_class
class _Counted:
    svn: int = setting(integer(at_least=0, at_most=65535), default=1)
    skew: int = setting(integer(), default=0)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("5", "settings.svn must be a whole number (got '5')"),
        (True, "settings.svn must be a whole number (got True)"),
        (2.0, "settings.svn must be a whole number (got 2.0)"),
        (-1, "settings.svn is out of range (expected >= 0 and <= 65535, got -1)"),
        (65536, "settings.svn is out of range (expected >= 0 and <= 65535, got 65536)"),
    ],
)
def test_integers_are_toml_integers_within_bounds(raw: object, problem: str) -> None:
    assert load(_Counted, {}).svn == 1
    assert load(_Counted, {"svn": 65535, "skew": -7}) == _Counted(svn=65535, skew=-7)
    with pytest.raises(ConfigurationError) as info:
        load(_Counted, {"svn": raw})
    assert info.value.check == "config.settings"
    assert problem in str(info.value)

"""Redaction: URLs name services by origin only; errors never render credentials or paths."""

from __future__ import annotations

import json

import pytest

from atls_core import errors as e
from atls_core.redact import MASK, redact_text, redact_url, redact_value
from atls_core.secret import Secret

TOKEN = "tok-9f8e7d"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"https://user:{TOKEN}@pccs.example/sgx/v4?x=1", "https://pccs.example:443/***"),
        (f"http://127.0.0.1:8081/certs?api_key={TOKEN}#frag", "http://127.0.0.1:8081/***"),
        (f"https://{TOKEN}@[::1]:9/x", "https://[::1]:9/***"),
        (f"https://pccs.example/{TOKEN}/sgx/certification/v4", "https://pccs.example:443/***"),
        (f"https://pccs.example/?{TOKEN}", "https://pccs.example:443/***"),
        (f"https://pccs.example#{TOKEN}", "https://pccs.example:443/***"),
        ("HTTPS://Keys.Example", "https://keys.example:443"),
        ("https://keys.example/", "https://keys.example:443"),
        (f"https://u:p@ss{TOKEN}@host/p", "https://host:443/***"),
        (f"https://u:{TOKEN}@host:notaport/{TOKEN}", "https://host:notaport/***"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, named: str) -> None:
    assert redact_url(url) == named
    assert TOKEN not in redact_url(url)


def test_redact_text_scrubs_urls_and_named_secrets() -> None:
    text = (
        f"fetching https://user:{TOKEN}@pccs.example/v4/tcb?fmspc=00 failed; "
        f"key {TOKEN[:3]}-api and ['http://a.example/x?code={TOKEN}'] "
        f"(from http://127.0.0.1:8081/{TOKEN}/pckcrl: HTTP 404)."
    )
    scrubbed = redact_text(text)
    assert TOKEN not in scrubbed
    assert "https://pccs.example/*** failed" in scrubbed
    assert "['http://a.example/***']" in scrubbed
    assert "(from http://127.0.0.1:8081/***: HTTP 404)." in scrubbed
    assert redact_text(scrubbed) == scrubbed
    secret = Secret("s3cr3t-api-key", "test")
    assert redact_text("header was s3cr3t-api-key", [secret]) == f"header was {MASK}"
    assert redact_text("plain s3cr3t", ["s3cr3t"]) == f"plain {MASK}"


def test_ordinary_text_is_unchanged() -> None:
    for text in (
        "no URL here: user@example.com",
        "see https://x.attest.azure.net and http://127.0.0.1:8080/.",
        "already named: http://127.0.0.1:8080/***",
        "",
    ):
        assert redact_text(text) == text
        assert redact_value(text) is text


def test_redact_value_rebuilds_only_what_changed() -> None:
    clean = ["https://a.example", 1, b"\x00"]
    assert redact_value(clean) is clean
    dirty = {"url": f"https://u:{TOKEN}@h/x", "n": (1, f"http://h/?t={TOKEN}")}
    assert redact_value(dirty) == {"url": "https://h/***", "n": (1, "http://h/***")}
    assert redact_value(frozenset({f"http://u:{TOKEN}@h/"})) == frozenset({"http://h/"})


def test_secret_repr_is_safe() -> None:
    secret = Secret(TOKEN, "$env ITA_KEY")
    assert TOKEN not in repr(secret)
    assert TOKEN not in str(secret)
    assert TOKEN not in str(e.ConfigurationError("bad", actual=secret))


@pytest.mark.parametrize(
    "cls", [e.ATLSError, e.CollateralUnavailable, e.ConfigurationError, e.ServiceUnavailable]
)
def test_errors_never_render_url_credentials(cls: type[e.ATLSError]) -> None:
    url = f"https://user:{TOKEN}@pccs.example/sgx/certification/v4?key={TOKEN}"
    error = cls(
        f"collateral unavailable from {url}",
        check="dcap.collateral",
        expected=[url, {"pccs_url": url}],
        actual=url,
    )
    for text in (str(error), repr(error), json.dumps(error.to_dict()), error.reason):
        assert TOKEN not in text
        assert "https://pccs.example/***" in text
        assert "certification" not in text
    assert TOKEN not in repr(error.expected)
    assert TOKEN not in error.actual
    assert error.to_dict()["check"] == "dcap.collateral"


def test_long_values_are_redacted_before_they_are_shortened() -> None:
    """Cutting a long URL inside its userinfo would hide the '@' that marks it."""

    class Opaque:
        def __repr__(self) -> str:
            return "x" * 130 + f"https://user:{TOKEN}{'y' * 40}@pccs.example/"

    error = e.ATLSError("failed", actual=Opaque())
    assert TOKEN[:4] not in str(error)
    assert TOKEN[:4] not in json.dumps(error.to_dict())


def test_service_unavailable_dict_form() -> None:
    error = e.ServiceUnavailable(
        "keys unavailable", service=f"https://u:{TOKEN}@k.example/certs", phase="timeout"
    )
    document = error.to_dict()
    assert document["service"] == "https://k.example/***"
    assert document["phase"] == "timeout"
    assert document["error"] == "ServiceUnavailable"
    assert isinstance(error, e.CollateralUnavailable)
    assert error.check == "service.fetch"


def test_verification_error_wrapping_keeps_redaction() -> None:
    cause = e.ServiceUnavailable(f"keys unavailable from https://u:{TOKEN}@k.example/certs")
    wrapped = e.ATLSVerificationError(cause, host="tee.example")
    assert TOKEN not in str(wrapped)
    assert TOKEN not in wrapped.verify_message

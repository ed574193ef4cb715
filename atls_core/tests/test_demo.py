"""``atls demo`` runs end to end and fails loudly when something misbehaves."""

from __future__ import annotations

from typing import Any

import pytest

from atls_core import demo


def test_demo_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run() == 0
    out = capsys.readouterr().out
    assert "INSECURE" in out
    for integration in ("http.client", "requests", "httpx"):
        assert integration in out
    assert "pins image = " in out
    assert "policy:        demo-pinned" in out, "the accepted clients' policy pins the image"
    assert out.count("REJECTED as expected") == 2
    assert "atls: binding.report_data:" in out
    assert "atls: workload.unpinned:" in out
    assert "pin one of reference_values.image" in out, "the refusal says what to pin"
    assert out.count("received 0 application bytes") == 2


def test_demo_fails_loudly_when_rejection_does_not_happen(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from atls_core import server

    real = server.mint_certificate

    def honest_liar(issuer: object, **kwargs: object) -> server.AttestedCertificate:
        kwargs.pop("evidence", None)  # the "liar" now presents matching evidence
        return real(issuer, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(server, "mint_certificate", honest_liar)
    assert demo.run() == 1
    assert "DEMO FAILED" in capsys.readouterr().err


def test_demo_fails_loudly_when_an_unpinned_client_is_accepted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = demo._config

    def exploring(hardware_key: str, policy: dict[str, Any]) -> Any:
        return real(hardware_key, policy or {"allow_any_workload": True})

    monkeypatch.setattr(demo, "_config", exploring)
    assert demo.run() == 1
    assert "a client whose policy pins nothing was accepted" in capsys.readouterr().err

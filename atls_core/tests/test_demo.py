"""``atls demo`` runs end to end and fails loudly when something misbehaves."""

from __future__ import annotations

import pytest

from atls_core import demo


def test_demo_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run() == 0
    out = capsys.readouterr().out
    assert "INSECURE" in out
    for integration in ("http.client", "requests", "httpx"):
        assert integration in out
    assert "REJECTED as expected" in out
    assert "binding.report_data" in out
    assert "received 0 application bytes" in out


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

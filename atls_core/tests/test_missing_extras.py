"""Importing an HTTP integration without its extra says which extra to install.

The missing distribution is simulated: its modules are set to ``None`` in
``sys.modules`` (which makes Python's import raise ``ModuleNotFoundError``)
and the integration module is imported afresh; monkeypatch restores both.
"""

from __future__ import annotations

import importlib
import sys

import pytest

import atls_core


def _uninstall(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    for name in list(sys.modules):
        if any(name == top or name.startswith(top + ".") for top in packages):
            monkeypatch.setitem(sys.modules, name, None)
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)


def _fresh(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Import ``module`` anew; afterwards the original is back in place everywhere."""
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delattr(atls_core, module.rpartition(".")[2], raising=False)
    importlib.import_module(module)


@pytest.mark.parametrize(
    ("module", "missing", "hint"),
    [
        ("atls_core.requests_adapter", "requests", 'pip install "atls-core[requests]"'),
        ("atls_core.requests_adapter", "urllib3", 'pip install "atls-core[requests]"'),
        ("atls_core.httpx_transport", "httpx", 'pip install "atls-core[httpx]"'),
        ("atls_core.openai_client", "openai", 'pip install "atls-core[openai]"'),
    ],
)
def test_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, missing: str, hint: str
) -> None:
    _uninstall(monkeypatch, missing)
    with pytest.raises(ModuleNotFoundError) as caught:
        _fresh(monkeypatch, module)
    assert hint in str(caught.value)
    assert isinstance(caught.value.name, str)
    assert caught.value.name.startswith(missing)


@pytest.mark.parametrize(
    ("name", "missing", "hint"),
    [("ATLSAdapter", "requests", "[requests]"), ("atls_httpx_client", "httpx", "[httpx]")],
)
def test_the_lazy_names_give_the_same_hint(
    monkeypatch: pytest.MonkeyPatch, name: str, missing: str, hint: str
) -> None:
    monkeypatch.delattr(atls_core, name, raising=False)
    monkeypatch.delitem(sys.modules, atls_core._LAZY[name], raising=False)
    _uninstall(monkeypatch, missing)
    with pytest.raises(ModuleNotFoundError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        getattr(atls_core, name)


def test_with_the_extras_installed_the_modules_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulation above is what fails, not the modules themselves."""
    for module in (
        "atls_core.requests_adapter",
        "atls_core.httpx_transport",
        "atls_core.openai_client",
    ):
        _fresh(monkeypatch, module)

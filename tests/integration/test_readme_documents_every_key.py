"""The README documents every setting, policy option and measurement name.

Configuration that a user cannot find in the documentation is configuration
they will get wrong; this fails as soon as a plugin adds an undocumented key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atls_core.registry import PluginManager

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCUMENTED = set(re.findall(r"`([^`\s]+)`", README))
STATUSES = PluginManager().load_all()


def _undocumented(names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n not in DOCUMENTED)


@pytest.mark.parametrize(
    "spec", [v for s in STATUSES for v in s.validators], ids=lambda spec: spec.id
)
def test_validator_keys_are_documented(spec: object) -> None:
    from atls_core.interfaces import ValidatorSpec

    assert isinstance(spec, ValidatorSpec)
    assert spec.id in DOCUMENTED, f"{spec.id} is not in the README"
    for kind, names in (
        ("settings", spec.settings),
        ("policy options", spec.policy_options),
        ("reference values", spec.measurements),
    ):
        missing = _undocumented(names)
        assert not missing, f"{spec.id}: {kind} missing from the README: {missing}"


@pytest.mark.parametrize("spec", [i for s in STATUSES for i in s.issuers], ids=lambda spec: spec.id)
def test_issuer_settings_are_documented(spec: object) -> None:
    from atls_core.interfaces import IssuerSpec

    assert isinstance(spec, IssuerSpec)
    assert spec.id in DOCUMENTED, f"issuer {spec.id} is not in the README"
    missing = _undocumented(spec.settings)
    assert not missing, f"issuer {spec.id}: settings missing from the README: {missing}"

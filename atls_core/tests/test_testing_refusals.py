"""``atls_core.testing.refusals.refused``: it fails unless the right error names the right check."""

from __future__ import annotations

import pytest

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_core.testing.refusals import refused


def _refuse() -> None:
    raise MalformedEvidence("no such field", check="unit.format")


def test_the_named_check_passes_and_shows_the_error() -> None:
    with refused(MalformedEvidence, "unit.format") as info:
        _refuse()
    assert info.value.reason == "no such field"


def test_another_check_fails() -> None:
    with (
        pytest.raises(AssertionError, match=r"refused by unit\.format, not by unit\.size"),
        refused(MalformedEvidence, "unit.size"),
    ):
        _refuse()


def test_another_error_class_is_not_caught() -> None:
    with pytest.raises(MalformedEvidence), refused(UntrustedChain, "unit.format"):
        _refuse()


def test_no_error_fails() -> None:
    with (
        pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"),
        refused(MalformedEvidence, "unit.format"),
    ):
        pass

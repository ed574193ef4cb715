"""The registry's core-version check decides as packaging does, and imports it only when needed."""

from __future__ import annotations

import itertools

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from atls_core import version_range
from atls_core.testing.plugins import modules_loaded_by
from atls_core.version_range import unmet_requirement

VERSIONS = ("0", "0.1", "0.2", "0.2.0", "0.2.1", "0.3", "1", "1.0.0.0", "10.0", "0.10")
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


def _packaging(line: str, version: str) -> str | None:
    """The registry's check as it was, with packaging alone."""
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    if canonicalize_name(requirement.name) != "atls-core":
        return None
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        return None
    if requirement.specifier.contains(version, prereleases=True):
        return None
    return str(requirement.specifier)


def _plain_lines() -> list[str]:
    clauses = [f"{op}{v}" for op, v in itertools.product(OPERATORS, VERSIONS)]
    lines = [f"atls-core{c}" for c in clauses]
    lines += [f"atls-core{a},{b}" for a, b in itertools.product(clauses[::3], clauses[1::3])]
    lines += ["atls-core", "ATLS_Core (>=0.2, <0.3)", "atls.core >= 0.2 , < 0.3"]
    lines += ["atls-core>=99; extra == 'test'", 'atls-core[requests]>=0.2,<0.3; extra == "x"']
    return lines


@pytest.mark.parametrize("version", VERSIONS)
def test_plain_forms_agree_with_packaging(version: str) -> None:
    for line in _plain_lines():
        assert version_range._plain_check(line, "atls-core", version) == _packaging(
            line, version
        ), line


ODD_LINES = [  # packaging decides these
    "atls-core~=0.2",
    "atls-core==0.2.*",
    "atls-core!=0.2.*",
    "atls-core===0.2.0",
    "atls-core>=0.2rc1",
    "atls-core<0.2.0.post1",
    "atls-core>=0.2; python_version >= '3'",
    "atls-core>=99; python_version < '3'",
    "atls-core>=99; extra == 'test' or python_version >= '3'",
    "atls-core @ https://example.invalid/atls_core.whl",
    "atls-core>=0.2 garbage",
    "atls-core>=",
    "not a requirement at all !",
    "requests>=99",
    "atls-core-extras>=99",
    "atls-core<0.3,>=0.2",  # plain, but against a development or local version below
    "atls-core>=0.2.1",
    "atls-core >=\t0.2 ,<  0.3 ",  # clauses are read with string methods: spacing as before
    "atls-core>=0.2.",
    "atls-core>=.2",
    "atls-core=>0.2",
    "atls-core>=\u0660.2",  # a digit, but not an ASCII one
    "atls-core>=0.\u00b2",
]


@pytest.mark.parametrize("line", ODD_LINES)
@pytest.mark.parametrize("version", ["0.2.0", "0.2.1.dev3", "0.2.0+local", "99.0"])
def test_other_forms_agree_with_packaging(line: str, version: str) -> None:
    assert unmet_requirement([line], "atls-core", version) == _packaging(line, version)


def test_the_first_unmet_line_is_reported() -> None:
    lines = ["requests>=1", "atls-core>=0.1", "atls-core<0.2,>=0.1", "atls-core>=99"]
    assert unmet_requirement(lines, "atls-core", "0.2.0") == "<0.2,>=0.1"
    assert unmet_requirement(lines[:2], "atls-core", "0.2.0") is None


def test_plain_forms_never_import_packaging() -> None:
    probe = (
        "from atls_core.version_range import unmet_requirement as u\n"
        "assert u(['atls-core<0.3,>=0.2', \"x; extra == 'y'\"], 'atls-core', '0.2.0') is None\n"
        "assert u(['atls-core>=99'], 'atls-core', '0.2.0') == '>=99'\n"
    )
    assert not [m for m in modules_loaded_by(probe) if m.partition(".")[0] == "packaging"]
    odd = "from atls_core.version_range import unmet_requirement as u\nu(['atls-core~=0.2'], 'atls-core', '0.2.0')\n"
    assert "packaging.specifiers" in modules_loaded_by(odd)

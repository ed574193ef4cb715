"""Every hook is documented for plugin authors and exercised by a test (datasette's rule)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from atls_core import hookspecs

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Writing a validator plugin"
TESTS = Path(__file__).resolve().parent


def _hooks() -> list[str]:
    return sorted(
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(function, "atls_spec", None) is not None
    )


def _section() -> str:
    assert README.is_file(), f"{README} is missing: the plugin-author guide lives there"
    text = README.read_text()
    assert SECTION in text, f"{README} has no section {SECTION!r}; write it (the lead owns it)"
    body = text.split(SECTION, 1)[1]
    following = re.search(r"^## ", body, flags=re.MULTILINE)
    return body[: following.start()] if following else body


def test_the_hook_list_is_what_plugins_rely_on() -> None:
    assert _hooks() == [
        "atls_appraisal_completed",
        "atls_register_issuers",
        "atls_register_validators",
    ]


def test_every_hook_is_documented_with_its_arguments() -> None:
    section = _section()
    missing = []
    for name in _hooks():
        parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        if f"{name}({parameters})" not in section:
            missing.append(f"{name}({parameters})")
    assert not missing, f"document these hooks in README {SECTION!r}: {missing}"


def test_every_hook_is_exercised_by_a_test() -> None:
    sources = {
        path.name: path.read_text()
        for path in TESTS.glob("test_*.py")
        if path.name != Path(__file__).name
    }
    unexercised = [
        name
        for name in _hooks()
        if not any(re.search(rf"\bdef {name}\(", text) for text in sources.values())
    ]
    assert not unexercised, f"no test in {TESTS} implements these hooks: {unexercised}"

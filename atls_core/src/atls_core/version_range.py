"""Does a version satisfy a distribution's requirement on a project (``atls-core>=0.2,<0.3``)?

The registry asks this of every plugin before importing it.  ``packaging``
answers it exactly but costs a command-line start a good share of its time, so
the forms plugins declare are decided here: a plain release version against
clauses ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=`` of plain release versions,
with no marker or an ``extra == "..."`` marker.  For plain release versions
PEP 440 reduces these to comparing release numbers padded with zeros.  Any
other line naming the project (``~=``, wildcards, pre-releases, URLs, other
markers, anything unparsed) goes to ``packaging``, as every line did before;
a test checks both ways agree.
"""

from __future__ import annotations

import operator
import re

TYPE_CHECKING = False  # not typing's: this is on the CLI's start-up path
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["unmet_requirement"]

# Patterns, compiled by ``re`` when first matched: the clauses and versions are read with
# string methods, and a marker pattern is compiled only for a line that has a marker.
_LINE = (
    r"\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\[\]]*\])?"
    r"\s*(?P<spec>[^;]*?)\s*(?:;\s*(?P<marker>.*?)\s*)?\Z"
)
_EXTRA_ONLY = r"extra\s*==\s*(?P<q>['\"])[A-Za-z0-9][A-Za-z0-9._-]*(?P=q)\Z"
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
"""In the order a clause is read: a two-character operator before its one-character prefix."""
_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class _Unsure(Exception):
    """This line is not one of the plain forms: ask packaging."""


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_plain(version: str) -> bool:
    """``[0-9]+(\\.[0-9]+)*``: release numbers only, ASCII digits, no empty part."""
    return all(part.isascii() and part.isdigit() for part in version.split("."))


def _clause(text: str) -> tuple[str, str] | None:
    """``(operator, version)`` of one plain clause (spaces around either allowed), or None."""
    text = text.strip()
    op = next((op for op in _OPERATORS if text.startswith(op)), None)
    if op is None:
        return None
    version = text[len(op) :].lstrip()
    return (op, version) if _is_plain(version) else None


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    size = max(len(a), len(b))
    return a + (0,) * (size - len(a)), b + (0,) * (size - len(b))


def _plain_check(line: str, project: str, version: str) -> str | None:
    """The unmet specifier of ``line``, or None; :class:`_Unsure` outside the plain forms."""
    match = re.match(_LINE, line)
    if match is None:
        raise _Unsure
    if _normalized(match.group("name")) != project:
        return None
    marker = match.group("marker")
    if marker is not None:
        if re.match(_EXTRA_ONLY, marker):
            return None  # applies only when an extra is asked for; the registry asks for none
        raise _Unsure
    if not _is_plain(version):
        raise _Unsure
    spec = match.group("spec")
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1]
    if not spec.strip():
        return None
    clauses = []
    for text in spec.split(","):
        clause = _clause(text)
        if clause is None:
            raise _Unsure
        clauses.append(clause)
    have = _release(version)
    for op, wanted in clauses:
        if not _COMPARE[op](*_padded(have, _release(wanted))):
            return _shown(clauses)
    return None


def _shown(clauses: list[tuple[str, str]]) -> str:
    """The clauses as packaging prints a specifier set: equal ones once, sorted."""
    kept: dict[tuple[str, tuple[int, ...]], str] = {}
    for op, wanted in clauses:
        release = _release(wanted)
        while len(release) > 1 and release[-1] == 0:
            release = release[:-1]
        kept.setdefault((op, release), f"{op}{wanted}")
    return ",".join(sorted(kept.values()))


def _packaging_check(line: str, project: str, version: str) -> str | None:
    """The registry's original check of one line, with ``packaging``."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    if canonicalize_name(requirement.name) != project:
        return None
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        return None
    if requirement.specifier.contains(version, prereleases=True):
        return None
    return str(requirement.specifier)


def unmet_requirement(requires: Iterable[str], project: str, version: str) -> str | None:
    """The specifier of the first line on ``project`` that ``version`` does not satisfy.

    ``project`` is a normalised name (``atls-core``); pre-releases count as
    satisfying a range they fall in (a development build of the core is not
    refused by its own plugins); lines whose marker needs an extra do not apply.
    """
    for line in requires:
        try:
            unmet = _plain_check(line, project, version)
        except _Unsure:
            unmet = _packaging_check(line, project, version)
        if unmet is not None:
            return unmet
    return None

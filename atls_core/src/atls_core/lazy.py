"""Names imported on first use (PEP 562), for packages whose import must stay cheap.

A package's ``__getattr__`` hands the name to :func:`lazy_attribute` with a
table of where each public name lives; the value is imported once and kept
in the package's namespace, so later lookups never come back here.
:func:`lazy_exports` makes that ``__getattr__`` and the matching ``__dir__``.  (No
``typing`` import: that alone would cost a cold start more than this module.)
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping

__all__ = ["lazy_attribute", "lazy_exports"]


def lazy_attribute(
    package: str, where: Mapping[str, str], namespace: MutableMapping[str, object], name: str
) -> object:
    """``name`` imported from its module in ``where`` (absolute, or relative to ``package``)."""
    module = where.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, package), name)
    namespace[name] = value
    return value


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` over ``where``:
    ``__getattr__, __dir__ = lazy_exports(__name__, WHERE, globals())``."""

    def __getattr__(name: str) -> object:
        return lazy_attribute(package, where, namespace, name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__

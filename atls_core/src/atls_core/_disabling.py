"""A plugin manager that refuses more plugins than the one it views: see ``selection.manager_for``.

Its own module so that :mod:`atls_core.selection` imports the registry only
when a validator is chosen.
"""

from __future__ import annotations

from atls_core.errors import PluginNotFound
from atls_core.registry import PluginInfo, PluginManager

__all__ = ["DisablingManager"]


class DisablingManager(PluginManager):
    """``base``'s registry (its loaded plugins and observers), refusing also ``disabled``.

    It shares ``base``'s state rather than starting a second registry, so the
    plugins and observers ``base`` loaded stay in use and nothing is imported
    twice.  Only :meth:`load` differs: it checks ``disabled`` first, because
    ``base`` may already have loaded a plugin this view refuses.
    """

    def __init__(self, base: PluginManager, disabled: frozenset[str]) -> None:
        vars(self).update(vars(base))  # not PluginManager.__init__: the same registry
        self.disabled = base.disabled | disabled

    def load(self, name: str) -> PluginInfo:
        if name in self.disabled:
            raise PluginNotFound(
                f"plugin {name!r} is disabled by configuration (atls.disable_plugins)",
                check="plugins.disabled",
                actual=name,
            )
        return super().load(name)

"""The binding names the registry checks specs against are the ones binding computes.

The registry and ``ValidatorSpec`` read the scheme names from :mod:`atls_core.interfaces`,
so a listing of plugins need not import the computations; this test holds the two modules
to the same names.
"""

from __future__ import annotations

from atls_core import binding, interfaces


def test_every_binding_scheme_name_is_computed_and_every_computed_one_named() -> None:
    assert tuple(binding.SCHEMES) == interfaces.BINDING_SCHEME_NAMES

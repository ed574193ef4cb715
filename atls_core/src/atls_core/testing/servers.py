"""Scripted loopback HTTP servers as pytest fixtures.

Every suite that tests how a client survives a misbehaving service (a drip, a redirect, an
error status) needs one such server per test, and a second one where a redirect points.  A
suite opts in from its conftest, as for the recorded vectors::

    def pytest_configure(config):
        config.pluginmanager.import_plugin("atls_core.testing.servers")

PYTEST_DONT_REWRITE: this module has no asserts, and conftests may import it before registering it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atls_core.testing.httpd import ScriptedServer

__all__ = ["redirect_target", "scripted_server"]


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A :class:`ScriptedServer` on 127.0.0.1 that the test makes drip, redirect or fail."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def redirect_target() -> Iterator[ScriptedServer]:
    """A second scripted server, where a redirect points: its ``requests`` show whether a
    client followed the redirect (carrying its credentials there)."""
    with ScriptedServer() as server:
        yield server

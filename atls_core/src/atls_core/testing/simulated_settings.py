"""The simulated TEE's key setting, read by :mod:`atls_core.settings`' rules.

Apart from :mod:`atls_core.testing.simulated` so that listing plugins (which
imports that module) does not load the settings machinery.
"""

from __future__ import annotations

from atls_core.settings import hex_bytes, setting, settings_class

__all__ = ["HardwareKey"]


@settings_class
class HardwareKey:
    """The simulated hardware's Ed25519 key: public for validators, private for issuers."""

    hardware_key: bytes = setting(hex_bytes(32), repr=False)

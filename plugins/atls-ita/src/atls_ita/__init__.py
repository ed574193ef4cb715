"""atls-ita plugin: Intel Trust Authority tokens for atls.

``verify_token`` verifies a saved token in one call (the shape of Intel's
client); it is imported on first use, so listing the plugin does not load the
result and policy modules it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.lazy import lazy_exports
from atls_ita._version import __version__

if TYPE_CHECKING:
    from atls_ita.offline import verify_token

__all__ = ["__version__", "verify_token"]

__getattr__, __dir__ = lazy_exports(__name__, {"verify_token": "atls_ita.offline"}, globals())

"""atls-ita plugin: Intel Trust Authority tokens for atls.

``verify_token`` verifies a saved token in one call (the shape of Intel's
client); importing it stays light (pyjwt loads on first use).
"""

from atls_ita._version import __version__
from atls_ita.offline import verify_token

__all__ = ["__version__", "verify_token"]

"""atls-tdx plugin."""

from atls_tdx._version import __version__

__all__ = ["__version__"]

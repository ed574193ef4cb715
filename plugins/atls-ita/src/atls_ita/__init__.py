"""atls-ita plugin."""

from atls_ita._version import __version__

__all__ = ["__version__"]

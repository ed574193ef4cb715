"""atls-gramine plugin."""

from atls_gramine._version import __version__

__all__ = ["__version__"]

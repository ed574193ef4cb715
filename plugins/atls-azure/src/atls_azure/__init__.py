"""atls-azure plugin."""

from atls_azure._version import __version__

__all__ = ["__version__"]

"""pyatls's module path of ``AciValidator``."""

from atls_pyatls.azure import AciValidator

__all__ = ["AciValidator"]

"""pyatls's module path of ``HTTPAAdapter``."""

from atls_pyatls.requests_adapter import HTTPAAdapter

__all__ = ["HTTPAAdapter"]

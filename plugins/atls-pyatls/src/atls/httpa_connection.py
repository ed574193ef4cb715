"""pyatls's module path of ``HTTPAConnection``."""

from atls_pyatls.connection import HTTPAConnection

__all__ = ["HTTPAConnection"]

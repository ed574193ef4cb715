"""pyatls's module path of ``PUBLIC_JKUS``."""

from atls_pyatls.azure import PUBLIC_JKUS

__all__ = ["PUBLIC_JKUS"]

"""pyatls's module path of ``ATLSContext``."""

from atls_pyatls.context import ATLSContext

__all__ = ["ATLSContext"]

"""pyatls's ``atls`` package, provided by atls-pyatls (the code is in ``atls_pyatls``)."""

from atls_pyatls.connection import HTTPAConnection
from atls_pyatls.context import ATLSContext

__all__ = ["ATLSContext", "HTTPAConnection"]

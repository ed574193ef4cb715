"""pyatls's ``HTTPAAdapter`` for requests (needs ``pip install requests``)."""

from atls_pyatls.requests_adapter import HTTPAAdapter

__all__ = ["HTTPAAdapter"]

"""pyatls's urllib3 injection."""

from atls_pyatls.urllib3_patch import extract_from_urllib3, inject_into_urllib3

__all__ = ["extract_from_urllib3", "inject_into_urllib3"]

"""pyatls's module path of ``CvmValidator``."""

from atls_pyatls.azure import CvmValidator

__all__ = ["CvmValidator"]

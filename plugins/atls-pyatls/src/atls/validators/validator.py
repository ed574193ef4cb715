"""pyatls's module path of ``Validator``."""

from atls_pyatls.validator import Validator

__all__ = ["Validator"]

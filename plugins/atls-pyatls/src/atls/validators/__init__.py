"""pyatls's ``atls.validators``."""

from atls_pyatls.validator import Validator

__all__ = ["Validator"]

"""opaque-systems atls-python (``pyatls``, import name ``atls``) on atls.

The ``atls`` package of this distribution has pyatls's module paths and
names; the code lives here.  ``HTTPAAdapter`` (requests) is in
:mod:`atls_pyatls.requests_adapter` so that importing this package does not
import requests.
"""

from __future__ import annotations

from atls_pyatls._version import __version__
from atls_pyatls.azure import PUBLIC_JKUS, AciValidator, CvmValidator
from atls_pyatls.connection import HTTPAConnection
from atls_pyatls.context import ATLSContext, ValidatorList
from atls_pyatls.urllib3_patch import extract_from_urllib3, inject_into_urllib3
from atls_pyatls.validator import Validator

__all__ = [
    "ATLSContext",
    "AciValidator",
    "CvmValidator",
    "HTTPAConnection",
    "PUBLIC_JKUS",
    "Validator",
    "ValidatorList",
    "__version__",
    "extract_from_urllib3",
    "inject_into_urllib3",
]

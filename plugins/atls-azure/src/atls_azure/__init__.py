"""atls-azure plugin: Microsoft Azure Attestation tokens.

``from atls_azure import AciValidator`` works (the opaque-systems atls-python
constructor); it is imported lazily so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_azure._version import __version__
from atls_core.lazy import lazy_exports

if TYPE_CHECKING:
    from atls_azure.aci import AciValidator
    from atls_azure.issuer import AciIssuer

__all__ = ["AciIssuer", "AciValidator", "__version__"]


_WHERE = {"AciValidator": "atls_azure.aci", "AciIssuer": "atls_azure.issuer"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())

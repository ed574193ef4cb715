"""atls-azure plugin: Microsoft Azure Attestation tokens.

``from atls_azure import AciValidator`` works (the opaque-systems atls-python
constructor); it is imported lazily so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atls_azure._version import __version__
from atls_core.lazy import lazy_attribute

if TYPE_CHECKING:
    from atls_azure.aci import AciValidator
    from atls_azure.issuer import AciIssuer

__all__ = ["AciIssuer", "AciValidator", "__version__"]


_WHERE = {"AciValidator": "atls_azure.aci", "AciIssuer": "atls_azure.issuer"}


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _WHERE, globals(), name)

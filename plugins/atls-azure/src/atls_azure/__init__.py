"""atls-azure plugin: Microsoft Azure Attestation tokens.

``from atls_azure import AciValidator`` works (the opaque-systems atls-python
constructor); it is imported lazily so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atls_azure._version import __version__

if TYPE_CHECKING:
    from atls_azure.aci import AciValidator
    from atls_azure.issuer import AciIssuer

__all__ = ["AciIssuer", "AciValidator", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "AciValidator":
        from atls_azure.aci import AciValidator

        return AciValidator
    if name == "AciIssuer":
        from atls_azure.issuer import AciIssuer

        return AciIssuer
    raise AttributeError(f"module 'atls_azure' has no attribute {name!r}")

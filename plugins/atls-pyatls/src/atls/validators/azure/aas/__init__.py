"""pyatls's Azure Attestation validators (atls-azure's ``azure.aci`` underneath)."""

from atls_pyatls.azure import PUBLIC_JKUS, AciValidator, CvmValidator

__all__ = ["PUBLIC_JKUS", "AciValidator", "CvmValidator"]

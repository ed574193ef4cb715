"""AMD's SEV-SNP trust anchors, pinned by fingerprint, and the product families.

Each product family (Milan, Genoa, Turin) has its own AMD Root Key (ARK, a
self-signed RSA-4096 certificate valid for 25 years).  The ARK issues the
family's ASK (which issues per-chip VCEKs) and ASVK (which issues VLEKs to
cloud providers).  The fingerprints below are SHA-256 over each ARK's DER
encoding, as AMD's key distribution service serves them
(``https://kdsintf.amd.com/vcek/v1/<Product>/cert_chain``, second certificate);
the same certificates ship in AMD's and the major verifiers' trees.  Only
these fingerprints are in the code: the certificates themselves come with the
evidence, from configured files or from the key distribution service, and a
chain is trusted only when its root hashes to one of them.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

__all__ = [
    "PINNED_ARKS",
    "Product",
    "SigningKey",
    "product_from_cpuid",
]


class Product(enum.Enum):
    """An SEV-SNP product family: the name AMD's PKI and key service use."""

    MILAN = "Milan"
    GENOA = "Genoa"
    TURIN = "Turin"

    @property
    def ark_name(self) -> str:
        return f"ARK-{self.value}"

    @property
    def ask_name(self) -> str:
        """The intermediate that issues VCEKs."""
        return f"SEV-{self.value}"

    @property
    def asvk_name(self) -> str:
        """The intermediate that issues VLEKs."""
        return f"SEV-VLEK-{self.value}"

    @property
    def turin_layout(self) -> bool:
        """Turin and later write TCB_VERSION with the FMC SPL first."""
        return self is Product.TURIN

    @classmethod
    def named(cls, name: str) -> Product | None:
        for product in cls:
            if product.value.lower() == name.strip().lower():
                return product
        return None


class SigningKey(enum.Enum):
    """Report ``SIGNING_KEY``: which key the firmware signed with."""

    VCEK = 0
    VLEK = 1

    @property
    def certificate_name(self) -> str:
        return "SEV-VCEK" if self is SigningKey.VCEK else "SEV-VLEK"

    def intermediate_name(self, product: Product) -> str:
        return product.ask_name if self is SigningKey.VCEK else product.asvk_name


PINNED_ARKS = MappingProxyType(
    {
        bytes.fromhex(
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
        ): Product.MILAN,
        bytes.fromhex(
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"
        ): Product.GENOA,
        bytes.fromhex(
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
        ): Product.TURIN,
    }
)
"""SHA-256(DER) of ARK-Milan (valid 2020-10-22..2045-10-22), ARK-Genoa (2022-01-26..2047-01-26)
and ARK-Turin (2023-05-15..2048-05-15)."""


def product_from_cpuid(family: int, model: int) -> Product | None:
    """The family a report's CPUID (report version 3 and later) names, if we know it.

    Family 19h models 00h-0Fh are Milan, 10h-1Fh Genoa; family 1Ah models
    00h-1Fh are Turin.  Other models (Bergamo, Siena...) are not recognised:
    their reports are refused rather than matched to a guessed PKI.
    """
    if family == 0x19 and model <= 0x0F:
        return Product.MILAN
    if family == 0x19 and 0x10 <= model <= 0x1F:
        return Product.GENOA
    if family == 0x1A and model <= 0x1F:
        return Product.TURIN
    return None

"""Measurement names shared by every validator of the same TEE.

A policy's ``reference_values`` should mean the same thing whichever backend
appraised the TEE: ``mrtd`` pinned for ``tdx.dcap`` must pin it for
``ita.tdx`` and ``azure.tdx`` too.  Plugins take their names from here rather
than spelling them again.
"""

from __future__ import annotations

__all__ = ["SGX", "TDX"]

TDX: tuple[str, ...] = (
    "mrtd",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "mrseam",
    "mrsignerseam",
    "mrconfigid",
    "mrowner",
    "mrownerconfig",
)
"""Intel TDX report fields that are measurements (lowercase, no separators)."""

SGX: tuple[str, ...] = ("mrenclave", "mrsigner")
"""Intel SGX report fields that are measurements."""

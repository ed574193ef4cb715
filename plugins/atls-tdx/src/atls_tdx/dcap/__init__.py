"""DCAP quote verification shared by the TDX, SGX and Gramine validators.

``DcapVerifier(DcapSettings.from_settings(settings)).verify(quote, now=...)``
fetches collateral through a cache, runs dcap-qvl and returns a
:class:`VerifiedQuote`; :func:`record_quote` records it into an appraisal.
Failures raise specific atls errors (see :mod:`atls_tdx.dcap.errors`).

Names are imported on first use, so ``atls_tdx.dcap.settings`` (read by the
plugin's specs at registration time) stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atls_tdx.dcap.cache import CollateralCache, CollateralKey
    from atls_tdx.dcap.collateral import Collateral
    from atls_tdx.dcap.errors import map_qvl_error
    from atls_tdx.dcap.report import (
        SGX_MEASUREMENTS,
        TDX_MEASUREMENTS,
        VerifiedQuote,
        parse_report_fields,
        record_quote,
    )
    from atls_tdx.dcap.settings import (
        DCAP_CLI_OPTIONS,
        DCAP_SETTINGS,
        INTEL_PCS_URL,
        DcapSettings,
    )
    from atls_tdx.dcap.verifier import DcapVerifier

__all__ = [
    "DCAP_CLI_OPTIONS",
    "DCAP_SETTINGS",
    "INTEL_PCS_URL",
    "SGX_MEASUREMENTS",
    "TDX_MEASUREMENTS",
    "Collateral",
    "CollateralCache",
    "CollateralKey",
    "DcapSettings",
    "DcapVerifier",
    "VerifiedQuote",
    "map_qvl_error",
    "parse_report_fields",
    "record_quote",
]

_WHERE = {
    "CollateralCache": "cache",
    "CollateralKey": "cache",
    "Collateral": "collateral",
    "map_qvl_error": "errors",
    "SGX_MEASUREMENTS": "report",
    "TDX_MEASUREMENTS": "report",
    "VerifiedQuote": "report",
    "parse_report_fields": "report",
    "record_quote": "report",
    "DCAP_CLI_OPTIONS": "settings",
    "DCAP_SETTINGS": "settings",
    "INTEL_PCS_URL": "settings",
    "DcapSettings": "settings",
    "DcapVerifier": "verifier",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""DCAP quote verification shared by the TDX, SGX and Gramine validators.

``DcapVerifier(DcapSettings.from_settings(settings)).verify(quote, now=...)``
fetches collateral through a cache, runs dcap-qvl and returns a
:class:`VerifiedQuote`; :func:`record_quote` records it into an appraisal.
Failures raise specific atls errors (see :mod:`atls_tdx.dcap.errors`).
"""

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
from atls_tdx.dcap.settings import DCAP_SETTINGS, INTEL_PCS_URL, DcapSettings
from atls_tdx.dcap.verifier import DcapVerifier

__all__ = [
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

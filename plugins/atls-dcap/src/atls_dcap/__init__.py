"""DCAP quote verification shared by the TDX and Gramine plugins (atls-dcap).

``DcapVerifier(DcapSettings.from_settings(settings)).verify(quote, now=...)``
fetches collateral through a cache (in Python, :mod:`atls_dcap.pcs`), runs
dcap-qvl and returns a :class:`VerifiedQuote`; :func:`record_quote` records it
into an appraisal.  Failures raise specific atls errors (see
:mod:`atls_dcap.errors`).  This distribution registers no validator: plugins
build theirs on it and take ``atls_dcap.settings.DCAP_INPUTS`` (settings,
tests-only settings and ``atls verify-evidence`` options) into their specs.

Names are imported on first use, so ``atls_dcap.settings`` (read by the
plugins' specs at registration time) stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.lazy import lazy_exports
from atls_dcap._version import __version__

if TYPE_CHECKING:
    from atls_dcap.cache import CollateralCache, CollateralKey
    from atls_dcap.collateral import Collateral
    from atls_dcap.errors import map_qvl_error
    from atls_dcap.report import (
        SGX_MEASUREMENTS,
        TDX_MEASUREMENTS,
        VerifiedQuote,
        parse_report_fields,
        record_quote,
    )
    from atls_dcap.settings import (
        DCAP_CLI_OPTIONS,
        DCAP_SETTINGS,
        DCAP_TEST_SETTINGS,
        INTEL_PCS_URL,
        DcapSettings,
    )
    from atls_dcap.verifier import DcapVerifier

__all__ = [
    "DCAP_CLI_OPTIONS",
    "DCAP_SETTINGS",
    "DCAP_TEST_SETTINGS",
    "INTEL_PCS_URL",
    "SGX_MEASUREMENTS",
    "TDX_MEASUREMENTS",
    "Collateral",
    "CollateralCache",
    "CollateralKey",
    "DcapSettings",
    "DcapVerifier",
    "VerifiedQuote",
    "__version__",
    "map_qvl_error",
    "parse_report_fields",
    "record_quote",
]

_WHERE = {
    "CollateralCache": ".cache",
    "CollateralKey": ".cache",
    "Collateral": ".collateral",
    "map_qvl_error": ".errors",
    "SGX_MEASUREMENTS": ".report",
    "TDX_MEASUREMENTS": ".report",
    "VerifiedQuote": ".report",
    "parse_report_fields": ".report",
    "record_quote": ".report",
    "DCAP_CLI_OPTIONS": ".settings",
    "DCAP_SETTINGS": ".settings",
    "DCAP_TEST_SETTINGS": ".settings",
    "INTEL_PCS_URL": ".settings",
    "DcapSettings": ".settings",
    "DcapVerifier": ".verifier",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())

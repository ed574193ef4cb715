"""Where collateral comes from: Intel PCS, a configured PCCS, or an offline file.

PCS and PCCS documents are fetched in Python (:mod:`atls_dcap.pcs`), on the
caller's thread: no native runtime, no background thread, so nothing is left
running at interpreter exit and a forked child fetches as its parent does.
The whole fetch is bounded by ``collateral_timeout``; a fault or a timeout is
:class:`CollateralUnavailable`, never an acceptance.  dcap-qvl's default PCCS
(a third party's) is never used: every fetch names its URL.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from atls_core.errors import CollateralUnavailable, ConfigurationError, MalformedEvidence
from atls_dcap.cache import CollateralKey
from atls_dcap.collateral import Collateral
from atls_dcap.pcs import INTEL_ROOT_CA_CRL_URL, fetch_collateral
from atls_dcap.settings import DcapSettings

__all__ = ["CollateralKey", "CollateralSource", "FileSource", "UrlSource", "make_source"]


class CollateralSource(Protocol):
    name: str

    def fetch(self, quote: bytes, key: CollateralKey) -> Collateral: ...


class UrlSource:
    """Intel PCS or a PCCS: the collateral of one platform (FMSPC, PCK CA) and TEE type."""

    def __init__(
        self, url: str, *, name: str, timeout: float, root_crl_url: str | None = None
    ) -> None:
        self.url = url
        self.name = name
        """How results and errors name the source (credentials redacted)."""
        self.timeout = timeout
        self.root_crl_url = root_crl_url
        """Where the root CA CRL is; ``None``: at the PCCS (``/sgx/certification/v4/rootcacrl``)."""

    def fetch(self, quote: bytes, key: CollateralKey) -> Collateral:
        text = fetch_collateral(
            self.url,
            tee=key.tee,
            fmspc=key.fmspc,
            ca=key.ca,
            timeout=self.timeout,
            root_crl_url=self.root_crl_url,
        )
        try:
            return Collateral.from_json(text)
        except MalformedEvidence as exc:
            raise CollateralUnavailable(
                f"collateral from {self.name} is unusable: {exc.reason}", check="collateral.fetch"
            ) from exc


class FileSource:
    """Offline collateral from a JSON file (dcap-qvl's QuoteCollateralV3 shape).

    The file is parsed once and re-read only when its size or mtime changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int], Collateral] | None = None

    def fetch(self, quote: bytes, key: CollateralKey | None = None) -> Collateral:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise ConfigurationError(
                f"collateral_file {self.path}: {exc.strerror}", check="config.dcap.collateral_file"
            ) from exc
        signature = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if self._loaded is not None and self._loaded[0] == signature:
                return self._loaded[1]
        try:
            text = self.path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"collateral_file {self.path}: {exc.strerror}", check="config.dcap.collateral_file"
            ) from exc
        collateral = Collateral.from_json(text)
        with self._lock:
            self._loaded = (signature, collateral)
        return collateral


def make_source(settings: DcapSettings) -> UrlSource | FileSource:
    if settings.collateral == "file":
        assert settings.collateral_file is not None
        return FileSource(settings.collateral_file)
    url = settings.source_url
    assert url is not None
    return UrlSource(
        url,
        name=settings.source_name,
        timeout=settings.collateral_timeout,
        root_crl_url=INTEL_ROOT_CA_CRL_URL if settings.collateral == "pcs" else None,
    )

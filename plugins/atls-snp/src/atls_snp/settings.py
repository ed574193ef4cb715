"""Validator settings: configured certificates, the key distribution service, the roots.

Read once per validator, when it is built, so that a missing file or a root
that is not AMD's is a configuration error before any connection.  File
settings take a path (str or path-like) or the file's bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from atls_core.errors import ATLSError, ConfigurationError
from atls_core.interfaces import refuse_unknown_names
from atls_core.secret import Secret, reveal
from atls_snp.certs import AmdCertificate, parse_certificate, split_certificates
from atls_snp.crl import Crl, parse_crl
from atls_snp.kds import AMD_KDS_URL, check_kds_url
from atls_snp.roots import PINNED_ARKS, Product
from atls_snp.specs import SETTINGS

__all__ = ["KDS_MODES", "SnpSettings"]

KDS_MODES = ("auto", "never")
_DEFAULT_TIMEOUT = 10.0
_DEFAULT_CACHE_SECONDS = 24 * 3600.0


def _read(value: Any, name: str, where: str) -> tuple[bytes, str]:
    """(content, label) of a file setting given as a path or as bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), f"{name} (bytes)"
    if isinstance(value, Secret):
        value = reveal(value)
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ConfigurationError(f"{where}.{name} must be a file path", check=f"config.snp.{name}")
    path = Path(os.fspath(value)).expanduser()
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ConfigurationError(
            f"{where}.{name}: cannot read {path}: {exc.strerror}", check=f"config.snp.{name}"
        ) from None


def _certificates(value: Any, name: str, where: str) -> list[AmdCertificate]:
    data, label = _read(value, name, where)
    try:
        found = [parse_certificate(item) for item in split_certificates(data)]
    except ATLSError as error:
        raise ConfigurationError(
            f"{where}.{name}: {label} is not a PEM or DER certificate ({error.reason})",
            check=f"config.snp.{name}",
        ) from None
    if not found:
        raise ConfigurationError(
            f"{where}.{name}: {label} holds no certificate", check=f"config.snp.{name}"
        )
    return found


def _number(value: Any, name: str, where: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigurationError(f"{where}.{name} must be a number", check=f"config.snp.{name}")
    if not low < value <= high:
        raise ConfigurationError(
            f"{where}.{name} is out of range",
            check=f"config.snp.{name}",
            expected=f"> {low:g} and <= {high:g}",
            actual=value,
        )
    return float(value)


def _test_root(value: Any, where: str) -> tuple[AmdCertificate, Product]:
    certificates = _certificates(value, "test_ark", where)
    if len(certificates) != 1:
        raise ConfigurationError(
            f"{where}.test_ark must hold exactly one certificate", check="config.snp.test_ark"
        )
    root = certificates[0]
    name = root.subject_cn
    product = Product.named(name.removeprefix("ARK-")) if name.startswith("ARK-") else None
    if product is None or not root.signed_by(root):
        raise ConfigurationError(
            f"{where}.test_ark must be a self-signed ARK-<Product> certificate",
            check="config.snp.test_ark",
            actual=name,
        )
    return root, product


@attrs.frozen(kw_only=True)
class SnpSettings:
    certificates: tuple[AmdCertificate, ...] = ()
    """From the ``vcek``, ``ask`` and ``ark`` files."""
    crl: Crl | None = None
    crl_source: str | None = None
    kds: str = "auto"
    """``auto``: fetch what evidence and files lack (and, live, the CRL); ``never``."""
    kds_url: str = AMD_KDS_URL
    kds_timeout: float = _DEFAULT_TIMEOUT
    kds_cache_seconds: float = _DEFAULT_CACHE_SECONDS
    product: Product | None = None
    """For version 2 reports, which carry no CPUID."""
    anchors: Mapping[bytes, Product] = PINNED_ARKS
    """Trusted ARK fingerprints: AMD's, plus a configured test root."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "settings") -> SnpSettings:
        # The core refuses unknown names when it selects a validator; a hand-over builds this
        # validator directly, so a typo there must not be ignored either.
        refuse_unknown_names("settings", settings, SETTINGS, where=where)
        get = settings.get
        kwargs: dict[str, Any] = {}
        anchors = dict(PINNED_ARKS)
        certificates: list[AmdCertificate] = []
        if get("test_ark") not in (None, "", False):
            root, product = _test_root(get("test_ark"), where)
            anchors[root.digest] = product
            certificates.append(root)
        for name in ("vcek", "ask", "ark"):
            if get(name) is not None:
                certificates.extend(_certificates(get(name), name, where))
        if get("ark") is not None:
            for cert in _certificates(get("ark"), "ark", where):
                if cert.digest not in anchors:
                    raise ConfigurationError(
                        f"{where}.ark: {cert.subject_cn or 'the certificate'} is not one of "
                        "AMD's pinned ARKs (ARK-Milan, ARK-Genoa, ARK-Turin)",
                        check="config.snp.ark",
                        actual=cert.digest.hex(),
                    )
        if get("crl") is not None:
            data, label = _read(get("crl"), "crl", where)
            try:
                kwargs["crl"] = parse_crl(data)
            except ATLSError as error:
                raise ConfigurationError(
                    f"{where}.crl: {label} is not a CRL ({error.reason})", check="config.snp.crl"
                ) from None
            kwargs["crl_source"] = f"file:{label}"
        kds = get("kds", "auto")
        if kds not in KDS_MODES:
            raise ConfigurationError(
                f"{where}.kds must be one of {list(KDS_MODES)}",
                check="config.snp.kds",
                actual=kds,
            )
        kwargs["kds"] = kds
        if get("kds_url") is not None:
            url = get("kds_url")
            if not isinstance(url, str):
                raise ConfigurationError(
                    f"{where}.kds_url must be a URL", check="config.snp.kds_url"
                )
            kwargs["kds_url"] = check_kds_url(url, where=where)
        if get("kds_timeout") is not None:
            kwargs["kds_timeout"] = _number(
                get("kds_timeout"), "kds_timeout", where, low=0, high=300
            )
        if get("kds_cache_seconds") is not None:
            kwargs["kds_cache_seconds"] = _number(
                get("kds_cache_seconds"), "kds_cache_seconds", where, low=-1, high=30 * 86400
            )
        if get("product") is not None:
            named = Product.named(str(get("product")))
            if named is None:
                raise ConfigurationError(
                    f"{where}.product must be Milan, Genoa or Turin",
                    check="config.snp.product",
                    actual=get("product"),
                )
            kwargs["product"] = named
        return cls(
            certificates=tuple(certificates),
            anchors=MappingProxyType(anchors),
            **kwargs,
        )

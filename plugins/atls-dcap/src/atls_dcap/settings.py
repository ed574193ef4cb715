"""Settings of a DCAP verifier: where collateral comes from and whom to trust.

Parsed once per validator instance from its ``settings`` mapping; never from
the environment.  Intel PCS is the default source: a third-party PCCS is used
only when configured by URL.  A custom root (``root_ca`` + ``allow_custom_root``)
is for tests: validators list both in ``spec.test_settings``
(:data:`DCAP_TEST_SETTINGS`), so the core refuses them unless configuration
allows insecure test validators and caps any result at ``warning``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from atls_core.config import Secret, reveal
from atls_core.errors import ConfigurationError
from atls_core.interfaces import CliOption
from atls_core.redact import redact_url

__all__ = [
    "DCAP_CLI_OPTIONS",
    "DCAP_SETTINGS",
    "DCAP_TEST_SETTINGS",
    "INTEL_PCS_URL",
    "DcapSettings",
]

INTEL_PCS_URL = "https://api.trustedservices.intel.com"
"""Intel's Provisioning Certification Service (same value as ``dcap_qvl.INTEL_PCS_URL``)."""

DCAP_SETTINGS: tuple[str, ...] = (
    "collateral",
    "pccs_url",
    "collateral_file",
    "cache_dir",
    "collateral_timeout",
    "root_ca",
    "allow_custom_root",
)
"""Setting keys :class:`DcapSettings` understands; validators list them in ``spec.settings``."""

DCAP_TEST_SETTINGS: tuple[str, ...] = ("root_ca", "allow_custom_root")
"""The tests-only DCAP settings; validators list them in ``spec.test_settings``."""

DCAP_CLI_OPTIONS: tuple[CliOption, ...] = (
    CliOption(
        flag="--collateral",
        setting="collateral_file",
        help="Intel collateral JSON (QuoteCollateralV3) to verify against instead of "
        "fetching it from Intel PCS",
        metavar="FILE",
    ),
    CliOption(
        flag="--pccs-url",
        setting="pccs_url",
        help="fetch collateral from this PCCS instead of Intel PCS",
        metavar="URL",
    ),
)
"""``atls verify-evidence`` inputs of every DCAP validator (atls-tdx, atls-gramine)."""

_SOURCES = ("pcs", "pccs", "file")
_DEFAULT_TIMEOUT = 10.0
_MAX_TIMEOUT = 300.0


def _text(value: Any, key: str, where: str) -> str:
    if isinstance(value, Secret):
        value = reveal(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{where}.{key}: expected a non-empty string",
            check="config.dcap",
            actual=type(value).__name__,
        )
    return value.strip()


def _is_service_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname) and not parts.fragment


def _flag(value: Any, key: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(
        f"{where}.{key}: expected true or false", check="config.dcap", actual=value
    )


def _load_root(value: Any, where: str) -> bytes:
    """Read a root CA certificate (path to DER/PEM, or the bytes) and return its DER."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if isinstance(value, (bytes, bytearray)):
        data, path = bytes(value), "the given bytes"
    else:
        path = str(Path(_text(value, "root_ca", where)).expanduser())
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"{where}.root_ca: cannot read {path}: {exc.strerror}", check="config.dcap"
            ) from exc
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"{where}.root_ca: {path} is not a DER or PEM certificate", check="config.dcap"
        ) from exc
    return cert.public_bytes(Encoding.DER)


@attrs.frozen(kw_only=True)
class DcapSettings:
    """Validated DCAP settings (see :data:`DCAP_SETTINGS`)."""

    collateral: str = "pcs"
    """``pcs`` (Intel PCS), ``pccs`` (``pccs_url``) or ``file`` (``collateral_file``)."""
    pccs_url: str | None = attrs.field(
        default=None, repr=lambda url: repr(None if url is None else redact_url(url))
    )
    """May carry credentials (userinfo, a query token): shown redacted, sent as given."""
    collateral_file: Path | None = None
    cache_dir: Path | None = None
    """On-disk cache directory; ``None`` disables the disk cache."""
    collateral_timeout: float = _DEFAULT_TIMEOUT
    root_ca_der: bytes | None = attrs.field(default=None, repr=False)
    """A custom root (tests only); ``None`` means Intel's SGX root CA built into dcap-qvl."""

    @property
    def source_url(self) -> str | None:
        """Base URL collateral is fetched from (``None`` for a file)."""
        if self.collateral == "pcs":
            return INTEL_PCS_URL
        if self.collateral == "pccs":
            return self.pccs_url
        return None

    @property
    def source_name(self) -> str:
        """``pcs``, ``pccs:<url>`` or ``file:<path>``: recorded in every result.

        The PCCS URL is shown redacted (``scheme://host:port/path``): credentials
        or a token in its userinfo or query never reach results or errors.
        """
        if self.collateral == "pccs":
            assert self.pccs_url is not None
            return f"pccs:{redact_url(self.pccs_url)}"
        if self.collateral == "file":
            return f"file:{self.collateral_file}"
        return "pcs"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "settings") -> DcapSettings:
        """Validate the DCAP keys of ``settings``; other keys are left to the caller."""
        get = settings.get
        source = _text(get("collateral", "pcs"), "collateral", where).lower()
        if source not in _SOURCES:
            raise ConfigurationError(
                f"{where}.collateral: unknown collateral source",
                check="config.dcap",
                expected=list(_SOURCES),
                actual=source,
            )
        pccs_url: str | None = None
        if get("pccs_url") is not None:
            pccs_url = _text(get("pccs_url"), "pccs_url", where).rstrip("/")
            if not _is_service_url(pccs_url):
                raise ConfigurationError(
                    f"{where}.pccs_url: expected an http(s) URL without a fragment",
                    check="config.dcap",
                    actual=redact_url(pccs_url),
                )
        if source == "pccs" and pccs_url is None:
            raise ConfigurationError(
                f"{where}.pccs_url: required when collateral = 'pccs'", check="config.dcap"
            )
        if source != "pccs" and pccs_url is not None:
            raise ConfigurationError(
                f"{where}.pccs_url: only used with collateral = 'pccs'", check="config.dcap"
            )
        collateral_file: Path | None = None
        if get("collateral_file") is not None:
            collateral_file = Path(
                _text(get("collateral_file"), "collateral_file", where)
            ).expanduser()
        if source == "file" and collateral_file is None:
            raise ConfigurationError(
                f"{where}.collateral_file: required when collateral = 'file'", check="config.dcap"
            )
        if source != "file" and collateral_file is not None:
            raise ConfigurationError(
                f"{where}.collateral_file: only used with collateral = 'file'", check="config.dcap"
            )
        cache_dir: Path | None
        raw_cache = get("cache_dir")
        if raw_cache is None:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("atls")) / "dcap-collateral"
        else:
            text = _text(raw_cache, "cache_dir", where)
            cache_dir = None if text.lower() == "none" else Path(text).expanduser()
        timeout = get("collateral_timeout", _DEFAULT_TIMEOUT)
        if isinstance(timeout, str):
            try:
                timeout = float(timeout)
            except ValueError:
                timeout = None
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or not 0 < timeout <= _MAX_TIMEOUT
        ):
            raise ConfigurationError(
                f"{where}.collateral_timeout: expected seconds in (0, {_MAX_TIMEOUT:.0f}]",
                check="config.dcap",
                actual=get("collateral_timeout"),
            )
        allow_custom_root = _flag(get("allow_custom_root", False), "allow_custom_root", where)
        root_ca_der: bytes | None = None
        if get("root_ca") is not None:
            if not allow_custom_root:
                raise ConfigurationError(
                    f"{where}.root_ca: a custom DCAP root is for tests only and needs "
                    "allow_custom_root = true",
                    check="config.dcap.root_ca",
                )
            root_ca_der = _load_root(get("root_ca"), where)
        return cls(
            collateral=source,
            pccs_url=pccs_url,
            collateral_file=collateral_file,
            cache_dir=cache_dir,
            collateral_timeout=float(timeout),
            root_ca_der=root_ca_der,
        )

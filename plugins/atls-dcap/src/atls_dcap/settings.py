"""Settings of a DCAP verifier: where collateral comes from and whom to trust.

Declared once on the core's rules (:mod:`atls_core.settings`), like every
plugin's, and read once per validator instance from its ``settings`` mapping;
never from the environment.  Refusals keep DCAP's own check, ``config.dcap``.
Intel PCS is the default source: a third-party PCCS is used only when
configured by URL.  A custom root (``root_ca`` + ``allow_custom_root``) is for
tests: validators list both in ``spec.test_settings`` (:data:`DCAP_INPUTS`),
so the core refuses them unless configuration allows insecure test validators
and caps any result at ``warning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from atls_core.interfaces import CliOption
from atls_core.redact import redact_url
from atls_core.settings import (
    Invalid,
    Reading,
    SpecInputs,
    certificate,
    flag,
    load,
    path,
    seconds,
    setting,
    settings_class,
    spec_inputs,
    text,
    url,
)

if TYPE_CHECKING:  # annotations only: a listing of plugins need not import pathlib
    from pathlib import Path

__all__ = [
    "DCAP_CLI_OPTIONS",
    "DCAP_INPUTS",
    "DCAP_SETTINGS",
    "DCAP_TEST_SETTINGS",
    "INTEL_PCS_URL",
    "DcapSettings",
]

INTEL_PCS_URL = "https://api.trustedservices.intel.com"
"""Intel's Provisioning Certification Service (same value as ``dcap_qvl.INTEL_PCS_URL``)."""

_SOURCES = ("pcs", "pccs", "file")
_MAX_TIMEOUT = 300.0
_SOURCE = text(choices=_SOURCES)
_PCCS_URL = url(plain_http=True)  # collateral is signed by Intel: TLS adds no trust to it
_PATH = path()
_FLAG = flag()


def _source(value: Any, reading: Reading) -> str:
    """``pcs``, ``pccs`` or ``file``, in any case."""
    return _SOURCE(value.strip().lower() if isinstance(value, str) else value, reading)


def _pccs_url(value: Any, reading: Reading) -> str:
    return _PCCS_URL(value, reading).rstrip("/")


def _cache_dir(value: Any, reading: Reading) -> Path | None:
    """A directory (created when first used), or ``"none"``: no disk cache."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _PATH(value, reading)


def _default_cache_dir() -> Path:
    from pathlib import Path

    import platformdirs

    return Path(platformdirs.user_cache_dir("atls")) / "dcap-collateral"


def _flag_or_word(value: Any, reading: Reading) -> bool:
    """A boolean, or the words ``true``/``false`` (accepted since the first release)."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _FLAG(value, reading)


@settings_class
class DcapSettings:
    """Validated DCAP settings (see :data:`DCAP_SETTINGS`)."""

    collateral: str = setting(_source, default="pcs")
    """``pcs`` (Intel PCS), ``pccs`` (``pccs_url``) or ``file`` (``collateral_file``)."""
    pccs_url: str | None = setting(
        _pccs_url, default=None, repr=lambda url: repr(None if url is None else redact_url(url))
    )
    """May carry credentials (userinfo, a query token): shown redacted, sent as given."""
    collateral_file: Path | None = setting(_PATH, default=None)
    """Read when a quote is verified (a missing file is then ``config.dcap.collateral_file``)."""
    cache_dir: Path | None = setting(_cache_dir, default=attrs.Factory(_default_cache_dir))
    """On-disk cache directory; ``None`` disables the disk cache."""
    collateral_timeout: float = setting(seconds(at_most=_MAX_TIMEOUT), default=10.0)
    root_ca: bytes | None = setting(
        certificate(knob="allow_custom_root"), default=None, test_only=True, repr=False
    )
    """A custom root's DER (tests only); ``None`` means Intel's SGX root CA built into dcap-qvl."""
    allow_custom_root: bool = setting(_flag_or_word, default=False, test_only=True)

    def __attrs_post_init__(self) -> None:
        for name, source in (("pccs_url", "pccs"), ("collateral_file", "file")):
            given = getattr(self, name) is not None
            if self.collateral == source and not given:
                raise Invalid(f"is required when collateral = {source!r}", setting=name)
            if self.collateral != source and given:
                raise Invalid(f"is only used with collateral = {source!r}", setting=name)

    @property
    def root_ca_der(self) -> bytes | None:
        """The custom root's DER (``None``: Intel's root)."""
        return self.root_ca

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

        The PCCS URL is shown redacted (``scheme://host:port``): credentials or a
        token in its userinfo, path or query never reach results or errors.
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
        return load(cls, settings, where=where, partial=True, check="config.dcap")

    @classmethod
    def for_validator(cls, settings: Mapping[str, Any]) -> DcapSettings:
        """A validator's DCAP settings, where naming a collateral file or a PCCS chooses
        that source (``atls verify-evidence --collateral FILE`` passes only the file)."""
        values = dict(settings)
        if values.get("collateral") is None:
            if values.get("collateral_file") is not None:
                values["collateral"] = "file"
            elif values.get("pccs_url") is not None:
                values["collateral"] = "pccs"
        return cls.from_settings(values)


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

DCAP_INPUTS: SpecInputs = spec_inputs(DcapSettings, DCAP_CLI_OPTIONS)
"""``ValidatorSpec(..., **DCAP_INPUTS)``: what every DCAP validator reads from its settings."""
DCAP_SETTINGS = DCAP_INPUTS["settings"]
"""Setting keys :class:`DcapSettings` understands."""
DCAP_TEST_SETTINGS = DCAP_INPUTS["test_settings"]
"""The tests-only DCAP settings (``root_ca``, ``allow_custom_root``)."""

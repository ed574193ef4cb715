"""The toy HMAC "TEE": issuer and validator over one shared key.

INSECURE BY DESIGN: a shared HMAC key proves only that a key holder produced
the evidence, not where code runs.  It exists to show a complete third-party
plugin in a hundred lines: ``verify`` checks the MAC, records what it verified
through the :class:`atls_core.appraisal.Appraisal` setters and returns the
report data; the core binds it to the TLS key and applies the policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
from pathlib import Path

import attrs

from atls_core.appraisal import Appraisal
from atls_core.clock import Clock, SystemClock
from atls_core.config import reveal
from atls_core.errors import ConfigurationError, MalformedEvidence, StaleEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import IssuerSpec, ReportData, Settings, ValidatorBase, ValidatorSpec
from atls_example.plugin import ISSUER_SPEC, VALIDATOR_SPEC

__all__ = ["EVIDENCE_SIZE", "MAC_COVERS", "MAGIC", "HmacIssuer", "HmacValidator", "Quote", "parse"]

MAGIC = b"ATLSEX1\x00"
_BODY = struct.Struct(">8s64s32s?QQ")
EVIDENCE_SIZE = _BODY.size + 32
MAC_COVERS = (0, _BODY.size)
"""The byte range ``[start, end)`` of the evidence that its HMAC covers."""


@attrs.frozen(kw_only=True)
class Quote:
    report_data: bytes
    image: bytes
    debug: bool
    issued_at: dt.datetime
    not_after: dt.datetime


def _key(settings: Settings) -> bytes:
    if ("key" in settings) == ("key_file" in settings):
        raise ConfigurationError(
            "example.hmac needs exactly one of settings.key and settings.key_file",
            check="config.settings",
        )
    if "key" in settings:
        text = reveal(settings["key"])
    else:
        path = Path(str(settings["key_file"]))
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read settings.key_file {path}: {exc.strerror}", check="config.settings"
            ) from None
    try:
        key = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise ConfigurationError("the HMAC key must be hex", check="config.settings") from None
    if len(key) < 16:
        raise ConfigurationError(
            "the HMAC key is too short", check="config.settings", expected=">= 16 bytes"
        )
    return key


def parse(data: bytes, key: bytes) -> Quote:
    """Check the MAC first, then read the fields (nothing unauthenticated is used)."""
    if len(data) != EVIDENCE_SIZE:
        raise MalformedEvidence(
            "wrong evidence size", check="example.format", expected=EVIDENCE_SIZE, actual=len(data)
        )
    body, mac = data[: _BODY.size], data[_BODY.size :]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise UntrustedChain("HMAC does not verify under the configured key", check="example.mac")
    magic, report_data, image, debug, issued_at, not_after = _BODY.unpack(body)
    if magic != MAGIC:
        raise MalformedEvidence("bad magic", check="example.format", expected=MAGIC, actual=magic)
    return Quote(
        report_data=report_data,
        image=image,
        debug=debug,
        issued_at=dt.datetime.fromtimestamp(issued_at, dt.UTC),
        not_after=dt.datetime.fromtimestamp(not_after, dt.UTC),
    )


class HmacValidator(ValidatorBase):
    def __init__(self, settings: Settings, *, spec: ValidatorSpec = VALIDATOR_SPEC) -> None:
        self.spec = spec
        self._key = _key(settings)

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        """Check the MAC and the validity window; record what the evidence says.

        The core has checked the media type and, with the returned report data,
        binds the evidence to the TLS key and applies the policy (pinning the
        ``image`` included): a validator only vouches for what it verified.
        """
        quote = parse(evidence.data, self._key)
        if not quote.issued_at <= appraisal.now < quote.not_after:
            raise StaleEvidence(
                "evidence is outside its validity window",
                check="example.validity",
                expected=f"{quote.issued_at.isoformat()} .. {quote.not_after.isoformat()}",
                actual=appraisal.now.isoformat(),
            )
        appraisal.set_debug(quote.debug)
        appraisal.no_tcb("toy HMAC evidence carries no TCB")
        appraisal.measure("image", quote.image)
        appraisal.set_evidence_time(quote.issued_at)
        appraisal.valid_until(quote.not_after, "example evidence not_after")
        appraisal.warn("example.insecure", "TOY HMAC evidence: proves nothing about the platform")
        return ReportData(value=quote.report_data)


class HmacIssuer:
    def __init__(
        self, settings: Settings, *, spec: IssuerSpec = ISSUER_SPEC, clock: Clock | None = None
    ) -> None:
        self.spec = spec
        self._key = _key({k: v for k, v in settings.items() if k in ("key", "key_file")})
        image = bytes.fromhex(str(settings.get("image", "00" * 32)))
        if len(image) != 32:
            raise ConfigurationError("settings.image must be 32 bytes", check="config.settings")
        self._image = image
        self._debug = bool(settings.get("debug", False))
        self._lifetime = int(settings.get("lifetime", 3600))
        self._clock = clock or SystemClock()

    def issue(self, report_data: bytes) -> Evidence:
        if len(report_data) != 64:
            raise ValueError("report data is 64 bytes")
        now = int(self._clock.now().timestamp())
        body = _BODY.pack(MAGIC, report_data, self._image, self._debug, now, now + self._lifetime)
        return Evidence(
            media_type=self.spec.media_type,
            data=body + hmac.new(self._key, body, hashlib.sha256).digest(),
            source=EvidenceSource(transport=Transport.CERTIFICATE, oid=self.spec.oid),
        )

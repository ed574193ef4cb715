"""dstack's versioned attestation: the payload of the RA-TLS extension ``…62397.1.8``.

Current dstack writes its evidence into certificates only as a
``VersionedAttestation``; this module decodes it into one frozen model,
whichever of the two wire formats carried it:

- **V0** (first byte ``0x00``): SCALE.  ``0x00`` is the legacy envelope's only
  variant, then the platform quote (an enum: 0 TDX, 1 GCP TDX+TPM, 2 Nitro
  Enclave, 3 AMD SEV-SNP, 4 AWS NitroTPM), the runtime events, a fixed 64-byte
  report data and the VM config string.  SCALE skips the event-log ``version``
  and pre-image, so V0 events always follow the V1 digest rule.
- **V1** (a msgpack map): ``{"version": 1, "platform": {"kind", "data"},
  "stack": {"kind", "data"}}`` with structs as maps keyed by field name (as
  rmp-serde's ``to_vec_named`` writes them), plain byte vectors as arrays of
  small integers, the ``serde_human_bytes`` fields (event digests and
  payloads, TPM blobs) as msgpack ``bin`` -- either form is accepted for a byte
  field, as upstream's reader does -- and strings as ``str``.  Unknown keys are
  ignored, as upstream's serde structs do; duplicate keys, extension types,
  ``bin`` map keys, trailing bytes and over-long or over-deep values are refused.

Both are capped at 10 MiB as upstream.  Decoding trusts nothing: it only gives
the bytes names.  TDX evidence is appraised by this plugin
(:func:`tdx_parts`), SEV-SNP evidence by atls-snp's ``snp.report`` through a
hand-over (:mod:`atls_tdx.dstack_snp`); the other platforms decode to typed
variants so the refusal can say what they are.  App info (``.9``) is decoded
by :func:`decode_app_info`: an issuer's claims, never evidence.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import msgpack  # type: ignore[import-untyped]

from atls_core.errors import MalformedEvidence
from atls_tdx.dstack_eventlog import (
    DIGEST_SIZE,
    MAX_EVENTS,
    RTMR_COUNT,
    RUNTIME_EVENT_TYPE,
    Event,
)
from atls_tdx.scale import ScaleReader

__all__ = [
    "require_dstack_stack",
    "ATTESTATION_V1",
    "MAX_ATTESTATION_BYTES",
    "AwsNitroTpmPlatform",
    "DstackAppInfo",
    "DstackAttestation",
    "DstackStack",
    "GcpTdxPlatform",
    "NitroEnclavePlatform",
    "PcrValue",
    "Platform",
    "RuntimeEvent",
    "SevSnpPlatform",
    "TdxParts",
    "TdxPlatform",
    "TpmEvent",
    "TpmQuote",
    "decode_app_info",
    "decode_attestation",
    "tdx_parts",
    "unpack_msgpack",
]

MAX_ATTESTATION_BYTES = 10 * 1024 * 1024
"""Upstream's cap on an encoded attestation."""
ATTESTATION_V1 = 1
REPORT_DATA_SIZE = 64
MAX_CERT_CHAIN = 16
MAX_PCRS = 64
MAX_MSGPACK_DEPTH = 16
"""dstack's deepest V1 value nests six levels."""
MAX_MSGPACK_MAP = 1024
MAX_INIT_SCRIPTS = 5
MAX_APP_INFO_BYTES = 64 * 1024
"""App info is nine short fields; a few hundred bytes in practice."""

_PLATFORM_KINDS = ("tdx", "gcp-tdx", "nitro-enclave", "sev-snp", "aws-nitro-tpm")
"""V0 SCALE variant index -> V1 kind name (the V0 order is upstream's wire order)."""
_TPM_PLATFORMS = ("dstack", "gcp", "nitroenclave", "aws-ec2")
_STACK_KINDS = ("dstack", "dstack-pod")


def _hex(value: bytes) -> str:
    return value.hex()


# --- the model ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RuntimeEvent:
    """A dstack runtime event as the stack reports it (always measured into RTMR3)."""

    name: str
    payload: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    version: int = 1

    def as_event(self) -> Event:
        """As an RTMR3 log entry with no digest: replay computes it."""
        return Event(
            imr=3,
            event_type=RUNTIME_EVENT_TYPE,
            digest=b"",
            name=self.name,
            payload=self.payload,
            version=self.version,
        )


@attrs.frozen(kw_only=True)
class TdxPlatform:
    kind: ClassVar[str] = "tdx"
    quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    event_log: tuple[Event, ...] = attrs.field(repr=lambda v: f"<{len(v)} events>")


@attrs.frozen(kw_only=True)
class PcrValue:
    index: int
    algorithm: str
    value: bytes = attrs.field(repr=_hex)


@attrs.frozen(kw_only=True)
class TpmEvent:
    pcr_index: int
    digest: bytes = attrs.field(repr=_hex)


@attrs.frozen(kw_only=True)
class TpmQuote:
    message: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    signature: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    pcr_values: tuple[PcrValue, ...]
    ak_cert: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    platform: str
    """``dstack``, ``gcp``, ``nitroenclave`` or ``aws-ec2``."""
    event_log: tuple[TpmEvent, ...] = attrs.field(repr=lambda v: f"<{len(v)} events>")


@attrs.frozen(kw_only=True)
class GcpTdxPlatform:
    """Google Cloud: a TDX quote plus a vTPM quote over SHA-256(TDX quote)."""

    kind: ClassVar[str] = "gcp-tdx"
    quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    event_log: tuple[Event, ...] = attrs.field(repr=lambda v: f"<{len(v)} events>")
    tpm_quote: TpmQuote


@attrs.frozen(kw_only=True)
class SevSnpPlatform:
    """AMD SEV-SNP, kept whole so a SEV-SNP plugin can be handed the parts."""

    kind: ClassVar[str] = "sev-snp"
    report: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    cert_chain: tuple[bytes, ...] = attrs.field(repr=lambda v: f"<{len(v)} certificates>")
    mr_config: str
    """The MrConfigV3 JSON document the report's HOST_DATA commits to."""


@attrs.frozen(kw_only=True)
class NitroEnclavePlatform:
    kind: ClassVar[str] = "nitro-enclave"
    nsm_quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    """A COSE_Sign1 attestation document from the Nitro Security Module."""


@attrs.frozen(kw_only=True)
class AwsNitroTpmPlatform:
    kind: ClassVar[str] = "aws-nitro-tpm"
    attestation_doc: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


Platform = (
    TdxPlatform | GcpTdxPlatform | NitroEnclavePlatform | SevSnpPlatform | AwsNitroTpmPlatform
)


@attrs.frozen(kw_only=True)
class DstackStack:
    kind: str
    """``dstack``, or ``dstack-pod`` (report data commits to ``report_data_payload``)."""
    report_data: bytes = attrs.field(repr=_hex)
    runtime_events: tuple[RuntimeEvent, ...] = attrs.field(repr=lambda v: f"<{len(v)} events>")
    config: str = attrs.field(repr=lambda s: f"<{len(s)} chars>")
    report_data_payload: str | None = None


@attrs.frozen(kw_only=True)
class DstackAttestation:
    """A decoded ``VersionedAttestation``; nothing in it is verified."""

    wire_version: int
    """0 (SCALE) or 1 (msgpack)."""
    platform: Platform
    stack: DstackStack


# --- shared limits and errors ----------------------------------------------------------


def _error(check: str, message: str, **kw: Any) -> MalformedEvidence:
    return MalformedEvidence(message, check=f"dstack.attestation.{check}", **kw)


def _checked_event(event: Event, what: str) -> Event:
    """The shape :func:`~atls_tdx.dstack_eventlog.parse_event_log` also insists on."""
    if event.imr >= RTMR_COUNT:
        raise MalformedEvidence(
            f"{what}: imr {event.imr} names no RTMR",
            check="dstack.event_log",
            expected="0-3",
            actual=event.imr,
        )
    if len(event.digest) != DIGEST_SIZE and not (event.is_runtime and not event.digest):
        raise MalformedEvidence(
            f"{what}: digest must be {DIGEST_SIZE} bytes"
            + (" (or empty for a runtime event)" if event.is_runtime else ""),
            check="dstack.event_log",
            expected=DIGEST_SIZE,
            actual=len(event.digest),
        )
    return event


def decode_attestation(data: bytes) -> DstackAttestation:
    """Decode a ``VersionedAttestation`` (V0 SCALE or V1 msgpack), refusing trailing bytes."""
    data = bytes(data)
    if len(data) > MAX_ATTESTATION_BYTES:
        raise _error(
            "size",
            "the attestation is too large",
            expected=f"<= {MAX_ATTESTATION_BYTES} bytes",
            actual=len(data),
        )
    if not data:
        raise _error("empty", "the attestation is empty")
    first = data[0]
    if first == 0x00:
        return _decode_v0(data)
    if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):
        return _decode_v1(data)
    raise _error(
        "format",
        "unknown attestation wire format (neither SCALE V0 nor a msgpack map)",
        actual=f"first byte 0x{first:02x}",
    )


# --- V0: SCALE ---------------------------------------------------------------------------


def _scale_tdx_event(r: ScaleReader) -> Event:
    imr = r.u32()
    event_type = r.u32()
    digest = r.byte_vec(max_len=64)
    name = r.string(max_len=MAX_ATTESTATION_BYTES)
    payload = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
    return _checked_event(
        Event(imr=imr, event_type=event_type, digest=digest, name=name, payload=payload),
        f"event {name!r}",
    )


def _scale_tdx(r: ScaleReader) -> tuple[bytes, tuple[Event, ...]]:
    quote = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
    events = r.vec(_scale_tdx_event, max_items=MAX_EVENTS, min_item_size=11)
    return quote, tuple(events)


def _scale_pcr(r: ScaleReader) -> PcrValue:
    return PcrValue(
        index=r.u32(),
        algorithm=r.string(max_len=64),
        value=r.byte_vec(max_len=64),
    )


def _scale_tpm_event(r: ScaleReader) -> TpmEvent:
    return TpmEvent(pcr_index=r.u32(), digest=r.byte_vec(max_len=64))


def _scale_tpm_quote(r: ScaleReader) -> TpmQuote:
    with r.nested():
        message = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
        signature = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
        pcrs = r.vec(_scale_pcr, max_items=MAX_PCRS, min_item_size=6)
        ak_cert = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
        platform = _TPM_PLATFORMS[r.variant(len(_TPM_PLATFORMS), what="TPM platform")]
        events = r.vec(_scale_tpm_event, max_items=MAX_EVENTS, min_item_size=5)
    return TpmQuote(
        message=message,
        signature=signature,
        pcr_values=tuple(pcrs),
        ak_cert=ak_cert,
        platform=platform,
        event_log=tuple(events),
    )


def _scale_platform(r: ScaleReader) -> Platform:
    kind = _PLATFORM_KINDS[r.variant(len(_PLATFORM_KINDS), what="attestation quote")]
    with r.nested():
        if kind == "tdx":
            quote, events = _scale_tdx(r)
            return TdxPlatform(quote=quote, event_log=events)
        if kind == "gcp-tdx":
            quote, events = _scale_tdx(r)
            return GcpTdxPlatform(quote=quote, event_log=events, tpm_quote=_scale_tpm_quote(r))
        if kind == "nitro-enclave":
            return NitroEnclavePlatform(nsm_quote=r.byte_vec(max_len=MAX_ATTESTATION_BYTES))
        if kind == "sev-snp":
            report = r.byte_vec(max_len=MAX_ATTESTATION_BYTES)
            chain = r.vec(
                lambda item: item.byte_vec(max_len=MAX_ATTESTATION_BYTES),
                max_items=MAX_CERT_CHAIN,
            )
            mr_config = r.string(max_len=MAX_ATTESTATION_BYTES)
            return SevSnpPlatform(report=report, cert_chain=tuple(chain), mr_config=mr_config)
        return AwsNitroTpmPlatform(attestation_doc=r.byte_vec(max_len=MAX_ATTESTATION_BYTES))


def _scale_runtime_event(r: ScaleReader) -> RuntimeEvent:
    return RuntimeEvent(
        name=r.string(max_len=MAX_ATTESTATION_BYTES),
        payload=r.byte_vec(max_len=MAX_ATTESTATION_BYTES),
    )


def _decode_v0(data: bytes) -> DstackAttestation:
    r = ScaleReader(data, prefix="dstack.scale")
    r.variant(1, what="legacy attestation envelope")
    with r.nested():
        platform = _scale_platform(r)
        runtime_events = r.vec(_scale_runtime_event, max_items=MAX_EVENTS, min_item_size=2)
        report_data = r.fixed(REPORT_DATA_SIZE)
        config = r.string(max_len=MAX_ATTESTATION_BYTES)
        # The legacy struct's last field, `report: ()`, encodes to nothing.
    r.finish()
    return DstackAttestation(
        wire_version=0,
        platform=platform,
        stack=DstackStack(
            kind="dstack",
            report_data=report_data,
            runtime_events=tuple(runtime_events),
            config=config,
        ),
    )


# --- V1: msgpack ---------------------------------------------------------------------------


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise MalformedEvidence(
                "msgpack map keys must be strings", check="dstack.msgpack.key", actual=repr(key)
            )
        if key in result:
            raise MalformedEvidence(
                f"msgpack map repeats the key {key!r}", check="dstack.msgpack.duplicate_key"
            )
        result[key] = value
    return result


def _refuse_ext(code: int, _data: bytes) -> Any:
    raise MalformedEvidence(
        "msgpack extension types are not part of dstack's format",
        check="dstack.msgpack.ext",
        actual=code,
    )


def _check_tree(value: Any, limit: int) -> None:
    """Depth, and the timestamp extension msgpack decodes without asking ``ext_hook``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, msgpack.Timestamp):
            _refuse_ext(-1, b"")
        if isinstance(item, (list, dict)):
            if depth > limit:
                raise MalformedEvidence(
                    "msgpack values are nested too deeply",
                    check="dstack.msgpack.depth",
                    expected=limit,
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend(
                (child, depth + 1)
                for child in children
                if isinstance(child, (list, dict, msgpack.Timestamp))
            )


def unpack_msgpack(data: bytes, *, max_bytes: int = MAX_ATTESTATION_BYTES) -> Any:
    """msgpack with strict limits: str keys, no ext types, no duplicate keys, no trailing bytes."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            object_pairs_hook=_pairs_to_dict,
            ext_hook=_refuse_ext,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=MAX_MSGPACK_MAP,
            max_ext_len=max_bytes,
        )
    except msgpack.ExtraData:
        raise MalformedEvidence(
            "bytes follow the msgpack value", check="dstack.msgpack.trailing_bytes"
        ) from None
    except msgpack.StackError:
        raise MalformedEvidence(
            "msgpack values are nested too deeply", check="dstack.msgpack.depth"
        ) from None
    except UnicodeDecodeError:
        raise MalformedEvidence(
            "a msgpack string is not valid UTF-8", check="dstack.msgpack.utf8"
        ) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        raise MalformedEvidence(
            f"not decodable msgpack ({exc})", check="dstack.msgpack.decode"
        ) from None
    _check_tree(value, MAX_MSGPACK_DEPTH)
    return value


_MISSING: Any = object()


class _Map:
    """One msgpack map read against a schema; errors name the field's path."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _error("schema", f"{where} must be a map", actual=type(value).__name__)
        self.value: dict[str, Any] = value
        self.where = where

    def _get(self, key: str, default: Any) -> Any:
        if key in self.value:
            return self.value[key]
        if default is _MISSING:
            raise _error("schema", f"{self.where}.{key} is missing")
        return default

    def wrong(self, key: str, expected: str) -> MalformedEvidence:
        return _error("schema", f"{self.where}.{key} must be {expected}")

    def integer(self, key: str, limit: int, default: Any = _MISSING) -> int:
        value = self._get(key, default)
        if type(value) is not int or not 0 <= value < limit:
            raise self.wrong(key, f"an integer in [0, {limit})")
        return value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.wrong(key, "a string")
        return value

    def blob(self, key: str, default: Any = _MISSING) -> bytes:
        return _as_bytes(self._get(key, default), lambda: self.wrong(key, "bytes"))

    def array(self, key: str, max_items: int) -> list[Any]:
        value = self._get(key, _MISSING)
        if not isinstance(value, list):
            raise self.wrong(key, "an array")
        if len(value) > max_items:
            raise _error(
                "schema",
                f"{self.where}.{key} is too long",
                expected=f"<= {max_items}",
                actual=len(value),
            )
        return value

    def submap(self, key: str) -> _Map:
        return _Map(self._get(key, _MISSING), f"{self.where}.{key}")

    def optional(self, key: str) -> Any:
        """A field serde skips when None (or writes as nil)."""
        return self.value.get(key)


def _as_bytes(value: Any, error: Callable[[], MalformedEvidence]) -> bytes:
    """A byte field: msgpack ``bin``, or an array of integers 0-255 (a serde ``Vec<u8>``)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, list) and all(type(item) is int for item in value):
        try:
            return bytes(value)
        except ValueError:
            pass
    raise error()


def _mp_version(fields: _Map) -> int:
    version = fields.optional("version")
    if version is None:
        return 1
    if type(version) is not int or version not in (1, 2):
        raise fields.wrong("version", "an event log version (1 or 2)")
    return version


def _mp_tdx_event(value: Any, where: str) -> Event:
    fields = _Map(value, where)
    imr = fields.integer("imr", 1 << 32)
    preimage_hex = fields.optional("preimage")
    preimage = None
    if preimage_hex is not None:
        try:
            preimage = bytes.fromhex(preimage_hex) if isinstance(preimage_hex, str) else None
        except ValueError:
            preimage = None
        if preimage is None:
            raise fields.wrong("preimage", "a hex string")
    event = Event(
        imr=imr,
        event_type=fields.integer("event_type", 1 << 32),
        digest=fields.blob("digest", b""),
        name=fields.text("event"),
        payload=fields.blob("event_payload"),
        version=_mp_version(fields),
        preimage=preimage,
    )
    return _checked_event(event, where)


def _mp_event_log(fields: _Map) -> tuple[Event, ...]:
    return tuple(
        _mp_tdx_event(item, f"{fields.where}.event_log[{index}]")
        for index, item in enumerate(fields.array("event_log", MAX_EVENTS))
    )


def _mp_tpm_quote(fields: _Map) -> TpmQuote:
    pcrs = []
    for index, item in enumerate(fields.array("pcr_values", MAX_PCRS)):
        pcr = _Map(item, f"{fields.where}.pcr_values[{index}]")
        pcrs.append(
            PcrValue(
                index=pcr.integer("index", 1 << 32),
                algorithm=pcr.text("algorithm"),
                value=pcr.blob("value"),
            )
        )
    events = []
    for index, item in enumerate(fields.array("event_log", MAX_EVENTS)):
        event = _Map(item, f"{fields.where}.event_log[{index}]")
        events.append(
            TpmEvent(pcr_index=event.integer("pcr_index", 1 << 32), digest=event.blob("digest"))
        )
    platform = fields.text("platform")
    if platform not in _TPM_PLATFORMS:
        raise fields.wrong("platform", f"one of {list(_TPM_PLATFORMS)}")
    return TpmQuote(
        message=fields.blob("message"),
        signature=fields.blob("signature"),
        pcr_values=tuple(pcrs),
        ak_cert=fields.blob("ak_cert"),
        platform=platform,
        event_log=tuple(events),
    )


def _mp_platform(outer: _Map) -> Platform:
    kind = outer.text("kind")
    if kind not in _PLATFORM_KINDS:
        raise _error(
            "platform", "unknown platform kind", expected=list(_PLATFORM_KINDS), actual=kind
        )
    data = outer.submap("data")
    if kind == "tdx":
        return TdxPlatform(quote=data.blob("quote"), event_log=_mp_event_log(data))
    if kind == "gcp-tdx":
        return GcpTdxPlatform(
            quote=data.blob("quote"),
            event_log=_mp_event_log(data),
            tpm_quote=_mp_tpm_quote(data.submap("tpm_quote")),
        )
    if kind == "nitro-enclave":
        return NitroEnclavePlatform(nsm_quote=data.blob("nsm_quote"))
    if kind == "sev-snp":
        chain = tuple(
            _as_bytes(item, lambda: data.wrong("cert_chain", "an array of byte strings"))
            for item in data.array("cert_chain", MAX_CERT_CHAIN)
        )
        return SevSnpPlatform(
            report=data.blob("report"), cert_chain=chain, mr_config=data.text("mr_config")
        )
    return AwsNitroTpmPlatform(attestation_doc=data.blob("attestation_doc"))


def _mp_stack(outer: _Map) -> DstackStack:
    kind = outer.text("kind")
    if kind not in _STACK_KINDS:
        raise _error("stack", "unknown stack kind", expected=list(_STACK_KINDS), actual=kind)
    data = outer.submap("data")
    report_data = data.blob("report_data")
    if len(report_data) != REPORT_DATA_SIZE:
        raise _error(
            "report_data",
            "stack.report_data must be 64 bytes",
            expected=REPORT_DATA_SIZE,
            actual=len(report_data),
        )
    events = []
    for index, item in enumerate(data.array("runtime_events", MAX_EVENTS)):
        fields = _Map(item, f"stack.data.runtime_events[{index}]")
        events.append(
            RuntimeEvent(
                name=fields.text("event"),
                payload=fields.blob("payload"),
                version=_mp_version(fields),
            )
        )
    return DstackStack(
        kind=kind,
        report_data=report_data,
        runtime_events=tuple(events),
        config=data.text("config"),
        report_data_payload=data.text("report_data_payload") if kind == "dstack-pod" else None,
    )


def _decode_v1(data: bytes) -> DstackAttestation:
    top = _Map(unpack_msgpack(data), "attestation")
    version = top.value.get("version", _MISSING)
    if version is _MISSING or type(version) is not int:
        raise _error("schema", "attestation.version must be an integer")
    if version != ATTESTATION_V1:
        raise _error(
            "version", "unsupported attestation version", expected=ATTESTATION_V1, actual=version
        )
    return DstackAttestation(
        wire_version=1,
        platform=_mp_platform(top.submap("platform")),
        stack=_mp_stack(top.submap("stack")),
    )


# --- what atls-tdx appraises ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TdxParts:
    """The parts of a TDX attestation the ``tdx.dstack`` validator appraises."""

    quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    events: tuple[Event, ...] = attrs.field(repr=lambda v: f"<{len(v)} events>")
    """The platform log's RTMR0-2 events, then the stack's runtime events as RTMR3
    (digests left for replay to compute)."""
    report_data: bytes = attrs.field(repr=_hex)
    config: str = attrs.field(repr=lambda s: f"<{len(s)} chars>")
    vm_config: str | None = attrs.field(default=None, repr=False)


def require_dstack_stack(attestation: DstackAttestation) -> DstackStack:
    """The attestation's stack, which must be plain dstack (whatever the platform).

    A dstack-pod stack commits its report data to an application payload, not to
    the certificate key, so the RA-TLS binding cannot hold.
    """
    stack = attestation.stack
    if stack.kind != "dstack":
        raise MalformedEvidence(
            "a dstack-pod attestation commits its report data to an application payload, "
            "not to the certificate key",
            check="dstack.unsupported_stack",
            expected="dstack",
            actual=stack.kind,
        )
    return stack


def _refuse_platform(platform: Platform) -> MalformedEvidence:
    if isinstance(platform, SevSnpPlatform):
        return MalformedEvidence(
            "this dstack attestation carries AMD SEV-SNP evidence, which has no TDX parts: "
            "tdx.dstack hands its report to snp.report (atls_tdx.dstack_snp)",
            check="dstack.unsupported_platform",
            expected="tdx",
            actual=platform.kind,
        )
    reason = {
        "gcp-tdx": "GCP TDX+TPM evidence (its vTPM quote is not appraised by atls-tdx)",
        "nitro-enclave": "AWS Nitro Enclave evidence",
        "aws-nitro-tpm": "AWS NitroTPM evidence",
    }[platform.kind]
    return MalformedEvidence(
        f"this dstack attestation carries {reason}; atls-tdx appraises Intel TDX only",
        check="dstack.unsupported_platform",
        expected="tdx",
        actual=platform.kind,
    )


def _same_runtime_event(logged: Event, reported: RuntimeEvent) -> bool:
    return (
        logged.is_runtime
        and logged.name == reported.name
        and logged.payload == reported.payload
        and logged.version == reported.version
    )


def _vm_config(config: str) -> str | None:
    """The VM config: nested under ``vm_config`` in older sys-configs, else the config itself."""
    try:
        document = json.loads(config) if config else None
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("vm_config"), str):
        nested: str = document["vm_config"]
        return nested
    return config or None


def tdx_parts(attestation: DstackAttestation) -> TdxParts:
    """Check a TDX attestation is self-consistent and return what the validator appraises.

    The stack's runtime events are what upstream replays into RTMR3; the
    platform log's RTMR3 entries must say the same where both have an entry
    (one may be longer: dstack reads them at two moments), and a digest they
    carry is checked, never used.  The stack's report data must be the
    quote's.  Nothing here is trusted yet: the quote is verified afterwards.
    """
    from atls_dcap.report import parse_report_fields

    platform = attestation.platform
    if not isinstance(platform, TdxPlatform):
        raise _refuse_platform(platform)
    stack = require_dstack_stack(attestation)
    tee, _version, fields = parse_report_fields(platform.quote)
    if tee != "tdx":
        raise MalformedEvidence("the platform quote is not a TDX quote", check="tdx.tee_type")
    if fields["report_data"] != stack.report_data:
        raise MalformedEvidence(
            "the attestation's report data is not the quote's",
            check="dstack.report_data",
            expected=fields["report_data"],
            actual=stack.report_data,
        )
    logged = [event for event in platform.event_log if event.imr == 3]
    for index, (entry, reported) in enumerate(zip(logged, stack.runtime_events, strict=False)):
        if not _same_runtime_event(entry, reported):
            raise MalformedEvidence(
                f"RTMR3 event {index} of the event log ({entry.name!r}) is not runtime event "
                f"{index} of the attestation ({reported.name!r})",
                check="dstack.runtime_events",
            )
        entry.check_supplied(index)
    events = (
        *(event for event in platform.event_log if event.imr != 3),
        *(event.as_event() for event in stack.runtime_events),
    )
    return TdxParts(
        quote=platform.quote,
        events=events,
        report_data=stack.report_data,
        config=stack.config,
        vm_config=_vm_config(stack.config),
    )


# --- app info (.9) ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DstackAppInfo:
    """The ``.9`` extension: what the certificate's issuer says about the app.

    Claims only: nothing signs them but the certificate issuer, so a validator
    may show them or compare them with the measured log, never rely on them.
    """

    app_id: bytes = attrs.field(repr=_hex)
    compose_hash: bytes = attrs.field(repr=_hex)
    instance_id: bytes = attrs.field(repr=_hex)
    device_id: bytes = attrs.field(repr=_hex)
    mr_system: bytes = attrs.field(repr=_hex)
    mr_aggregated: bytes = attrs.field(repr=_hex)
    os_image_hash: bytes = attrs.field(repr=_hex)
    key_provider_info: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    init_script_hashes: tuple[bytes, ...] | None = None

    def to_claims(self) -> dict[str, Any]:
        """Hex strings keyed as upstream's JSON names them."""
        claims: dict[str, Any] = {
            name: getattr(self, name).hex()
            for name in _APP_INFO_FIELDS
            if name != "init_script_hashes"
        }
        if self.init_script_hashes is not None:
            claims["init_script_hashes"] = [value.hex() for value in self.init_script_hashes]
        return claims


_APP_INFO_FIELDS = (
    "app_id",
    "compose_hash",
    "instance_id",
    "device_id",
    "mr_system",
    "mr_aggregated",
    "os_image_hash",
    "key_provider_info",
    "init_script_hashes",
)


def _app_info_error(message: str, **kw: Any) -> MalformedEvidence:
    return MalformedEvidence(message, check="dstack.app_info", **kw)


def decode_app_info(data: bytes) -> DstackAppInfo:
    """Decode ``.9``: msgpack of upstream's AppInfo, as an array of fields (what upstream
    writes) or a map keyed by field name; ``init_script_hashes`` may be absent."""
    data = bytes(data)
    if len(data) > MAX_APP_INFO_BYTES:
        raise _app_info_error(
            "app info is too large", expected=f"<= {MAX_APP_INFO_BYTES}", actual=len(data)
        )
    value = unpack_msgpack(data, max_bytes=MAX_APP_INFO_BYTES)
    if isinstance(value, list):
        if len(value) not in (len(_APP_INFO_FIELDS) - 1, len(_APP_INFO_FIELDS)):
            raise _app_info_error(
                "app info has the wrong number of fields",
                expected=len(_APP_INFO_FIELDS),
                actual=len(value),
            )
        fields = dict(zip(_APP_INFO_FIELDS, value, strict=False))
    elif isinstance(value, dict):
        fields = value
    else:
        raise _app_info_error("app info must be a msgpack array or map")
    parsed: dict[str, Any] = {}
    for name in _APP_INFO_FIELDS[:-1]:
        if name not in fields:
            raise _app_info_error(f"app info has no {name}")
        parsed[name] = _as_bytes(
            fields[name], functools.partial(_app_info_error, f"{name} must be bytes")
        )
    for name in ("mr_system", "mr_aggregated"):
        if len(parsed[name]) != 32:
            raise _app_info_error(f"{name} must be 32 bytes", actual=len(parsed[name]))
    hashes = fields.get("init_script_hashes")
    if hashes is not None:
        if not isinstance(hashes, list) or len(hashes) > MAX_INIT_SCRIPTS:
            raise _app_info_error(f"init_script_hashes must be at most {MAX_INIT_SCRIPTS} hashes")
        parsed["init_script_hashes"] = tuple(
            _check_32(
                _as_bytes(item, lambda: _app_info_error("init_script_hashes must hold bytes"))
            )
            for item in hashes
        )
    return DstackAppInfo(**parsed)


def _check_32(value: bytes) -> bytes:
    if len(value) != 32:
        raise _app_info_error("each init_script_hash must be 32 bytes", actual=len(value))
    return value

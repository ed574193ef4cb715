"""dstack's attestation extension: V0 (SCALE) and V1 (msgpack) decoding, limits, platforms."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_dcap.report import parse_report_fields
from atls_tdx.dstack_attestation import (
    MAX_ATTESTATION_BYTES,
    AwsNitroTpmPlatform,
    DstackAttestation,
    DstackStack,
    GcpTdxPlatform,
    NitroEnclavePlatform,
    PcrValue,
    RuntimeEvent,
    SevSnpPlatform,
    TdxPlatform,
    TpmEvent,
    TpmQuote,
    decode_app_info,
    decode_attestation,
    tdx_parts,
)
from atls_tdx.dstack_eventlog import (
    MAX_EVENTS,
    RUNTIME_EVENT_TYPE,
    Event,
    check_replay,
    dstack_facts,
    event_log_json,
    parse_event_log,
    stripped_event_log,
)
from atls_tdx.scale import ScaleReader
from atls_tdx.testing.dstack import (
    app_info_msgpack,
    dstack_event_log,
    encode_attestation,
    replay_rtmrs,
    scale_compact,
    tdx_attestation,
)

REPORT_DATA = hashlib.sha512(b"report data").digest()
BOOT = Event(imr=0, event_type=0x80000001, digest=bytes(range(48)), name="", payload=b"\x01")
RUNTIME = Event(
    imr=3,
    event_type=RUNTIME_EVENT_TYPE,
    digest=b"",
    name="app-id",
    payload=b"\x22" * 20,
)
TPM = TpmQuote(
    message=b"attest",
    signature=b"sig",
    pcr_values=(PcrValue(index=0, algorithm="sha256", value=b"\x00" * 32),),
    ak_cert=b"cert",
    platform="gcp",
    event_log=(TpmEvent(pcr_index=14, digest=b"\x11" * 32),),
)
STACK = DstackStack(
    kind="dstack",
    report_data=REPORT_DATA,
    runtime_events=(RuntimeEvent(name="app-id", payload=b"\x22" * 20),),
    config='{"spec_version":1}',
)
PLATFORMS = [
    TdxPlatform(quote=b"quote", event_log=(BOOT, RUNTIME)),
    GcpTdxPlatform(quote=b"quote", event_log=(RUNTIME,), tpm_quote=TPM),
    NitroEnclavePlatform(nsm_quote=b"cose"),
    SevSnpPlatform(report=b"\x02" * 1184, cert_chain=(b"vcek", b"ask"), mr_config="{}"),
    AwsNitroTpmPlatform(attestation_doc=b"doc"),
]


def attestation(platform: Any = PLATFORMS[0], *, wire: int = 0, **stack: Any) -> DstackAttestation:
    return DstackAttestation(
        wire_version=wire, platform=platform, stack=attrs.evolve(STACK, **stack)
    )


def v0(platform: Any = PLATFORMS[0], **stack: Any) -> bytes:
    return encode_attestation(attestation(platform, **stack), wire_version=0)


def v1_document(platform: Any = PLATFORMS[0], **stack: Any) -> dict[str, Any]:
    document: dict[str, Any] = msgpack.unpackb(
        encode_attestation(attestation(platform, wire=1, **stack)), raw=False
    )
    return document


def pack(document: Any) -> bytes:
    packed: bytes = msgpack.packb(document, use_bin_type=True)
    return packed


def refused(data: bytes) -> MalformedEvidence:
    with pytest.raises(MalformedEvidence) as info:
        decode_attestation(data)
    return info.value


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.kind)
@pytest.mark.parametrize("wire", [0, 1])
def test_every_platform_round_trips_in_both_wire_formats(platform: Any, wire: int) -> None:
    original = attestation(platform, wire=wire)
    data = encode_attestation(original)
    assert data[0] == 0x00 if wire == 0 else 0x80 <= data[0] <= 0x8F
    assert decode_attestation(data) == original


def test_v0_layout_is_upstreams() -> None:
    data = v0(NitroEnclavePlatform(nsm_quote=b"cose"), runtime_events=(), config="")
    # envelope V0, quote variant 2 (Nitro Enclave), Vec<u8> "cose", no runtime events,
    # 64 bytes of report data, empty config, and nothing for `report: ()`.
    assert data == b"\x00\x02" + b"\x10cose" + b"\x00" + REPORT_DATA + b"\x00"


def test_v1_carries_v2_events_pod_stacks_and_preimages() -> None:
    preimage = b'{"name":"app-id","payload":"","type":134217729}'
    event = attrs.evolve(RUNTIME, version=2, preimage=preimage, payload=b"")
    original = attestation(
        TdxPlatform(quote=b"q", event_log=(event,)),
        wire=1,
        kind="dstack-pod",
        report_data_payload='{"hello":"world"}',
        runtime_events=(RuntimeEvent(name="app-id", payload=b"", version=2),),
    )
    assert decode_attestation(encode_attestation(original)) == original
    with pytest.raises(ValueError):
        encode_attestation(original, wire_version=0)  # as upstream: V0 cannot say "V2"


def test_v1_byte_fields_accept_bin_and_integer_arrays() -> None:
    document = v1_document()
    data = document["platform"]["data"]
    data["quote"] = bytes(data["quote"])  # bin instead of rmp-serde's array
    data["event_log"][0]["digest"] = list(data["event_log"][0]["digest"])
    document["stack"]["data"]["report_data"] = bytes(document["stack"]["data"]["report_data"])
    assert decode_attestation(pack(document)) == attestation(wire=1)


def test_v1_ignores_unknown_keys_as_upstream() -> None:
    document = v1_document()
    document["future"] = {"anything": [1, 2, 3]}
    document["platform"]["data"]["extra"] = "x"
    assert decode_attestation(pack(document)) == attestation(wire=1)


# --- envelope and limits ------------------------------------------------------------------------


def test_empty_oversized_and_unknown_formats_are_named() -> None:
    assert refused(b"").check == "dstack.attestation.empty"
    assert refused(b"\x00" * (MAX_ATTESTATION_BYTES + 1)).check == "dstack.attestation.size"
    for first in (b"\x01", b"\x90", b"\xa0", b"\xd9"):
        assert refused(first + b"\x00").check == "dstack.attestation.format"


def test_v0_refuses_trailing_bytes() -> None:
    assert refused(v0() + b"\x00").check == "dstack.scale.trailing_bytes"


def test_v0_refuses_every_truncation() -> None:
    data = v0()
    for cut in range(1, len(data)):
        assert refused(data[:cut]).check.startswith("dstack.scale."), cut


@pytest.mark.parametrize("variant", [5, 255])
def test_v0_unknown_quote_variant(variant: int) -> None:
    data = bytearray(v0())
    data[1] = variant
    assert refused(bytes(data)).check == "dstack.scale.variant"


def test_v0_unknown_tpm_platform() -> None:
    good = v0(PLATFORMS[1])
    marker = b"\x10cert\x01"  # ak_cert then platform "gcp" (1)
    assert good.count(marker) == 1
    assert refused(good.replace(marker, b"\x10cert\x09")).check == "dstack.scale.variant"


def test_v0_non_canonical_compact_length() -> None:
    # The quote length (5) written in the two-byte mode instead of one byte.
    good = v0()
    assert good[2] == 5 << 2
    bad = good[:2] + ((5 << 2) | 1).to_bytes(2, "little") + good[3:]
    assert refused(bad).check == "dstack.scale.compact"


def test_v0_invalid_utf8() -> None:
    good = v0(runtime_events=(RuntimeEvent(name="abc", payload=b""),))
    assert refused(good.replace(b"\x0cabc", b"\x0cab\xff")).check == "dstack.scale.utf8"


def test_v0_too_many_events() -> None:
    data = b"\x00\x00" + b"\x14quote" + scale_compact(MAX_EVENTS + 1)
    assert refused(data).check == "dstack.scale.length"


def test_v0_collection_longer_than_the_input() -> None:
    data = b"\x00\x00" + scale_compact(1_000_000) + b"short"
    assert refused(data).check == "dstack.scale.truncated"


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (attrs.evolve(BOOT, imr=4), "imr"),
        (attrs.evolve(BOOT, digest=b"\x00" * 47), "digest"),
        (attrs.evolve(BOOT, digest=b""), "digest"),
        (attrs.evolve(RUNTIME, digest=b"\x00" * 20), "digest"),
    ],
)
@pytest.mark.parametrize("wire", [0, 1])
def test_malformed_events_are_refused(event: Event, fragment: str, wire: int) -> None:
    data = encode_attestation(attestation(TdxPlatform(quote=b"q", event_log=(event,)), wire=wire))
    error = refused(data)
    assert error.check == "dstack.event_log"
    assert fragment in str(error)


# --- V1 strictness --------------------------------------------------------------------------------


def test_v1_refuses_trailing_bytes() -> None:
    assert refused(pack(v1_document()) + b"\xc0").check == "dstack.msgpack.trailing_bytes"


def test_v1_refuses_truncation() -> None:
    data = pack(v1_document())
    for cut in (1, 2, len(data) // 2, len(data) - 1):
        assert refused(data[:cut]).check.startswith("dstack."), cut


def test_v1_version_must_be_1() -> None:
    document = v1_document()
    document["version"] = 2
    assert refused(pack(document)).check == "dstack.attestation.version"
    del document["version"]
    assert refused(pack(document)).check == "dstack.attestation.schema"
    document["version"] = "1"
    assert refused(pack(document)).check == "dstack.attestation.schema"


def test_v1_refuses_duplicate_keys() -> None:
    # The top map with "version" twice: a Python dict cannot say it, so write it by hand.
    packer = msgpack.Packer(use_bin_type=True)
    document = v1_document()
    raw = (
        bytes([0x80 | (len(document) + 1)])
        + packer.pack("version")
        + packer.pack(1)
        + b"".join(packer.pack(k) + packer.pack(v) for k, v in document.items())
    )
    assert refused(raw).check == "dstack.msgpack.duplicate_key"


@pytest.mark.parametrize(
    "value",
    [msgpack.ExtType(5, b"xx"), msgpack.Timestamp(1, 0)],
    ids=["ext", "timestamp"],
)
def test_v1_refuses_extension_types(value: Any) -> None:
    document = v1_document()
    document["extra"] = value
    assert refused(pack(document)).check == "dstack.msgpack.ext"


def test_v1_refuses_non_string_keys() -> None:
    assert refused(pack({**v1_document(), b"bin": 1})).check == "dstack.msgpack.key"
    assert refused(pack({**v1_document(), 7: 1})).check == "dstack.msgpack.decode"


def test_v1_refuses_deep_nesting_even_in_ignored_fields() -> None:
    document = v1_document()
    deep: Any = 0
    for _ in range(40):
        deep = [deep]
    document["extra"] = deep
    assert refused(pack(document)).check == "dstack.msgpack.depth"


def test_v1_refuses_invalid_utf8() -> None:
    data = pack(v1_document(config="zz"))
    assert data.count(b"\xa2zz") == 1
    assert refused(data.replace(b"\xa2zz", b"\xa2z\xff")).check == "dstack.msgpack.utf8"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (_set("platform.kind", "sgx"), "dstack.attestation.platform"),
        (_set("stack.kind", "other"), "dstack.attestation.stack"),
        (_set("platform.data", [1]), "dstack.attestation.schema"),
        (_set("platform.data.quote", "hex?"), "dstack.attestation.schema"),
        (_set("platform.data.quote", [1, 256]), "dstack.attestation.schema"),
        (_set("platform.data.quote", [True]), "dstack.attestation.schema"),
        (_set("platform.data.quote", KeyError), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.imr", -1), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.imr", True), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.event_type", 1 << 32), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.event", b"bin"), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.version", 3), "dstack.attestation.schema"),
        (_set("platform.data.event_log.0.preimage", "zz"), "dstack.attestation.schema"),
        (_set("platform.data.event_log", {}), "dstack.attestation.schema"),
        (_set("stack.data.report_data", [0] * 63), "dstack.attestation.report_data"),
        (_set("stack.data.runtime_events.0.payload", "text"), "dstack.attestation.schema"),
        (_set("stack.data.config", None), "dstack.attestation.schema"),
    ],
)
def test_v1_schema_errors_are_named(mutate: Callable[[dict[str, Any]], None], check: str) -> None:
    document = v1_document()
    mutate(document)
    assert refused(pack(document)).check == check


def test_v1_caps_collections() -> None:
    document = v1_document(PLATFORMS[3])
    document["platform"]["data"]["cert_chain"] = [[1]] * 17
    assert refused(pack(document)).check == "dstack.attestation.schema"
    document = v1_document()
    document["platform"]["data"]["event_log"] = [document["platform"]["data"]["event_log"][0]] * (
        MAX_EVENTS + 1
    )
    assert refused(pack(document)).check == "dstack.attestation.schema"


def test_missing_digest_in_v1_means_computed() -> None:
    document = v1_document()
    runtime = document["platform"]["data"]["event_log"][1]
    del runtime["digest"]
    decoded = decode_attestation(pack(document))
    assert isinstance(decoded.platform, TdxPlatform)
    assert decoded.platform.event_log[1].digest == b""


# --- what atls-tdx appraises ------------------------------------------------------------------


def test_only_tdx_has_tdx_parts() -> None:
    # SEV-SNP goes to snp.report instead (test_dstack_snp.py); the others are refused.
    for platform in PLATFORMS[1:]:
        with pytest.raises(MalformedEvidence) as info:
            tdx_parts(attestation(platform))
        assert info.value.check == "dstack.unsupported_platform"
        if isinstance(platform, SevSnpPlatform):
            assert "snp.report" in str(info.value)


def _synthetic_attestation(synthetic: Any, **kw: Any) -> DstackAttestation:
    events = kw.pop("events", dstack_event_log())
    quote = synthetic.quote(REPORT_DATA, rtmr=replay_rtmrs(events))
    return tdx_attestation(quote, events, report_data=REPORT_DATA, **kw)


def _quoted_rtmrs(quote: bytes) -> list[bytes]:
    _, _, fields = parse_report_fields(quote)
    rtmrs: list[bytes] = []
    for index in range(4):
        rtmr = fields[f"rtmr{index}"]
        assert isinstance(rtmr, bytes), rtmr  # bytes(int) would hide a misread field as zeros
        rtmrs.append(rtmr)
    return rtmrs


@pytest.mark.parametrize("stripped", [True, False])
def test_tdx_parts_replay_like_the_log(synthetic: Any, stripped: bool) -> None:
    parts = tdx_parts(_synthetic_attestation(synthetic, stripped=stripped))
    report = check_replay(parts.events, _quoted_rtmrs(parts.quote), required=(3,))
    assert report.matched == ((3,) if stripped else (0, 1, 2, 3))
    assert dstack_facts(parts.events).system_ready
    assert parts.report_data == REPORT_DATA
    assert json.loads(parts.vm_config or "")["spec_version"] == 1


def test_tdx_parts_refuse_a_pod_stack(synthetic: Any) -> None:
    pod = attrs.evolve(
        _synthetic_attestation(synthetic),
        stack=attrs.evolve(STACK, kind="dstack-pod", report_data_payload="{}"),
    )
    with pytest.raises(MalformedEvidence) as info:
        tdx_parts(pod)
    assert info.value.check == "dstack.unsupported_stack"


def test_tdx_parts_refuse_report_data_that_is_not_the_quotes(synthetic: Any) -> None:
    good = _synthetic_attestation(synthetic)
    lying = attrs.evolve(good, stack=attrs.evolve(good.stack, report_data=bytes(64)))
    with pytest.raises(MalformedEvidence) as info:
        tdx_parts(lying)
    assert info.value.check == "dstack.report_data"


@pytest.mark.parametrize(
    ("stripped", "name", "changes", "error", "check"),
    [
        pytest.param(
            True,
            "compose-hash",
            {"payload": b"\x66" * 32},
            MalformedEvidence,
            "dstack.runtime_events",
            id="log-that-contradicts-the-runtime-events",
        ),
        pytest.param(
            False,
            "app-id",
            {"digest": hashlib.sha384(b"forged").digest()},
            UntrustedChain,
            "dstack.event_digest",
            id="present-runtime-digest-is-never-trusted",
        ),
    ],
)
def test_tdx_parts_refuse_a_log_with_a_tampered_runtime_event(
    synthetic: Any,
    stripped: bool,
    name: str,
    changes: dict[str, Any],
    error: type[MalformedEvidence | UntrustedChain],
    check: str,
) -> None:
    good = _synthetic_attestation(synthetic, stripped=stripped)
    assert isinstance(good.platform, TdxPlatform)
    log = list(good.platform.event_log)
    index = next(i for i, e in enumerate(log) if e.name == name)
    log[index] = attrs.evolve(log[index], **changes)
    lying = attrs.evolve(good, platform=attrs.evolve(good.platform, event_log=tuple(log)))
    with pytest.raises(error) as info:
        tdx_parts(lying)
    assert info.value.check == check


def test_tdx_parts_tolerate_a_log_read_after_one_more_event(synthetic: Any) -> None:
    # dstack reads the runtime events before the quote and the log after it: an event
    # emitted in between appears only in the log.  RTMR3 is replayed from the stack's.
    good = _synthetic_attestation(synthetic)
    assert isinstance(good.platform, TdxPlatform)
    extra = attrs.evolve(RUNTIME, name="late", payload=b"")
    longer = attrs.evolve(
        good, platform=attrs.evolve(good.platform, event_log=(*good.platform.event_log, extra))
    )
    parts = tdx_parts(longer)
    assert "late" not in [e.name for e in parts.events]
    assert check_replay(parts.events, _quoted_rtmrs(parts.quote), required=(3,)).matched == (3,)


# --- app info (.9) --------------------------------------------------------------------------------


@pytest.mark.parametrize("as_map", [False, True])
def test_app_info_decodes_both_struct_forms(as_map: bool) -> None:
    data = app_info_msgpack(
        app_id=b"\x01" * 20,
        compose_hash=b"\x02" * 32,
        init_script_hashes=[b"\x03" * 32],
        as_map=as_map,
    )
    info = decode_app_info(data)
    assert info.app_id == b"\x01" * 20
    assert info.init_script_hashes == (b"\x03" * 32,)
    assert info.to_claims()["compose_hash"] == "02" * 32


def test_app_info_without_init_script_hashes() -> None:
    fields = msgpack.unpackb(app_info_msgpack(app_id=b"a", compose_hash=b"c"))
    info = decode_app_info(pack(fields[:8]))
    assert info.init_script_hashes is None


@pytest.mark.parametrize(
    "data",
    [
        pack("not a struct"),
        pack([b""] * 7),
        pack([b""] * 10),
        app_info_msgpack(app_id=b"a", compose_hash=b"c", mr_system=b"\x00" * 31),
        app_info_msgpack(app_id=b"a", compose_hash=b"c", init_script_hashes=[b"\x00" * 32] * 6),
        app_info_msgpack(app_id=b"a", compose_hash=b"c", init_script_hashes=[b"\x00" * 31]),
        pack({"app_id": b"a"}),
        pack([1, b"", b"", b"", b"\x00" * 32, b"\x00" * 32, b"", b""]),
    ],
)
def test_malformed_app_info_is_named(data: bytes) -> None:
    with pytest.raises(MalformedEvidence) as info:
        decode_app_info(data)
    assert info.value.check.startswith(("dstack.app_info", "dstack.msgpack"))


# --- the SCALE reader -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, 1, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, (1 << 32) - 1]
)
def test_compact_integers_round_trip(value: int) -> None:
    reader = ScaleReader(scale_compact(value))
    assert reader.compact() == value
    reader.finish()


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00",  # 0 in the two-byte mode
        b"\x02\x00\x00\x00",  # 0 in the four-byte mode
        b"\x03\xff\xff\xff\x3f",  # 2**30 - 1 in the big-integer mode
        b"\x07\x00\x00\x00\x40\x00",  # 2**30 with a wasted byte
    ],
)
def test_non_canonical_compact_integers_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(data).compact(max_value=1 << 64)
    assert info.value.check == "scale.compact"


def test_compact_range_and_width() -> None:
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(b"\x07\x00\x00\x00\x00\x01").compact()  # 2**32 > u32
    assert info.value.check == "scale.compact"
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(b"\xff" + b"\x01" * 67).compact(max_value=1 << 600)
    assert info.value.check == "scale.compact"


def test_option_bool_and_depth() -> None:
    assert ScaleReader(b"\x00").option(ScaleReader.u8) is None
    assert ScaleReader(b"\x01\x07").option(ScaleReader.u8) == 7
    for bad in (b"\x02", b"\x02\x00"):
        with pytest.raises(MalformedEvidence) as info:
            ScaleReader(bad).option(ScaleReader.u8)
        assert info.value.check == "scale.option"
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(b"\x02").boolean()
    assert info.value.check == "scale.bool"

    def nested(reader: ScaleReader) -> Any:
        return reader.option(nested)

    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(b"\x01" * 40 + b"\x00", max_depth=8).option(nested)
    assert info.value.check == "scale.depth"
    assert ScaleReader(b"\x01" * 4 + b"\x00", max_depth=8).option(nested) is None


def test_vectors_cap_items_and_check_the_input_left() -> None:
    reader = ScaleReader(scale_compact(3) + b"abc", prefix="x")
    assert reader.vec(ScaleReader.u8, max_items=3) == [97, 98, 99]
    reader.finish()
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(scale_compact(4) + b"abcd", prefix="x").vec(ScaleReader.u8, max_items=3)
    assert info.value.check == "x.length"
    with pytest.raises(MalformedEvidence) as info:
        ScaleReader(scale_compact(3) + b"ab", prefix="x").byte_vec(max_len=10)
    assert info.value.check == "x.truncated"


# --- recorded evidence ---------------------------------------------------------------------------------


Vectors = Callable[[str], Path]
GUEST_AGENT = "tdx/dstack-attestation-v0-guest-agent-b0c06f"


@pytest.mark.vectors
def test_recorded_v0_attestation_decodes_and_replays(vectors: Vectors) -> None:
    data = vectors(f"{GUEST_AGENT}/attestation.bin").read_bytes()
    expected = json.loads(vectors(f"{GUEST_AGENT}/expected.json").read_text())
    decoded = decode_attestation(data)  # no trailing bytes, or it would raise
    assert encode_attestation(decoded) == data
    assert decoded.wire_version == 0
    assert isinstance(decoded.platform, TdxPlatform)
    assert decoded.platform.quote == vectors(f"{GUEST_AGENT}/quote.bin").read_bytes()
    assert len(decoded.platform.quote) == expected["quote_len"]
    assert len(decoded.platform.event_log) == expected["event_log_len"]
    assert [e.name for e in decoded.stack.runtime_events] == expected["runtime_events"]
    assert decoded.stack.report_data.hex() == expected["report_data"]

    parts = tdx_parts(decoded)
    quoted = _quoted_rtmrs(parts.quote)
    assert [q.hex() for q in quoted] == expected["rtmr"]
    report = check_replay(parts.events, quoted)  # the unstripped log replays all four
    assert report.matched == (0, 1, 2, 3)
    facts = dstack_facts(parts.events)
    assert facts.system_ready
    _, _, fields = parse_report_fields(parts.quote)
    assert fields["mrconfigid"] == bytes([1]) + (facts.compose_hash or b"") + bytes(15)
    assert fields["report_data"] == decoded.stack.report_data
    vm_config = json.loads(parts.vm_config or "{}")
    assert bytes.fromhex(vm_config["os_image_hash"]) == facts.os_image_hash

    # The same attestation as a certificate would carry it: stripped, RTMR3 only.
    stripped = attrs.evolve(
        decoded,
        platform=attrs.evolve(
            decoded.platform, event_log=stripped_event_log(decoded.platform.event_log)
        ),
    )
    for wire in (0, 1):
        again = decode_attestation(encode_attestation(stripped, wire_version=wire))
        report = check_replay(tdx_parts(again).events, quoted, required=(3,))
        assert report.matched == (3,)
        assert report.not_replayed == (0, 1, 2)
        # Through the JSON the validator reads, the log replays the same way.
        events = parse_event_log(event_log_json(tdx_parts(again).events))
        assert check_replay(events, quoted, required=(3,)).not_replayed == (0, 1, 2)


@pytest.mark.vectors
def test_recorded_sev_snp_attestation_decodes_and_is_handed_on(vectors: Vectors) -> None:
    folder = "snp/dstack-milan-v3-vcek"
    data = vectors(f"{folder}/attestation.bin").read_bytes()
    decoded = decode_attestation(data)
    assert encode_attestation(decoded) == data
    assert isinstance(decoded.platform, SevSnpPlatform)
    assert decoded.platform.report == vectors(f"{folder}/report.bin").read_bytes()
    assert decoded.platform.cert_chain == ()
    assert json.loads(decoded.platform.mr_config)["version"] == 3
    assert decoded.platform.report[0x50:0x90] == decoded.stack.report_data
    assert len(decoded.stack.runtime_events) == 9
    with pytest.raises(MalformedEvidence) as info:
        tdx_parts(decoded)
    assert info.value.check == "dstack.unsupported_platform"

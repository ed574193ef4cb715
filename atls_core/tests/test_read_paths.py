"""Per-connection readers keep their meaning on their short paths.

strict JSON compares a built object's size with its member count and names a repeated name
only then, with one shared decoder; a challenge reader takes h11's stand-in request for its
method from a table built once per method.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from atls_core import strict_json
from atls_core.challenge import ResponseReader
from atls_core.errors import MalformedEvidence


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('{"a": 1, "b": 2, "a": 1}', "a"),
        ('{"a": 1, "b": 2, "b": 3, "a": 4}', "b"),  # the first name seen twice is named
        ('[{"ok": 1}, {"x": {"deep": [{"y": 1, "y": 1}]}}]', "y"),
        ('{"": 1, "": 2}', ""),
        ('{"\\u00e9": 1, "\u00e9": 2}', "\u00e9"),  # escaped and raw spell one name
    ],
)
def test_a_repeated_name_is_found_wherever_it_is(text: str, name: str) -> None:
    for given in (text, text.encode(), text.encode("utf-16")):
        with pytest.raises(strict_json.RepeatedName) as info:
            strict_json.loads(given)
        assert info.value.name == name


@pytest.mark.parametrize(
    "given",
    [
        '{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}',  # one name per object
        b'{"x": 1}',
        '{"x": 1}'.encode("utf-16-le"),
        bytearray(b'[1, "2", null]'),
        "[]",
    ],
)
def test_documents_without_repeated_names_read_as_json_reads_them(given: str | bytes) -> None:
    assert strict_json.loads(given) == json.loads(given)


@pytest.mark.parametrize("given", ["\ufeff{}", "{} x", "", b"\xff", "[1,]", '{"a" 1}'])
def test_what_json_refuses_is_refused_alike(given: str | bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(given)
    with pytest.raises(ValueError) as actual:
        strict_json.loads(given)
    assert type(actual.value) is type(expected.value)
    assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("given", [None, 3, memoryview(b"{}"), ["{}"]])
def test_what_json_does_not_read_at_all_is_refused_alike(given: object) -> None:
    # json.loads names a caller's wrong type with TypeError; a bare AttributeError from
    # the bytes-to-text step would escape callers that catch what json.loads raises.
    with pytest.raises(TypeError) as expected:
        json.loads(given)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as actual:
        strict_json.loads(given)  # type: ignore[arg-type]
    assert type(actual.value) is type(expected.value)
    assert str(actual.value) == str(expected.value)


def _decided(read: Any, given: str | bytes | bytearray) -> tuple[str, str, str | None]:
    try:
        return ("read", repr(read(given)), None)
    except ValueError as error:  # RepeatedName, JSONDecodeError, UnicodeDecodeError
        return (type(error).__name__, str(error), getattr(error, "name", None))


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The hook as first written (one member at a time): the oracle, not the code tested."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise strict_json.RepeatedName(name)
        members[name] = value
    return members


def _with_hook(given: str | bytes) -> Any:
    return json.loads(given, object_pairs_hook=_unique)


_MEMBERS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "\u00e9", ""]), st.integers() | st.text(max_size=3)),
    max_size=4,
).map(lambda pairs: "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}")
_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(
    st.one_of(
        st.binary(max_size=12),
        st.text(max_size=12),
        _MEMBERS,
        st.lists(_MEMBERS, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(_MEMBERS, st.sampled_from(_ENCODINGS)).map(
            lambda pair: pair[0].encode(pair[1], "surrogatepass")
        ),
        _MEMBERS.map(lambda text: "\ufeff" + text),
        st.tuples(
            st.sampled_from(["\ud800", "\udfff", "\ud83d\ude00"]), st.sampled_from(_ENCODINGS)
        ).map(
            lambda pair: json.dumps(pair[0], ensure_ascii=False).encode(pair[1], "surrogatepass")
        ),
    )
)
def test_any_input_is_decided_as_json_loads_with_the_hook_decides_it(source: str | bytes) -> None:
    assert _decided(strict_json.loads, source) == _decided(_with_hook, source)
    if isinstance(source, bytes):
        assert _decided(strict_json.loads, bytearray(source)) == _decided(_with_hook, source)


_HEAD_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"


def test_each_reader_frames_the_answer_by_its_own_method() -> None:
    for _ in range(2):  # the second round takes every stand-in from the table
        head = ResponseReader(max_body_bytes=8, request_method="HEAD").feed(_HEAD_LENGTH)
        assert head is not None
        assert head.body == b""  # a HEAD answer has no body, whatever its length says
        post = ResponseReader(max_body_bytes=8, request_method="post")
        assert post.feed(_HEAD_LENGTH) is None  # a POST answer's five bytes are still due
        done = post.feed(b"hello")
        assert done is not None
        assert done.body == b"hello"


def test_a_method_that_is_not_a_token_is_refused_every_time() -> None:
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(MalformedEvidence) as info:
            ResponseReader(max_body_bytes=1, request_method="GE T")
        assert info.value.check == "challenge.request"

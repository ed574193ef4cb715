"""Per-connection readers keep their meaning on their short paths.

strict JSON compares a built object's size with its member count and names a repeated name
only then, with one shared decoder; a challenge reader takes h11's stand-in request for its
method from a table built once per method.
"""

from __future__ import annotations

import json

import pytest

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


# --- a whole answer in one read, read without h11 ---------------------------------------------

_BODY = b'{"quote": {"quote": "00ff"}}'
_PLAIN = (
    b"HTTP/1.1 200 OK\r\nServer: test\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)
_SEEDS = [
    _PLAIN,
    b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}",  # no reason phrase
    b"HTTP/1.1 404 Not  Found \t\r\ncontent-length:0\r\n\r\n",
    b"HTTP/1.1 500 x\r\nX-A: 1\r\nx-a:  2 \r\nConnection: keep-alive, Upgrade\r\n"
    b"Content-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nX-Bin: \x80\xff v\r\nContent-Length: 1\r\n\r\nz",
    b"HTTP/1.1 200 OK\r\nContent-Length: 00002\r\n\r\nab",
]
_CASES = [
    *_SEEDS,
    _PLAIN + b"X",  # a byte after the answer
    _PLAIN[:-1],  # the body cut short
    _PLAIN.replace(b"HTTP/1.1", b"HTTP/1.0"),
    _PLAIN.replace(b"HTTP/1.1", b"HTTP/2.0"),
    _PLAIN.replace(b"200 OK", b"100 Continue"),
    _PLAIN.replace(b"200 OK", b"204 No Content"),
    _PLAIN.replace(b"200 OK", b"304 Not Modified"),
    _PLAIN.replace(b"200 OK", b"600 Odd"),
    _PLAIN.replace(b"200 OK", b"20 OK"),
    _PLAIN.replace(b"Server: test\r\n", b"Server: test\r\n folded\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Server: test\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Server: te\rst\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Ser ver: test\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b": test\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Server: te\x00st\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Connection: Close\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Connection: keep-alive, close \r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Transfer-Encoding: chunked\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Content-Length: 27\r\n"),
    _PLAIN.replace(b"Server: test\r\n", b"Content-Length: 26\r\n"),
    _PLAIN.replace(b"Content-Length: 27", b"Content-Length: 27, 27"),
    _PLAIN.replace(b"Content-Length: 27", b"Content-Length: +27"),
    _PLAIN.replace(b"Content-Length: 27", b"Content-Length: " + b"0" * 19 + b"27"),
    _PLAIN.replace(b"Content-Length: 27", b"Content-Length: \xd9\xa327"),
    _PLAIN.replace(b"Content-Length: 27\r\n", b""),
    _PLAIN.replace(b"Content-Length: 27", b"Content-Length: 9999"),
    b"\r\n" + _PLAIN,
    b" " + _PLAIN,
    _PLAIN.replace(b"\r\n\r\n", b"\r\n\n"),
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * (70 * 1024) + b"\r\nContent-Length: 0\r\n\r\n",
]


def _read(wire: bytes, method: str) -> object:
    try:
        response = ResponseReader(max_body_bytes=64, request_method=method).feed(wire)
    except MalformedEvidence as error:
        return ("refused", error.check, str(error))
    if response is None:
        return None
    return (response.status, response.headers, response.body)


def _mutants() -> list[bytes]:
    """Each seed with one byte changed, dropped or doubled, at every position (seeded)."""
    import random

    chooser = random.Random(0x68313121)
    alphabet = b" \t\r\n:,\x00\x80\x7f0123456789aAzZ-/.;"
    out: list[bytes] = []
    for seed in _SEEDS:
        for at in range(len(seed)):
            out.append(seed[:at] + bytes([chooser.choice(alphabet)]) + seed[at + 1 :])
            out.append(seed[:at] + seed[at + 1 :])
            out.append(seed[:at] + seed[at : at + 1] * 2 + seed[at + 1 :])
    return out


@pytest.mark.parametrize("method", ["POST", "GET", "HEAD", "CONNECT"])
def test_a_whole_answer_reads_as_h11_reads_it(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from atls_core import challenge

    cases = _CASES + _mutants()
    short = [_read(wire, method) for wire in cases]
    monkeypatch.setattr(challenge, "_whole_answer", lambda data, max_body: None)
    for wire, answer in zip(cases, short, strict=True):
        assert answer == _read(wire, method), wire


def test_the_plain_answers_do_not_go_through_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    from atls_core import challenge

    def no_h11(self: object) -> object:
        raise AssertionError("h11 read an answer the short path reads")

    monkeypatch.setattr(challenge.ResponseReader, "_connection", property(no_h11))
    for wire in _SEEDS:
        assert _read(wire, "POST") is not None

"""Challenge transport: evidence fetched over the just-established TLS connection."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from atls_core.binding import Freshness
from atls_core.challenge import MAX_HEADER_BYTES, ResponseReader, encode_request
from atls_core.errors import ATLSVerificationError, MalformedEvidence
from atls_core.interfaces import ChallengeRequest
from atls_core.server import ChallengeEndpoint, mint_certificate
from atls_core.testing.loopback import (
    HTTPSServer,
    SimulatedTEE,
    challenge_handshakes,
    challenge_https_server,
    read_head,
)
from atls_core.testing.simulated import CHALLENGE_PATH
from atls_core.tls import ATLSContext, result_of


def _get(context: ssl.SSLContext, port: int) -> tuple[ssl.SSLSocket, bytes]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = context.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return s, data


def test_challenge_then_application_traffic_on_same_connection(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with tee.challenge_server() as server:
        s, data = _get(context, server.port)
        with s:
            result = result_of(s)
        assert result is not None
        assert result.accepted
        assert result.binding.scheme == "challenge-v1"
        assert result.binding.freshness is Freshness.NONCE
        assert b'"/after"' in data
        assert server.challenge is not None
        assert server.challenge.answered == 1
        assert server.handshakes == 1  # one connection carried both


@pytest.mark.parametrize("length", ["\u00b2", "-1", "1e3", "99999999"])
def test_challenge_endpoint_answers_a_bad_length_with_413(tee: SimulatedTEE, length: str) -> None:
    """A length that is not ASCII digits or is too large is refused, not a server traceback."""
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.check_hostname, plain.verify_mode = False, ssl.CERT_NONE
    with tee.challenge_server() as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with plain.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            head = f"POST {CHALLENGE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
            tls.sendall(head.encode("latin-1"))  # "\u00b2" is one byte, as http.server reads it
            answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]


def test_challenge_over_asyncio(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected(challenge=True))

    async def main(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        result = result_of(writer)
        assert result is not None
        assert result.binding.scheme == "challenge-v1"
        writer.write(b"GET /async HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    with tee.challenge_server() as server:
        assert b'"/async"' in asyncio.run(main(server.port))


def test_challenge_through_urllib3_tls_in_tls(tee: SimulatedTEE) -> None:
    """urllib3 runs TLS inside TLS (an HTTPS proxy) with SSLTransport, which tells
    "waiting for input" by the error's errno: the challenge's wait must carry one."""
    from urllib3.util.ssltransport import SSLTransport

    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with tee.challenge_server() as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with raw:
            transport = SSLTransport(raw, context, server_hostname="127.0.0.1")
            result = result_of(transport.sslobj)
            assert result is not None
            assert result.accepted
            assert result.binding.scheme == "challenge-v1"


def test_every_handshake_answers_a_challenge_of_its_own(tee: SimulatedTEE) -> None:
    certificate = mint_certificate(tee.challenge_issuer, hostnames=("127.0.0.1",))
    server, endpoint = challenge_https_server(tee.challenge_issuer, certificate)
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with server:
        results = challenge_handshakes(context, server, endpoint, count=3)
    assert {result.binding.scheme for result in results} == {"challenge-v1"}


def test_challenge_evidence_for_another_certificate_is_rejected(tee: SimulatedTEE) -> None:
    certificate = tee.certificates().static()
    other = mint_certificate(tee.challenge_issuer, hostnames=("127.0.0.1",))
    server, _ = challenge_https_server(tee.challenge_issuer, other, presented=certificate)
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with server:
        with pytest.raises(ATLSVerificationError) as caught:
            _get(context, server.port)
        assert server.wait_finished(1)
        assert server.requests == []  # only the challenge was answered
    assert caught.value.check == "binding.certificate"


def test_challenge_answer_for_an_old_nonce_is_rejected(tee: SimulatedTEE) -> None:
    certificate = mint_certificate(tee.challenge_issuer, hostnames=("127.0.0.1",))
    old_nonce = os.urandom(32)
    endpoint = ChallengeEndpoint(
        tee.challenge_issuer,
        certificate_der=certificate.certificate_der,
        path=CHALLENGE_PATH,
        nonce_from_body=lambda _body: old_nonce,
    )
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with HTTPSServer(certificate.server_context(), challenge=endpoint) as server:
        with pytest.raises(ATLSVerificationError) as caught:
            _get(context, server.port)
        assert server.wait_finished(1)
        assert server.requests == []
    assert caught.value.check == "binding.report_data"


@contextmanager
def _raw_server(context: ssl.SSLContext, answer: bytes) -> Iterator[int]:
    """A TLS server that answers the first request with ``answer``, whatever it is."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        with context.wrap_socket(raw, server_side=True) as s:
            if read_head(s) is None:
                return
            s.sendall(answer)
            with suppress(OSError):
                s.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)


@pytest.mark.parametrize(
    ("answer", "check"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", "challenge.size"),
        (b"HTTP/1.1 200 OK\r\n\r\nno length", "challenge.framing"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}EXTRA", "challenge.framing"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "challenge.framing",
        ),
        (b"garbage\r\n\r\n", "challenge.framing"),
        (b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", "challenge.status"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!", "simulated.format"),
    ],
)
def test_misbehaving_challenge_servers_are_rejected(
    tee: SimulatedTEE, answer: bytes, check: str
) -> None:
    certificate = mint_certificate(tee.challenge_issuer, hostnames=("127.0.0.1",))
    context = ATLSContext.for_validator(tee.selected(challenge=True))
    with _raw_server(certificate.server_context(), answer) as port:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            with pytest.raises(ATLSVerificationError) as caught:
                context.wrap_socket(raw, server_hostname="127.0.0.1")
        finally:
            raw.close()
    assert caught.value.check == check


def _refused_by_a_slow_server(
    tee: SimulatedTEE,
    behave: Callable[[ssl.SSLSocket, threading.Event], None],
    *,
    challenge_timeout: float,
) -> str:
    """The check a client refuses with when the server, after its handshake, ``behave``s
    until the test ends (the event is set then)."""
    certificate = mint_certificate(tee.challenge_issuer, hostnames=("127.0.0.1",))
    context = ATLSContext.for_validator(
        tee.selected(challenge=True), challenge_timeout=challenge_timeout
    )
    listener = socket.create_server(("127.0.0.1", 0))
    server_context = certificate.server_context()
    ended = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        with server_context.wrap_socket(raw, server_side=True) as tls, suppress(OSError):
            behave(tls, ended)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        raw = socket.create_connection(listener.getsockname(), timeout=10)
        with pytest.raises(ATLSVerificationError) as caught:
            context.wrap_socket(raw, server_hostname="127.0.0.1")
        raw.close()
    finally:
        ended.set()
        thread.join(5)
        listener.close()
    return caught.value.check


def test_silent_challenge_server_times_out(tee: SimulatedTEE) -> None:
    def silent(tls: ssl.SSLSocket, ended: threading.Event) -> None:
        ended.wait(10)

    assert _refused_by_a_slow_server(tee, silent, challenge_timeout=0.3) == "challenge.timeout"


def test_dripping_challenge_server_times_out_on_the_whole_exchange(tee: SimulatedTEE) -> None:
    """A byte every 50 ms keeps each read inside the timeout; the exchange must still end."""

    def drip(tls: ssl.SSLSocket, ended: threading.Event) -> None:
        # 200 bytes of headers at 50 ms each: 10 s, then the server hangs up.
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 174:
            if ended.wait(0.05):
                return
            tls.sendall(bytes([byte]))

    # Timed out by the client, not ended by the server closing after its 10 s.
    assert _refused_by_a_slow_server(tee, drip, challenge_timeout=0.5) == "challenge.timeout"


def test_response_reader_handles_chunked_and_split_input() -> None:
    reader = ResponseReader(max_body_bytes=100)
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: x\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
    )
    response = None
    for i in range(len(wire)):
        response = reader.feed(wire[i : i + 1])
        if i < len(wire) - 1:
            assert response is None
    assert response is not None
    assert response.body == b"abcde"
    assert response.status == 200
    assert response.headers["content-type"] == "x"


def test_response_reader_bounds() -> None:
    reader = ResponseReader(max_body_bytes=4)
    with pytest.raises(MalformedEvidence, match="larger"):
        reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde")
    reader = ResponseReader(max_body_bytes=4)
    with pytest.raises(MalformedEvidence, match="too large"):
        reader.feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000)
    reader = ResponseReader(max_body_bytes=4)
    with pytest.raises(MalformedEvidence, match="repeats"):
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")
    reader = ResponseReader(max_body_bytes=4)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    with pytest.raises(MalformedEvidence, match="closed"):
        reader.eof()


@pytest.mark.parametrize(
    "wire",
    [
        "HTTP/1.1 2\u0660\u0660 OK\r\n\r\n".encode(),  # Arabic-Indic digits in the status
        "HTTP/1.1 200 OK\r\nContent-Length: \u0661\r\n\r\n".encode(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    ],
)
def test_response_reader_refuses_non_ascii_and_prefixed_numbers(wire: bytes) -> None:
    reader = ResponseReader(max_body_bytes=100)
    with pytest.raises(MalformedEvidence) as info:
        reader.feed(wire)
    assert info.value.check == "challenge.framing"


def test_request_encoding_refuses_injection() -> None:
    wire = encode_request(
        ChallengeRequest(path="/e", headers={"X-A": "1", "Host": "evil"}, body=b"{}"), "h"
    )
    assert wire.startswith(b"POST /e HTTP/1.1\r\nHost: h\r\n")
    assert b"evil" not in wire
    assert wire.endswith(b"\r\n\r\n{}")
    with pytest.raises(MalformedEvidence):
        encode_request(ChallengeRequest(path="/e\r\nX: y"), "h")
    with pytest.raises(MalformedEvidence):
        encode_request(ChallengeRequest(path="/e", headers={"X": "a\r\nB: c"}), "h")
    with pytest.raises(MalformedEvidence):
        encode_request(ChallengeRequest(method="GE T", path="/e"), "h")


_OK = b"HTTP/1.1 200 OK\r\n"
_CHUNKED = _OK + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("wire", "check", "reason"),
    [
        (_CHUNKED + b"zz\r\n", "challenge.framing", "chunk header"),  # not hex
        (_CHUNKED + b"3 abc\r\n", "challenge.framing", "chunk header"),
        (_CHUNKED + b"3\r\nabcXY", "challenge.framing", "chunk footer"),  # chunk not terminated
        (_CHUNKED + b"123456789012345678901\r\n", "challenge.framing", "chunk header"),
        (_OK + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nx", "challenge.framing", "Content"),
        (_OK + b"Content-Length: 1\r\ncontent-length: 1\r\n\r\nx", "challenge.framing", "repeats"),
        (_OK + b"Content-Length: 1, 1\r\n\r\nx", "challenge.framing", "invalid Content-Length"),
        (_OK + b"Content-Length: +1\r\n\r\nx", "challenge.framing", "Content-Length"),
        (_OK + b"X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "challenge.framing", "obs-fold"),
        (_OK + b"X-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", "challenge.framing", "obs-fold"),
        (_OK + b"Content-Length: 0\nX-A: b\r\n\r\n", "challenge.framing", "bare LF"),
        (_OK + b"X-A : b\r\nContent-Length: 0\r\n\r\n", "challenge.framing", "header line"),
        (_OK + b"X-A: a\0b\r\nContent-Length: 0\r\n\r\n", "challenge.framing", "header line"),
        (
            _OK + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "challenge.framing",
            "transfer encoding",
        ),
        (_OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n", "challenge.framing", "Encoding"),
        (
            _OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "challenge.framing",
            "Transfer-Encoding",
        ),
        (b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "challenge.framing", "status line"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", "challenge.status", "not final"),
        (b"HTTP/1.1 700 Odd\r\nContent-Length: 0\r\n\r\n", "challenge.status", "not final"),
        (
            _OK + b"Connection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
            "challenge.framing",
            "closes",
        ),
        (_OK + b"X: " + b"y" * MAX_HEADER_BYTES + b"\r\n\r\n", "challenge.framing", "too large"),
        (_OK + b"Content-Length: 5\r\n\r\nabcde", "challenge.size", "larger"),
        (_CHUNKED + b"3\r\nabc\r\n2\r\nde", "challenge.size", "larger"),
        (_CHUNKED + b"ffffffff\r\nabcde", "challenge.size", "larger"),  # refused on arrival
    ],
)
def test_response_reader_refuses_malformed_answers(wire: bytes, check: str, reason: str) -> None:
    """Each malformed answer is refused, whether it arrives at once or byte by byte."""
    for pieces in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        reader = ResponseReader(max_body_bytes=4)
        with pytest.raises(MalformedEvidence, match=reason) as info:
            _feed_all(reader, pieces)
        assert info.value.check == check


def _feed_all(reader: ResponseReader, pieces: list[bytes]) -> None:
    for piece in pieces:
        assert reader.feed(piece) is None


@pytest.mark.parametrize(
    "wire",
    [
        _OK + b"Content-Length: 4\r\n\r\nab",
        _CHUNKED + b"4\r\nab",
        _CHUNKED + b"2\r\nab\r\n0\r\n",  # trailers never end
        _OK + b"Content-Length: 4\r\n",  # inside the head
    ],
)
def test_response_reader_refuses_eof_mid_answer(wire: bytes) -> None:
    reader = ResponseReader(max_body_bytes=4)
    assert reader.feed(wire) is None
    assert reader.feed(b"") is None  # an empty read is not taken for the end of the stream
    with pytest.raises(MalformedEvidence, match="closed") as info:
        reader.eof()
    assert info.value.check == "challenge.framing"


def test_response_reader_refuses_bytes_after_the_answer_in_a_later_read() -> None:
    reader = ResponseReader(max_body_bytes=4)
    response = reader.feed(_OK + b"Content-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n{}")
    assert response is not None
    assert response.headers["x-a"] == "1, 2"
    assert reader.complete
    reader.eof()  # the answer was complete: a close now is not the challenge's problem
    assert reader.feed(b"") is response
    with pytest.raises(MalformedEvidence, match="after") as info:
        reader.feed(b"H")
    assert info.value.check == "challenge.framing"


@pytest.mark.parametrize(
    ("method", "wire"),
    [
        ("HEAD", _OK + b"Content-Length: 99999\r\n\r\n"),  # the length a GET would have
        ("POST", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("POST", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ],
)
def test_response_reader_accepts_bodiless_answers(method: str, wire: bytes) -> None:
    response = ResponseReader(max_body_bytes=4, request_method=method).feed(wire)
    assert response is not None
    assert response.body == b""


def test_request_encoding_refuses_non_ascii_and_relative_paths() -> None:
    for request in (
        ChallengeRequest(path="e"),
        ChallengeRequest(path="/\u00e9"),
        ChallengeRequest(path="/e", headers={"X": "\u2603"}),
        ChallengeRequest(path="/e", headers={"X Y": "1"}),
    ):
        with pytest.raises(MalformedEvidence) as info:
            encode_request(request, "h")
        assert info.value.check == "challenge.request"
    wire = encode_request(ChallengeRequest(method="get", path="/e?x=1"), "::1")
    assert wire.startswith(b"GET /e?x=1 HTTP/1.1\r\nHost: [::1]\r\n")
    assert wire.endswith(b"Content-Length: 0\r\nConnection: keep-alive\r\n\r\n")


@pytest.mark.parametrize("method", ["GE T", "G\u00c9T", ""])
def test_response_reader_refuses_a_method_that_is_not_a_token(method: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        ResponseReader(max_body_bytes=1, request_method=method)
    assert info.value.check == "challenge.request"


def test_http_parser_is_loaded_only_when_a_challenge_runs() -> None:
    probe = (
        "import sys, atls_core, atls_core.tls, atls_core.challenge\n"
        "assert 'h11' not in sys.modules, 'h11 imported early'\n"
        "from atls_core.challenge import ResponseReader\n"
        "ResponseReader(max_body_bytes=1)\n"
        "assert 'h11' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr

"""Challenge transport: one HTTP/1.1 exchange on a fresh TLS connection.

A challenge-style validator describes a request (:class:`ChallengeRequest`)
and parses the answer (:class:`ChallengeResponse`); this module is the
generic, sans-I/O part in between.  The HTTP/1.1 framing is h11's, which
refuses malformed input by design (bad chunk sizes, conflicting lengths,
illegal header lines, over-long heads, a body cut short); on top of it a few
things h11 tolerates are refused here, because the same connection must
afterwards carry the application's HTTP and an ambiguous answer is a
request-smuggling risk: folded header lines, bare LF line ends, a repeated
Content-Length, Content-Length next to Transfer-Encoding, close-delimited
bodies, ``Connection: close``, interim (1xx) answers and bytes after the
response.  The TLS layer drives it over a blocking socket or a memory-BIO
``SSLObject``.  h11 is imported when a challenge runs, not with ``atls_core``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from atls_core.errors import MalformedEvidence
from atls_core.interfaces import ChallengeRequest, ChallengeResponse

if TYPE_CHECKING:
    import h11

__all__ = ["MAX_HEADER_BYTES", "ResponseReader", "encode_request", "exchange"]

MAX_HEADER_BYTES = 64 * 1024
"""Status line plus headers (and a chunk header or trailers); more is refused."""

_RESERVED = frozenset({"host", "content-length", "connection", "transfer-encoding"})
"""Request headers the transport writes itself; a validator's values are dropped."""
_HEADERS_TOO_LARGE = 431
"""h11's status hint when its receive buffer outgrows ``max_incomplete_event_size``."""


def _refuse(message: str, check: str = "challenge.framing") -> MalformedEvidence:
    return MalformedEvidence(message, check=check)


def _h11_reason(error: Exception) -> str:
    """h11's reason without the echoed server bytes (they may be long or hostile)."""
    return str(error).split(":", 1)[0][:100]


def _host_header(host: str | None) -> str:
    if not host:
        return "localhost"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def encode_request(request: ChallengeRequest, host: str | None) -> bytes:
    """The request bytes: HTTP/1.1, keep-alive, explicit Content-Length."""
    if not request.path.startswith("/"):
        raise _refuse("challenge request path must be an absolute path", "challenge.request")
    headers = tuple((n, v) for n, v in request.headers.items() if n.lower() not in _RESERVED)
    head = _request_head(
        request.method.upper(), request.path, headers, _host_header(host), len(request.body)
    )
    return head + request.body


@functools.lru_cache(maxsize=64)
def _request_head(
    method: str, path: str, headers: tuple[tuple[str, str], ...], host: str, length: int
) -> bytes:
    """h11's encoding of the request line and headers; a connection repeats them, but the body."""
    import h11

    fields = [("Host", host), *headers]
    fields += [("Content-Length", str(length)), ("Connection", "keep-alive")]
    try:
        return h11.Connection(h11.CLIENT).send(
            h11.Request(method=method, target=path, headers=fields)
        )
    except (h11.LocalProtocolError, UnicodeEncodeError) as error:
        raise _refuse(
            f"challenge request is not valid HTTP/1.1: {_h11_reason(error)}", "challenge.request"
        ) from None


def _check_head(head: bytes) -> None:
    """Refuse what h11 accepts but a challenge answer must not contain."""
    if b"\n" in head.replace(b"\r\n", b""):
        raise _refuse("challenge response has a bare LF line end")
    seen: set[bytes] = set()
    for line in head.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            raise _refuse("challenge response has a folded header line (obs-fold)")
        name, _, value = line.partition(b":")
        key = name.lower()
        if key in seen:
            raise _refuse(f"challenge response repeats {name.decode('latin-1')}")
        if key in (b"content-length", b"transfer-encoding"):
            seen.add(key)
        if key == b"content-length" and not value.strip().isdigit():  # bytes: ASCII digits
            raise _refuse("challenge response has an invalid Content-Length")


@functools.lru_cache(maxsize=16)
def _stand_in_request(method: str) -> tuple[h11.Request, h11.EndOfMessage]:
    """The h11 events a reader sends for ``method``: built and validated once per method
    (h11's events are immutable), not on every connection."""
    import h11

    try:
        request = h11.Request(
            method=method, target="/", headers=[("Host", "x"), ("Content-Length", "0")]
        )
    except (h11.LocalProtocolError, UnicodeEncodeError):
        raise _refuse(
            "challenge request method is not an HTTP token", "challenge.request"
        ) from None
    return request, h11.EndOfMessage()


class ResponseReader:
    """Incremental HTTP/1.1 response parser with bounds, on h11.

    ``feed(data)`` returns the response once complete, else ``None``.  Bytes
    after the response are a protocol violation (the server must not speak
    first on a keep-alive connection) and are refused.
    """

    def __init__(self, *, max_body_bytes: int, request_method: str = "POST") -> None:
        import h11

        self._h11 = h11
        self._max_body = max_body_bytes
        self._connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        # The request itself travels elsewhere (encode_request); h11 only needs its method
        # to know the response framing (HEAD answers have no body).
        method = request_method.upper()
        request, end = _stand_in_request(method)
        self._connection.send(request)
        self._connection.send(end)
        self._head_only = method == "HEAD"
        self._received = bytearray()  # kept until the head is parsed, for _check_head
        self._response: h11.Response | None = None
        self._body = bytearray()
        self._done: ChallengeResponse | None = None

    @property
    def complete(self) -> bool:
        return self._done is not None

    def feed(self, data: bytes) -> ChallengeResponse | None:
        if self._done is not None:
            if data:
                raise _refuse("the server sent bytes after the challenge response")
            return self._done
        if not data:  # h11 reads b"" as end of stream; that is eof()'s job
            return None
        if self._response is None:
            self._received += data
        self._connection.receive_data(data)
        try:
            return self._drain()
        except self._h11.RemoteProtocolError as error:
            if error.error_status_hint == _HEADERS_TOO_LARGE:
                raise _refuse("challenge response headers are too large") from None
            raise _refuse(
                f"challenge response is not valid HTTP/1.1: {_h11_reason(error)}"
            ) from None

    def eof(self) -> None:
        """The connection closed before a complete response."""
        if self._done is None:
            raise _refuse("the server closed the connection during the challenge")

    def _drain(self) -> ChallengeResponse | None:
        h11 = self._h11
        while True:
            event = self._connection.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.InformationalResponse):
                raise _refuse("challenge response status is not final", "challenge.status")
            if isinstance(event, h11.Response):
                self._start(event)
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._max_body:
                    raise _refuse("challenge response is larger than allowed", "challenge.size")
            elif isinstance(event, h11.EndOfMessage):
                return self._finish()
            else:  # pragma: no cover - a client connection yields no other event here
                raise _refuse(f"unexpected HTTP event {type(event).__name__}")

    def _start(self, response: h11.Response) -> None:
        unread = len(self._connection.trailing_data[0])
        head = bytes(self._received[: len(self._received) - unread])
        self._received = bytearray()
        if len(head) > MAX_HEADER_BYTES:
            raise _refuse("challenge response headers are too large")
        _check_head(head)
        if response.http_version not in (b"1.1", b"1.0"):
            raise _refuse("challenge response has no valid HTTP status line")
        if not 200 <= response.status_code <= 599:
            raise _refuse("challenge response status is not final", "challenge.status")
        headers = dict(response.headers)  # lower-case names; CL and TE appear at most once
        if b"transfer-encoding" in headers and b"content-length" in headers:
            raise _refuse("challenge response has an unsupported transfer encoding")
        connection = [
            t.strip().lower()
            for n, v in response.headers
            if n == b"connection"
            for t in v.split(b",")
        ]
        if b"close" in connection:
            raise _refuse("the server closes the connection after the challenge")
        has_body = not self._head_only and response.status_code not in (204, 304)
        if has_body and b"transfer-encoding" not in headers:
            length = headers.get(b"content-length")
            if length is None:
                raise _refuse("challenge response is not length-delimited")
            if int(length) > self._max_body:
                raise _refuse("challenge response is larger than allowed", "challenge.size")
        self._response = response

    def _finish(self) -> ChallengeResponse:
        if self._connection.trailing_data[0]:
            raise _refuse("the server sent bytes after the challenge response")
        assert self._response is not None
        headers: dict[str, str] = {}
        for name, value in self._response.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._done = ChallengeResponse(
            status=self._response.status_code, headers=headers, body=bytes(self._body)
        )
        return self._done


def exchange(
    request: ChallengeRequest,
    *,
    host: str | None,
    send_all: Callable[[bytes], None],
    receive: Callable[[], bytes],
) -> ChallengeResponse:
    """Run one exchange over blocking callables (``receive`` returns b"" at EOF)."""
    reader = ResponseReader(
        max_body_bytes=request.max_response_bytes, request_method=request.method
    )
    send_all(encode_request(request, host))
    while True:
        data = receive()
        if not data:
            reader.eof()
        response = reader.feed(data)
        if response is not None:
            return response

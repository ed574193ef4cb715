"""Challenge transport: one HTTP/1.1 exchange on a fresh TLS connection.

A challenge-style validator describes a request (:class:`ChallengeRequest`)
and parses the answer (:class:`ChallengeResponse`); this module is the
generic, sans-I/O part in between: it encodes the request and parses the
response incrementally with hard bounds (header size, body size, framing).
The TLS layer drives it over a blocking socket or a memory-BIO ``SSLObject``.

Everything the server sends here is untrusted: a malformed, oversized,
close-delimited or over-long answer is rejected rather than interpreted,
because the same connection must afterwards carry the application's HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

from atls_core.errors import MalformedEvidence
from atls_core.interfaces import ChallengeRequest, ChallengeResponse

__all__ = ["MAX_HEADER_BYTES", "ResponseReader", "encode_request", "exchange"]

MAX_HEADER_BYTES = 64 * 1024
"""Status line plus headers; more is refused."""

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits."""
    return bool(text) and text.isascii() and text.isdigit()


def _refuse(message: str, check: str = "challenge.framing") -> MalformedEvidence:
    return MalformedEvidence(message, check=check)


def _safe_field(value: str, what: str) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise _refuse(f"challenge request {what} contains a line break", "challenge.request")
    return value


def _host_header(host: str | None) -> str:
    if not host:
        return "localhost"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def encode_request(request: ChallengeRequest, host: str | None) -> bytes:
    """The request bytes: HTTP/1.1, keep-alive, explicit Content-Length."""
    method = request.method.upper()
    if not method or not set(method) <= _TOKEN_CHARS:
        raise _refuse("challenge request method is not an HTTP token", "challenge.request")
    path = _safe_field(request.path, "path")
    if not path.startswith("/") or " " in path:
        raise _refuse("challenge request path must be an absolute path", "challenge.request")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {_host_header(host)}"]
    reserved = {"host", "content-length", "connection", "transfer-encoding"}
    for name, value in request.headers.items():
        if not name or not set(name) <= _TOKEN_CHARS:
            raise _refuse("challenge request header name is not a token", "challenge.request")
        if name.lower() in reserved:
            continue
        lines.append(f"{name}: {_safe_field(value, 'header')}")
    lines.append(f"Content-Length: {len(request.body)}")
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


class ResponseReader:
    """Incremental HTTP/1.1 response parser with bounds.

    ``feed(data)`` returns the response once complete, else ``None``.  Bytes
    after the response are a protocol violation (the server must not speak
    first on a keep-alive connection) and are refused.
    """

    def __init__(self, *, max_body_bytes: int, request_method: str = "POST") -> None:
        self._max_body = max_body_bytes
        self._head_only = request_method.upper() == "HEAD"
        self._buffer = bytearray()
        self._status: int | None = None
        self._headers: dict[str, str] = {}
        self._length: int | None = None
        self._chunked = False
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
        self._buffer += data
        if self._status is None and not self._parse_head():
            return None
        finished = self._parse_chunks() if self._chunked else self._parse_fixed()
        if not finished:
            return None
        if self._buffer:
            raise _refuse("the server sent bytes after the challenge response")
        self._done = ChallengeResponse(
            status=self._status or 0, headers=self._headers, body=bytes(self._body)
        )
        return self._done

    def eof(self) -> None:
        """The connection closed before a complete response."""
        if self._done is None:
            raise _refuse("the server closed the connection during the challenge")

    # -- parsing -------------------------------------------------------------

    def _parse_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise _refuse("challenge response headers are too large")
            return False
        if end > MAX_HEADER_BYTES:
            raise _refuse("challenge response headers are too large")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") or not _is_decimal(parts[1]):
            raise _refuse("challenge response has no valid HTTP status line")
        status = int(parts[1])
        if not 200 <= status <= 599:
            raise _refuse("challenge response status is not final", "challenge.status")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or not set(name) <= _TOKEN_CHARS:
                raise _refuse("challenge response has a malformed header line")
            key = name.lower()
            value = value.strip()
            if key in headers and key in ("content-length", "transfer-encoding"):
                raise _refuse(f"challenge response repeats {name}")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if encoding is not None:
            if encoding.lower() != "chunked" or length is not None:
                raise _refuse("challenge response has an unsupported transfer encoding")
            self._chunked = True
        elif self._head_only or status in (204, 304):
            self._length = 0
        elif length is not None:
            if not _is_decimal(length):
                raise _refuse("challenge response has an invalid Content-Length")
            self._length = int(length)
            if self._length > self._max_body:
                raise _refuse("challenge response is larger than allowed", "challenge.size")
        else:
            raise _refuse("challenge response is not length-delimited")
        if headers.get("connection", "").lower() == "close":
            raise _refuse("the server closes the connection after the challenge")
        self._status = status
        self._headers = headers
        return True

    def _parse_fixed(self) -> bool:
        assert self._length is not None
        missing = self._length - len(self._body)
        self._body += self._buffer[:missing]
        del self._buffer[:missing]
        return len(self._body) == self._length

    def _parse_chunks(self) -> bool:
        while True:
            if self._length is None:  # expecting a size line
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    if len(self._buffer) > 1024:
                        raise _refuse("challenge response chunk header is too long")
                    return False
                size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise _refuse("challenge response has a bad chunk size")
                size = int(size_text, 16)
                if size < 0 or len(self._body) + size > self._max_body:
                    raise _refuse("challenge response is larger than allowed", "challenge.size")
                del self._buffer[: end + 2]
                if size == 0:
                    self._length = -1  # trailers follow
                else:
                    self._length = size
            if self._length == -1:
                end = self._buffer.find(b"\r\n\r\n")
                if self._buffer[:2] == b"\r\n":
                    del self._buffer[:2]
                    return True
                if end < 0:
                    if len(self._buffer) > MAX_HEADER_BYTES:
                        raise _refuse("challenge response trailers are too large")
                    return False
                del self._buffer[: end + 4]
                return True
            if len(self._buffer) < self._length + 2:
                return False
            if self._buffer[self._length : self._length + 2] != b"\r\n":
                raise _refuse("challenge response chunk is not terminated")
            self._body += self._buffer[: self._length]
            del self._buffer[: self._length + 2]
            self._length = None


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

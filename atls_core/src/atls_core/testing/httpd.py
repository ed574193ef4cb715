"""Loopback HTTP building blocks for stand-in services (127.0.0.1 only).

Tests talk to real servers: stand-ins for key servers, attestation services,
sidecars and guest agents.  They share a quiet request handler that answers
with a body or JSON, a threaded server on an ephemeral loopback port, and a
:class:`ScriptedServer` whose every answer the test scripts: a body, a
redirect, a request held at a gate, or a drip (the headers at once, then a
byte a second, never done), counting the requests that reached it.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Mapping
from typing import Any, Self

__all__ = ["LoopbackHTTPServer", "QuietHandler", "ScriptedServer"]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing (tests check behaviour, not logs)."""

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """One complete response; a client that gave up (timeout tests) is not an error."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return

    def send_json(self, status: int, value: Any) -> None:
        self.send_body(status, json.dumps(value).encode())

    def read_body(self, limit: int = 1 << 20) -> bytes:
        """The request body (``Content-Length`` bytes, at most ``limit``)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, limit)) if length else b""

    def log_message(self, format: str, *args: Any) -> None:
        return


class LoopbackHTTPServer:
    """A threaded HTTP server on an ephemeral 127.0.0.1 port, serving until :meth:`close`.

    ``url`` is ``http://127.0.0.1:<port>`` plus ``path``; use it as a context manager.
    """

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], path: str = "") -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScriptedServer(LoopbackHTTPServer):
    """Answers every GET and POST as its attributes say at the time of the request.

    ``redirect_to`` (with ``redirect_status``) wins, then ``drip``, then the body:
    ``body`` when it is not ``None``, else ``document`` as JSON.  A drip sends its
    headers, then one byte a second for ``drip_seconds`` and hangs up short of the
    promised length: a client that waits it out sees a cut-off body, not its deadline.
    """

    def __init__(self, *, path: str = "", document: Any = None, body: bytes | None = b"") -> None:
        self.document = document
        self.body = body if document is None else None
        self.status = 200
        self.redirect_to: str | None = None
        self.redirect_status = 307
        self.drip = False
        self.drip_seconds = 8
        self.gate: threading.Event | None = None
        self.requests = 0
        self.stop = threading.Event()
        self.dripping = threading.Event()
        super().__init__(_scripted_handler(self), path)

    def close(self) -> None:
        self.stop.set()
        super().close()


def _scripted_handler(server: ScriptedServer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _answer(self) -> None:
            server.requests += 1
            self.read_body()
            if server.gate is not None:
                server.gate.wait(5)
            if server.redirect_to is not None:
                self.send_body(
                    server.redirect_status, b"", headers={"Location": server.redirect_to}
                )
            elif server.drip:
                self.send_response(server.status)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.flush()
                server.dripping.set()
                for _ in range(server.drip_seconds):
                    if server.stop.wait(1):
                        break
                    self.wfile.write(b" ")
                    self.wfile.flush()
                self.close_connection = True
            elif server.body is not None:
                self.send_body(server.status, server.body)
            else:
                self.send_json(server.status, server.document)

        do_GET = do_POST = _answer

    return Handler

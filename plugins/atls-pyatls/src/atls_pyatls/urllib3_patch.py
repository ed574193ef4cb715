"""pyatls's ``inject_into_urllib3(validators)`` / ``extract_from_urllib3()``.

Injection makes every ``https://`` connection urllib3 opens (and so
``urllib3.request`` and plain ``requests``) an attested one, appraised by the
given validators; extraction restores urllib3's own connection class.  A
keep-alive connection a pool opened before injection (or under other
validators) is closed instead of reused, so no request after injection goes
over a connection these validators did not appraise.  TLS
options urllib3 passes (CA bundles, ``cert_reqs``, ``ssl_context``) cannot
replace the appraisal and are ignored, as in pyatls; client certificates and
``assert_fingerprint`` still apply.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from urllib3.connectionpool import HTTPSConnectionPool

from atls_pyatls.connection import AttestedConnection
from atls_pyatls.context import ATLSContext

__all__ = ["extract_from_urllib3", "inject_into_urllib3"]

_IGNORED = ("ssl_context", "ca_certs", "ca_cert_dir", "ca_cert_data", "cert_reqs")

_lock = threading.Lock()
_original: type[Any] | None = None
_OWN_GET_CONN = HTTPSConnectionPool.__dict__.get("_get_conn")
"""What ``HTTPSConnectionPool`` itself defines (today nothing: it inherits it), restored
on extraction."""


class _InjectedConnection(AttestedConnection):
    """What ``HTTPSConnectionPool`` builds while injected: urllib3's arguments, our context."""

    context: ClassVar[ATLSContext]

    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        for name in _IGNORED:
            kwargs.pop(name, None)
        super().__init__(host, port, ssl_context=self.context, **kwargs)


def _get_injected_conn(self: HTTPSConnectionPool, timeout: float | None = None) -> Any:
    """A pooled connection only if the injected validators appraised it; else a new one."""
    # The inherited method as it is now: a later patch of it (tracing) still runs.
    conn = super(HTTPSConnectionPool, self)._get_conn(timeout)
    if not isinstance(conn, self.ConnectionCls):
        conn.close()  # opened before injection, or under other validators
        conn = self._new_conn()
    return conn


def inject_into_urllib3(validators: Sequence[object]) -> None:
    """Appraise every urllib3 HTTPS connection with ``validators`` until extracted."""
    global _original
    injected = type(
        "HTTPAPoolConnection", (_InjectedConnection,), {"context": ATLSContext(validators)}
    )
    with _lock:
        if _original is None:
            _original = HTTPSConnectionPool.ConnectionCls
        HTTPSConnectionPool.ConnectionCls = injected
        HTTPSConnectionPool._get_conn = _get_injected_conn  # type: ignore[method-assign,assignment]


def extract_from_urllib3() -> None:
    """Undo :func:`inject_into_urllib3` (nothing to do if nothing was injected)."""
    global _original
    with _lock:
        if _original is None:
            return
        HTTPSConnectionPool.ConnectionCls = _original
        if _OWN_GET_CONN is None:
            del HTTPSConnectionPool._get_conn
        else:
            HTTPSConnectionPool._get_conn = _OWN_GET_CONN  # type: ignore[method-assign]
        _original = None

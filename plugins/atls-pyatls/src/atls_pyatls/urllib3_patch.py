"""pyatls's ``inject_into_urllib3(validators)`` / ``extract_from_urllib3()``.

Injection makes every ``https://`` connection urllib3 opens (and so
``urllib3.request`` and plain ``requests``) an attested one, appraised by the
given validators; extraction restores urllib3's own connection class.  TLS
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


class _InjectedConnection(AttestedConnection):
    """What ``HTTPSConnectionPool`` builds while injected: urllib3's arguments, our context."""

    context: ClassVar[ATLSContext]

    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        for name in _IGNORED:
            kwargs.pop(name, None)
        super().__init__(host, port, ssl_context=self.context, **kwargs)


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


def extract_from_urllib3() -> None:
    """Undo :func:`inject_into_urllib3` (nothing to do if nothing was injected)."""
    global _original
    with _lock:
        if _original is None:
            return
        HTTPSConnectionPool.ConnectionCls = _original
        _original = None

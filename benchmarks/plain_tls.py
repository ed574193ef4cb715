"""The baseline client context every TLS benchmark compares against.

Built exactly like an ``ATLSContext`` minus appraisal (TLS client protocol, no certificate or
host-name check, no renegotiation or compression, TLS 1.2 minimum), not from the system trust
store, which would make the baseline slower and flatter us.  It imports nothing but ``ssl``,
so a soak client process holding it measures a plain client's own memory.
"""

from __future__ import annotations

import ssl


def plain_context() -> ssl.SSLContext:
    """What ATLSContext sets up, minus appraisal: the fair baseline."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context

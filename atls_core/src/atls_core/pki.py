"""Web-PKI validation for host rules with ``pki = true``, after the handshake.

The TLS layer lets OpenSSL finish the handshake without verification (the
appraisal decides), so a rule that also wants the web PKI's verdict gets it
here, from ``cryptography``'s verifier, on the chain the server sent.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from atls_core.errors import ConfigurationError, UntrustedChain

if TYPE_CHECKING:
    from atls_core.clock import Clock

__all__ = ["load_roots", "verify_pki"]


def load_roots(cafile: str | None, cadata: str | bytes | None) -> list[Any]:
    """The trusted roots: ``cafile``/``cadata`` if given, else the system's (and certifi's)."""
    from cryptography import x509

    pem = b""
    if cadata is not None:
        pem += cadata.encode() if isinstance(cadata, str) else cadata
    paths = [cafile] if cafile else []
    if not paths and cadata is None:
        defaults = ssl.get_default_verify_paths()
        paths = [p for p in (defaults.cafile, defaults.openssl_cafile) if p]
        try:
            import certifi  # optional: the bundle requests users already trust

            paths.append(certifi.where())
        except ImportError:
            pass
    from pathlib import Path  # here: an attested client that never reads a CA file needs none

    for path in paths:
        try:
            pem += b"\n" + Path(path).read_bytes()
        except OSError:
            continue
    try:
        roots = x509.load_pem_x509_certificates(pem) if pem.strip() else []
    except ValueError as exc:
        raise ConfigurationError(f"cannot read PKI roots: {exc}", check="tls.pki.roots") from None
    if not roots:
        raise ConfigurationError(
            "pki = true but no trusted root certificates were found", check="tls.pki.roots"
        )
    return roots


def verify_pki(chain_der: list[bytes], host: str | None, roots: list[Any], clock: Clock) -> None:
    """Web-PKI path validation and host name check with ``cryptography``."""
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    if not host:
        raise UntrustedChain("PKI verification needs a host name", check="tls.pki.hostname")
    if not chain_der:
        raise UntrustedChain("the server sent no certificate", check="tls.pki.chain")
    try:
        leaf = x509.load_der_x509_certificate(chain_der[0])
        intermediates = [x509.load_der_x509_certificate(d) for d in chain_der[1:]]
    except ValueError as exc:
        raise UntrustedChain(f"unreadable certificate: {exc}", check="tls.pki.chain") from None
    subject: Any
    try:
        subject = x509.IPAddress(ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = PolicyBuilder().store(Store(roots)).time(clock.now()).build_server_verifier(subject)
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise UntrustedChain(
            f"the certificate is not valid for {host!r} under the trusted roots: {exc}",
            check="tls.pki",
        ) from None

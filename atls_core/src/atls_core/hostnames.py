"""Host names in the one form atls compares them in.

Configuration patterns, the name a TLS connection carries and the host an HTTP
client routes on are compared only after :func:`canonical_host` (or, for a
pattern, :func:`canonical_pattern`).  Compared as written, one host has many
spellings, and a rule that misses its host lets another rule (``"*"``), or
plain PKI under ``only_configured_hosts``, take the connection.  The form:

* lowercase, without ``[]`` around an IPv6 literal and without a trailing dot;
* an IP address as :mod:`ipaddress` writes it (``0:0::1`` is ``::1``, an
  IPv4-mapped ``::ffff:127.0.0.1`` is ``127.0.0.1``), including the IPv4
  shorthand the C resolver connects to (``127.1``, ``2130706433``,
  ``0x7f.0.0.1``), read with the same ``inet_aton``;
* an internationalized name as A-labels (``xn--``), and only when IDNA 2003
  (Python's ``socket`` and ``ssl`` modules, so ``http.client`` and asyncio) and
  IDNA 2008 (the ``idna`` package: httpx, requests, urllib3) give the same
  labels.  Where they differ (``faß.de`` is ``fass.de`` under one and
  ``xn--fa-hia.de`` under the other), or cannot be compared (``idna`` is not
  installed), the host a name means depends on the library that resolves it,
  so the name is refused with a :class:`ConfigurationError`: write the
  ``xn--`` form of the host you mean.
"""

from __future__ import annotations

import socket

from atls_core.errors import ConfigurationError

__all__ = ["canonical_host", "canonical_pattern", "is_glob"]

_GLOB = "*?["
_INET_ATON = frozenset("0123456789abcdefxABCDEFX.")
"""Every character an IPv4 literal in ``inet_aton``'s syntax can hold."""


def is_glob(pattern: str) -> bool:
    """Whether a host pattern is a shell-style glob (``*.example.com``) rather than one name."""
    return any(ch in pattern for ch in _GLOB)


def canonical_host(host: str) -> str:
    """``host`` in the form rules are matched in (see the module docstring); ``""`` for none.

    Raises :class:`ConfigurationError` for an internationalized name whose
    ASCII form is ambiguous.  Idempotent: a canonical name is returned as is.
    """
    name = host.strip("[]").rstrip(".")
    address = _ip_address(name)
    if address is not None:
        return address
    if name.isascii():
        return name.lower()
    return _a_labels(name)


def canonical_pattern(pattern: str) -> str:
    """A host rule's pattern in the form :func:`canonical_host` gives names.

    A glob is canonicalised label by label (its wildcards cannot be encoded);
    a label that mixes wildcards and non-ASCII letters is refused.  ``[::1]``
    is an IPv6 literal, not a glob of one character.
    """
    if not is_glob(pattern) or (":" in pattern and _ip_address(pattern.strip("[]"))):
        return canonical_host(pattern)
    labels = []
    for label in pattern.rstrip(".").split("."):
        if label.isascii():
            labels.append(label.lower())
        elif is_glob(label):
            raise ConfigurationError(
                "a host pattern label cannot mix wildcards and non-ASCII letters; write the "
                "label's xn-- form, or match it with a wildcard label of its own",
                check="config.hosts",
                actual=pattern,
            )
        else:
            labels.append(_a_labels(label))
    return ".".join(labels)


def _ip_address(name: str) -> str | None:
    """``name``'s address if it is an IP literal a client would connect to as such."""
    if ":" in name:
        import ipaddress  # here: only IPv6 literals need it, and most clients name hosts

        try:
            address = ipaddress.IPv6Address(name)
        except ValueError:
            return None
        mapped = address.ipv4_mapped
        return str(mapped if mapped is not None else address)
    if name and _INET_ATON.issuperset(name):
        # The resolver reads IPv4 with inet_aton (shorthand, hex, octal): so does this.
        # The character check keeps out the trailing text some inet_aton accept.
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return None
    return None


def _a_labels(name: str) -> str:
    """``name`` (not ASCII) as A-labels, when IDNA 2003 and IDNA 2008 agree on them."""
    name = name.lower()
    try:
        legacy: str | None = name.encode("idna").decode("ascii")
    except UnicodeError:
        legacy = None
    try:
        import idna  # httpx, requests and urllib3 depend on it; atls-core does not
    except ImportError:
        current, why = None, "cannot be checked: the idna package is not installed"
    else:
        try:
            current = idna.encode(name, uts46=True).decode("ascii")
            why = f"is {current}"
        except idna.IDNAError:
            current, why = None, "refuses it"
    if legacy is not None and legacy == current:
        return legacy
    raise ConfigurationError(
        f"the host name {name!r} has no single ASCII form: under IDNA 2008 (httpx, requests, "
        f"urllib3) it {why}, under IDNA 2003 (Python's socket and ssl modules) it "
        + (f"is {legacy}" if legacy else "is invalid")
        + "; write the xn-- form of the host you mean",
        check="config.hosts",
        actual=name,
    )

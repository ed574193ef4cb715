"""Keep credentials out of messages, results and logs.

A configured URL may carry credentials (``https://user:token@pccs.example``,
``https://keys.example/certs?code=...``, ``https://pccs.example/<token>/sgx``)
and every error that names a service would otherwise repeat them.  Two rules,
cheap enough to apply to every error:

* a service is *named* by :func:`redact_url`: ``scheme://host:port`` and, when
  the URL has more (a path, query or fragment), :data:`MASK` after a slash --
  never userinfo, path, query or fragment, since any of them may carry a token
  and a token cannot be told apart from a harmless value;
* free text goes through :func:`redact_text`: URLs in it keep only their
  scheme and host (and port, as written) with the same mark for what was cut,
  and values of secrets the caller names are masked.

:class:`atls_core.errors.ATLSError` applies :func:`redact_text` to its message
and :func:`redact_value` to ``expected``/``actual``, so no error renders URL
credentials whichever code raised it.  A secret that is not in a URL (an API
key pasted into a message) can only be masked by a caller who names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atls_core.secret import Secret

__all__ = ["MASK", "redact_text", "redact_url", "redact_value"]

MASK = "***"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CUT = "/" + MASK
"""Stands for the path, query and fragment a named URL had (they are never shown)."""
_SENTENCE_END = ".,;:!?)]}"
# A URL as it appears in prose or in a repr: stops at whitespace and quotes.  Compiled when
# first needed (``re`` keeps it): most processes never redact a URL.
_URL_IN_TEXT = r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+"


def redact_url(url: str) -> str:
    """``scheme://host:port`` of ``url`` (``/***`` after it when anything followed):
    how an error may name a service.

    The port is always shown for http(s).  Text that does not parse as a URL is
    scrubbed by the same rules as :func:`redact_text`.
    """
    import urllib.parse  # here: every error imports this module, few name a URL

    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return _scrub_url(url.strip())
    if not parts.scheme or not host:
        return _scrub_url(url.strip())
    scheme = parts.scheme.lower()
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if port is None else f"{shown}:{port}"
    more = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{scheme}://{netloc}" + (_CUT if more else "")


def _scrub_url(url: str) -> str:
    """The scheme and host as written (userinfo dropped), and the mark if anything followed."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    authority = authority.rpartition("@")[2]
    return f"{scheme}://{authority}" + (tail if tail in ("", "/") else _CUT)


def _scrub_in_text(match: re.Match[str]) -> str:
    url = match.group(0)
    # "from https://h/x: status": the colon is the sentence's, not the URL's.
    kept = url.rstrip(_SENTENCE_END)
    return _scrub_url(kept) + url[len(kept) :]


def redact_text(text: str, secrets: Iterable[Secret | str] = ()) -> str:
    """``text`` with the given secrets masked and URLs cut to their scheme and host.

    A URL that is only an origin (``https://host[:port]``) is left exactly as
    written, so messages that merely name a service do not change.
    """
    for secret in secrets:
        reveal = getattr(secret, "reveal", None)
        value = reveal() if callable(reveal) else secret
        if isinstance(value, str) and value:
            text = text.replace(value, MASK)
    if "://" not in text:
        return text
    scrubbed = re.sub(_URL_IN_TEXT, _scrub_in_text, text)
    return text if scrubbed == text else scrubbed  # the same object: callers test identity


def redact_value(value: Any) -> Any:
    """``value`` with :func:`redact_text` applied to every string in it.

    Containers (list, tuple, set, dict keys and values) are rebuilt, as plain
    builtins, only when something changed; other objects are returned as they
    are (their ``repr`` is redacted where it is rendered).
    """
    if isinstance(value, str):
        return redact_text(value) if "://" in value else value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [redact_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        return frozenset(items) if isinstance(value, frozenset) else set(items)
    if isinstance(value, Mapping):
        pairs = [(redact_value(k), redact_value(v)) for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    return value

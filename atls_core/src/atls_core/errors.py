"""One small, flat tree of errors.

Every error names the *check* that failed (a stable, dotted identifier such as
``tdx.tcb_status`` or ``binding.report_data``) and, where it is safe to show, the
expected and the actual value.  Callers can branch on the class; humans read the
message.  A network fault (:class:`CollateralUnavailable`) is deliberately not a
rejection of the evidence: it says "could not decide", never "verified".

Messages and values pass through :mod:`atls_core.redact` when an error is
made: a URL in them loses its userinfo, query and fragment, so a configured
``https://user:token@host`` cannot leak through ``str``, ``repr`` or
:meth:`ATLSError.to_dict`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from atls_core.redact import redact_text, redact_value

if TYPE_CHECKING:
    from atls_core.result import AttestationResult

__all__ = [
    "ATLSError",
    "ATLSVerificationError",
    "AppraisalFailed",
    "BindingMismatch",
    "CollateralUnavailable",
    "ConfigurationError",
    "DuplicateRegistration",
    "IncompatiblePlugin",
    "IssuanceRefused",
    "IssuerError",
    "MalformedEvidence",
    "PluginLoadError",
    "PluginNotFound",
    "ServiceUnavailable",
    "StaleEvidence",
    "UntrustedChain",
    "attestation_error",
]

_MAX_SHOWN = 160


def did_you_mean(name: object, candidates: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to a mistyped ``name``, else ``""``."""
    import difflib

    if not isinstance(name, str):  # a key from YAML or JSON may be a number
        return ""
    words = [c for c in candidates if isinstance(c, str)]
    matches = difflib.get_close_matches(name, words, n=1, cutoff=0.75)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _shown(value: Any) -> str:
    """Render a value for a message: bytes as hex, long values shortened."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).hex()
    elif isinstance(value, (set, frozenset)):
        text = repr(sorted(value, key=str))
    else:
        text = repr(value) if not isinstance(value, str) else value
    # Before shortening: a URL cut inside its userinfo could not be recognised.
    text = redact_text(text)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return redact_text(str(value))


class ATLSError(Exception):
    """Base of every error raised by atls.

    ``check`` is the dotted name of the failing check; ``expected`` and
    ``actual`` are shown only when given (secrets are never passed here).
    """

    default_check = "atls"

    def __init__(
        self,
        message: str,
        *,
        check: str | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        self.reason = redact_text(message)
        self.check = check or self.default_check
        self.expected = redact_value(expected)
        self.actual = redact_value(actual)
        super().__init__(self._render())

    def fresh(self) -> Self:
        """An equal new exception, to raise again what was kept (a cached failure): raising
        one instance each time would grow its traceback and chain."""
        copy = type(self).__new__(type(self), *self.args)
        copy.__dict__.update(self.__dict__)
        return copy

    def in_configuration(self, where: str, *, check: str | None = None) -> ConfigurationError:
        """This refusal as a mistake of the configuration at ``where`` (a key, a host rule)."""
        return ConfigurationError(
            f"{where}: {self.reason}",
            check=check or self.check,
            expected=self.expected,
            actual=self.actual,
        )

    def _render(self) -> str:
        text = f"{self.check}: {self.reason}"
        if self.expected is not None and self.actual is not None:
            text += f" (expected {_shown(self.expected)}, got {_shown(self.actual)})"
        elif self.expected is not None:
            text += f" (expected {_shown(self.expected)})"
        elif self.actual is not None:
            text += f" (got {_shown(self.actual)})"
        return redact_text(text)

    def __str__(self) -> str:
        return self._render()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready, redacted form for reports and structured logs."""
        return {
            "error": type(self).__name__,
            "check": self.check,
            "message": redact_text(self.reason),
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
        }


class ConfigurationError(ATLSError):
    """The configuration is invalid; the message names the file, key and problem."""

    default_check = "config"


class PluginNotFound(ATLSError):
    """Configuration selects a validator or issuer that no installed plugin provides."""

    default_check = "plugins.lookup"


class PluginLoadError(ATLSError):
    """A selected plugin failed to import or to register; names distribution and version."""

    default_check = "plugins.load"


class IncompatiblePlugin(PluginLoadError):
    """A plugin's declared atls-core range excludes the running core."""

    default_check = "plugins.core_version"


class DuplicateRegistration(ATLSError):
    """Two plugins claim the same validator id, issuer id or certificate OID."""

    default_check = "plugins.duplicate"


class MalformedEvidence(ATLSError):
    """Evidence could not be parsed: truncated, wrong version, bad encoding."""

    default_check = "evidence.format"


class UntrustedChain(ATLSError):
    """A signature or certificate chain does not lead to a configured trust anchor.

    Also raised for a signing key that is not among the configured ones
    ("unknown signing key") and for a disallowed signature algorithm.
    """

    default_check = "evidence.signature"


class BindingMismatch(ATLSError):
    """Evidence is genuine but bound to another key, certificate or nonce."""

    default_check = "binding.report_data"


class StaleEvidence(ATLSError):
    """Evidence, collateral or token is expired, not yet valid, or too old for policy."""

    default_check = "freshness"


class CollateralUnavailable(ATLSError):
    """Endorsements (collateral, signing keys) could not be obtained in time.

    A network fault: the evidence was neither accepted nor rejected.
    """

    default_check = "collateral.fetch"


class ServiceUnavailable(CollateralUnavailable):
    """A remote service did not answer usably within the deadline.

    Raised by :func:`atls_core.fetch.fetch` for every network fault.  A
    :class:`CollateralUnavailable`, so code that treats a fetch failure as
    "could not decide" keeps doing so.  ``service`` names the endpoint by its
    origin, ``scheme://host[:port]``, with ``/***`` when the URL had more (never
    credentials, path or query: :func:`atls_core.redact.redact_url`); ``phase`` is the
    step that failed: ``connect``, ``tls``, ``timeout``, ``too large``,
    ``redirect``, ``status`` or ``protocol``.
    """

    default_check = "service.fetch"

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        phase: str = "",
        check: str | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        self.service = redact_text(service)
        self.phase = phase
        super().__init__(message, check=check, expected=expected, actual=actual)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "service": self.service, "phase": self.phase}


class IssuerError(ATLSError):
    """The TEE could not produce evidence (not such a guest, agent down, kernel refused)."""

    default_check = "issuer"


class IssuanceRefused(IssuerError):
    """The server refused to ask its evidence source, to bound what clients make it spend.

    Raised by :mod:`atls_core.issuance_limits`; ``phase`` is the bound that refused:
    ``busy`` (every issuance slot taken), ``rate`` (a rate exceeded) or ``timeout``
    (the evidence did not come in time).  Not a verdict on any evidence.
    """

    default_check = "server.issuance"

    def __init__(self, message: str, *, phase: str, check: str | None = None) -> None:
        self.phase = phase
        super().__init__(message, check=check)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "phase": self.phase}


class AppraisalFailed(ATLSError):
    """The evidence verified but the policy does not accept it; carries the result."""

    default_check = "policy"

    def __init__(
        self,
        message: str,
        *,
        result: AttestationResult,
        check: str | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        self.result = result
        super().__init__(message, check=check, expected=expected, actual=actual)


class ATLSVerificationError(ATLSError, ssl.SSLCertVerificationError):
    """Raised by the TLS layer: an ``ssl.SSLCertVerificationError`` as well.

    requests, httpx and urllib3 therefore report it as a certificate
    verification failure.  ``cause`` is the underlying atls error and
    ``result`` the attestation result when appraisal got that far.
    """

    default_check = "tls.appraisal"

    def __init__(
        self,
        cause: ATLSError,
        *,
        host: str | None = None,
        result: AttestationResult | None = None,
    ) -> None:
        self.cause = cause
        self.host = host
        self.result = result if result is not None else getattr(cause, "result", None)
        where = f"attestation of {host!r} failed: " if host else "attestation failed: "
        ATLSError.__init__(
            self,
            where + cause.reason,
            check=cause.check,
            expected=cause.expected,
            actual=cause.actual,
        )
        # ssl.SSLError exposes these; urllib3 and httpx read them.
        self.verify_code = 0
        self.verify_message = str(self)
        self.reason = where + cause.reason


def attestation_error(error: BaseException | None) -> ATLSError | None:
    """The atls error inside an HTTP library's exception, or ``None``.

    requests, urllib3, httpx and the OpenAI client wrap the TLS failure in
    their own exceptions (``requests.exceptions.SSLError``,
    ``openai.APIConnectionError``...).  This follows ``__cause__``,
    ``__context__`` and exception arguments (urllib3 keeps the reason in
    ``MaxRetryError.reason``) to the :class:`ATLSError` that says which check
    failed.  For an :class:`ATLSVerificationError` it returns that error
    (its ``cause`` is the specific one).
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error] if error is not None else []
    while pending:
        current = pending.pop(0)
        if id(current) in seen or len(seen) > 64:
            continue
        seen.add(id(current))
        if isinstance(current, ATLSError):
            return current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return None

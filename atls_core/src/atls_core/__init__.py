"""atls: attested TLS.

Connect only to services whose hardware attestation evidence, bound to the
server's TLS key, satisfies your policy.  Importing this package costs next to
nothing: each public name imports its module on first use (a command-line tool
that only needs the version, or one name, does not pay for the rest).
"""

from atls_core._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing alone costs a cold start more than this
if TYPE_CHECKING:  # what the names below are; at run time each is imported on first use
    from atls_core.binding import Binding, BindingContext, Freshness
    from atls_core.clock import Clock, FixedClock, SystemClock
    from atls_core.config import ATLSConfig, HostRule
    from atls_core.connection import HTTPAConnection as HTTPAConnection
    from atls_core.errors import (
        AppraisalFailed,
        ATLSError,
        ATLSVerificationError,
        BindingMismatch,
        CollateralUnavailable,
        ConfigurationError,
        DuplicateRegistration,
        IncompatiblePlugin,
        IssuanceRefused,
        MalformedEvidence,
        PluginLoadError,
        PluginNotFound,
        ServiceUnavailable,
        StaleEvidence,
        UntrustedChain,
        attestation_error,
    )
    from atls_core.evidence import Evidence, EvidenceSource, Transport
    from atls_core.hookspecs import hookimpl
    from atls_core.httpx_transport import AsyncATLSTransport as AsyncATLSTransport
    from atls_core.httpx_transport import ATLSTransport as ATLSTransport
    from atls_core.httpx_transport import atls_async_httpx_client as atls_async_httpx_client
    from atls_core.httpx_transport import atls_httpx_client as atls_httpx_client
    from atls_core.interfaces import (
        ChallengeRequest,
        ChallengeResponse,
        CliOption,
        Issuer,
        IssuerSpec,
        KeyBoundIssuer,
        ReportData,
        Validator,
        ValidatorBase,
        ValidatorSpec,
    )
    from atls_core.offline import verify_evidence
    from atls_core.openai_client import AttestationConnectionError as AttestationConnectionError
    from atls_core.openai_client import atls_async_openai_client as atls_async_openai_client
    from atls_core.openai_client import atls_openai_client as atls_openai_client
    from atls_core.policy import Policy, ReferenceValue
    from atls_core.requests_adapter import ATLSAdapter as ATLSAdapter
    from atls_core.result import AttestationResult, Status
    from atls_core.secret import Secret
    from atls_core.selection import AppraiserLike as AppraiserLike
    from atls_core.selection import select_validator as select_validator
    from atls_core.server import AttestedCertificates as AttestedCertificates
    from atls_core.server import ChallengeEndpoint as ChallengeEndpoint
    from atls_core.server import mint_certificate as mint_certificate
    from atls_core.tls import ATLSContext as ATLSContext
    from atls_core.tls import result_of as result_of

__all__ = [
    "ATLSConfig",
    "ATLSError",
    "ATLSVerificationError",
    "AppraisalFailed",
    "AttestationResult",
    "Binding",
    "BindingContext",
    "BindingMismatch",
    "ChallengeRequest",
    "ChallengeResponse",
    "CliOption",
    "Clock",
    "CollateralUnavailable",
    "ConfigurationError",
    "DuplicateRegistration",
    "Evidence",
    "EvidenceSource",
    "FixedClock",
    "Freshness",
    "HostRule",
    "IncompatiblePlugin",
    "IssuanceRefused",
    "IssuerError",
    "Issuer",
    "IssuerSpec",
    "KeyBoundIssuer",
    "MalformedEvidence",
    "PluginLoadError",
    "PluginNotFound",
    "Policy",
    "ReferenceValue",
    "ReportData",
    "Secret",
    "ServiceUnavailable",
    "StaleEvidence",
    "Status",
    "SystemClock",
    "Transport",
    "UntrustedChain",
    "Validator",
    "ValidatorBase",
    "ValidatorSpec",
    "__version__",
    "attestation_error",
    "hookimpl",
    "verify_evidence",
]

# Every name is imported on first use, so ``import atls_core`` costs next to nothing
# (no attrs, ssl, pluggy, requests, httpx or cryptography until a name needs them).
_LAZY = {
    **dict.fromkeys(("Binding", "BindingContext", "Freshness"), "atls_core.binding"),
    **dict.fromkeys(("Clock", "FixedClock", "SystemClock"), "atls_core.clock"),
    **dict.fromkeys(("ATLSConfig", "HostRule"), "atls_core.config"),
    **dict.fromkeys(
        (
            "AppraisalFailed",
            "ATLSError",
            "ATLSVerificationError",
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
        ),
        "atls_core.errors",
    ),
    **dict.fromkeys(("Evidence", "EvidenceSource", "Transport"), "atls_core.evidence"),
    "hookimpl": "atls_core.hookspecs",
    **dict.fromkeys(
        (
            "ChallengeRequest",
            "ChallengeResponse",
            "CliOption",
            "Issuer",
            "IssuerSpec",
            "KeyBoundIssuer",
            "ReportData",
            "Validator",
            "ValidatorBase",
            "ValidatorSpec",
        ),
        "atls_core.interfaces",
    ),
    **dict.fromkeys(("Policy", "ReferenceValue"), "atls_core.policy"),
    **dict.fromkeys(("AttestationResult", "Status"), "atls_core.result"),
    "atls_openai_client": "atls_core.openai_client",
    "atls_async_openai_client": "atls_core.openai_client",
    "AttestationConnectionError": "atls_core.openai_client",
    "verify_evidence": "atls_core.offline",
    "Secret": "atls_core.secret",
    "AppraiserLike": "atls_core.selection",
    "select_validator": "atls_core.selection",
    "ATLSContext": "atls_core.tls",
    "result_of": "atls_core.tls",
    "HTTPAConnection": "atls_core.connection",
    "ATLSAdapter": "atls_core.requests_adapter",
    "ATLSTransport": "atls_core.httpx_transport",
    "AsyncATLSTransport": "atls_core.httpx_transport",
    "atls_httpx_client": "atls_core.httpx_transport",
    "atls_async_httpx_client": "atls_core.httpx_transport",
    "AttestedCertificates": "atls_core.server",
    "ChallengeEndpoint": "atls_core.server",
    "mint_certificate": "atls_core.server",
}


def __getattr__(name: str) -> object:
    from atls_core.lazy import lazy_attribute  # not on import: `import atls_core` loads nothing

    return lazy_attribute(__name__, _LAZY, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""atls: attested TLS.

Connect only to services whose hardware attestation evidence, bound to the
server's TLS key, satisfies your policy.  Importing this package is light: it
imports no plugin, no dcap-qvl, no requests and no httpx.
"""

from atls_core._version import __version__
from atls_core.binding import Binding, BindingContext, Freshness
from atls_core.clock import Clock, FixedClock, SystemClock
from atls_core.config import ATLSConfig, HostRule, Secret
from atls_core.errors import (
    AppraisalFailed,
    ATLSError,
    ATLSVerificationError,
    BindingMismatch,
    CollateralUnavailable,
    ConfigurationError,
    DuplicateRegistration,
    IncompatiblePlugin,
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
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status

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

# TLS, HTTP and server names are imported on first use so that ``import atls_core``
# stays light (no requests, httpx or cryptography x509 builders until needed).
_LAZY = {
    "atls_openai_client": "atls_core.openai_client",
    "atls_async_openai_client": "atls_core.openai_client",
    "AttestationConnectionError": "atls_core.openai_client",
    "verify_evidence": "atls_core.offline",
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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'atls_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

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
    StaleEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.hookspecs import hookimpl
from atls_core.interfaces import (
    ChallengeRequest,
    ChallengeResponse,
    CliOption,
    Issuer,
    IssuerSpec,
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
    "MalformedEvidence",
    "PluginLoadError",
    "PluginNotFound",
    "Policy",
    "ReferenceValue",
    "Secret",
    "StaleEvidence",
    "Status",
    "SystemClock",
    "Transport",
    "UntrustedChain",
    "Validator",
    "ValidatorBase",
    "ValidatorSpec",
    "__version__",
    "hookimpl",
]

"""The body of ``atls verify URL``: connect, appraise, report, exit.

Exit codes: 0 accepted; 1 rejected (the failing check is printed); 2 bad
usage or configuration (also when found while connecting: no rule for the
host, a plugin that is missing); 3 the server could not be reached; a validator that
raises a bare exception is the internal error ``atls`` reports (70).  Never a traceback:
everything a server sends is shown through the report renderer, which escapes
control characters.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import attrs

from atls_core.errors import (
    ATLSError,
    ATLSVerificationError,
    ConfigurationError,
    DuplicateRegistration,
    PluginLoadError,
    PluginNotFound,
)

__all__ = ["run"]

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

_CONFIGURATION_ERRORS = (
    ConfigurationError,
    PluginNotFound,
    PluginLoadError,
    DuplicateRegistration,
)


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme.lower() not in ("https", "httpa"):
        raise ConfigurationError(
            "atls verify connects to https:// (or httpa://) URLs",
            check="verify.url",
            actual=parts.scheme,
        )
    try:
        port = parts.port or 443
    except ValueError:
        raise ConfigurationError("the URL has an invalid port", check="verify.url") from None
    if not parts.hostname:
        raise ConfigurationError("the URL has no host", check="verify.url", actual=url)
    return parts.hostname, port


def _context(args: argparse.Namespace, host: str) -> Any:
    from atls_core.config import ATLSConfig
    from atls_core.selection import manager_for, select_validator
    from atls_core.tls import ATLSContext

    config = ATLSConfig.load(args.config, check=False) if getattr(args, "config", None) else None
    validator_id = getattr(args, "validator", None)
    allow_insecure = bool(getattr(args, "allow_insecure", False))
    if config is not None and allow_insecure and not config.allow_insecure_test_validators:
        config = ATLSConfig(
            hosts=config.hosts,
            allow_insecure_test_validators=True,
            disable_plugins=config.disable_plugins,
            source=config.source,
        )
    if config is not None:
        config.check()
    references = getattr(args, "reference", None) or []
    allow_any = bool(getattr(args, "allow_any_workload", False))
    if validator_id is None:
        if config is None:
            raise ConfigurationError(
                "give --config FILE or --validator ID", check="verify.arguments"
            )
        if references or allow_any:
            from atls_core.cli_common import pinned_policy

            config = attrs.evolve(
                config,
                hosts=tuple(
                    attrs.evolve(rule, policy=pinned_policy(rule.policy, references, allow_any))
                    for rule in config.hosts
                ),
            )
        config.rule_for(host)  # no rule for the host: the configuration's mistake, found offline
        return ATLSContext(config)
    policy = settings = None
    pki = False
    if config is not None:
        try:
            rule = config.rule_for(host)
        except ConfigurationError:
            rule = None
        if rule is not None:
            policy, settings, pki = rule.policy, rule.settings, rule.pki
        allow_insecure = allow_insecure or config.allow_insecure_test_validators
    from atls_core.cli_common import pinned_policy
    from atls_core.policy import Policy

    policy = pinned_policy(policy or Policy(), references, allow_any)
    selected = select_validator(
        validator_id,
        policy=policy,
        settings=settings,
        allow_insecure=allow_insecure,
        pki=pki,
        manager=manager_for(config) if config is not None else None,
    )
    return ATLSContext.for_validator(selected)


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def _fail(args: argparse.Namespace, error: BaseException, code: int) -> int:
    from atls_core.report import render_error

    if getattr(args, "json", False):
        document: dict[str, Any] = {"accepted": False, "error": _error_dict(error)}
        result = getattr(error, "result", None)
        if result is not None:
            document["result"] = result.to_dict()
        _print_json(document)
    else:
        result = getattr(error, "result", None)
        if result is not None:
            from atls_core.report import render_result

            print(render_result(result))
        print(render_error(error), file=sys.stderr)
    return code


def _error_dict(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ATLSError):
        return {"check": error.check, "message": error.reason, "type": type(error).__name__}
    return {"check": "network", "message": str(error), "type": type(error).__name__}


def run(args: argparse.Namespace) -> int:
    """Connect to ``args.url``, appraise, print the report; 0 only when accepted."""
    from atls_core.report import render_result

    try:
        host, port = _target(str(args.url))
        context = _context(args, host)
    except ATLSError as error:
        return _fail(args, error, EXIT_USAGE)
    except OSError as error:  # an unreadable configuration file
        return _fail(args, error, EXIT_USAGE)
    timeout = float(getattr(args, "timeout", None) or 10.0)  # the command line's default
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        unreachable = ATLSError(f"cannot connect to {host}:{port}: {reason}", check="network")
        return _fail(args, unreachable, EXIT_UNREACHABLE)
    try:
        with context.wrap_socket(raw, server_hostname=host) as connection:
            result = connection.attestation_result
    except ATLSVerificationError as error:
        if error.check == "tls.appraisal.internal":
            raise  # a validator's bug, not a verdict: the command reports it as one
        configuration = isinstance(error.cause, _CONFIGURATION_ERRORS)
        return _fail(args, error, EXIT_USAGE if configuration else EXIT_REJECTED)
    except ATLSError as error:
        return _fail(args, error, EXIT_REJECTED)
    except OSError as error:  # TLS alerts, resets, timeouts
        return _fail(args, error, EXIT_UNREACHABLE)
    finally:
        raw.close()
    if result is None:  # pragma: no cover - wrap_socket appraises or raises
        return _fail(args, ATLSError("no attestation result", check="verify"), EXIT_REJECTED)
    if getattr(args, "json", False):
        _print_json(result.to_dict())
    else:
        print(render_result(result))
    return EXIT_ACCEPTED if result.accepted else EXIT_REJECTED

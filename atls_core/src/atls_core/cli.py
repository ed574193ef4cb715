"""The ``atls`` command line.

``atls plugins``          what is installed and whether it loads;
``atls verify-evidence``  offline appraisal of recorded evidence at a fixed time;
``atls verify``           connect to a server and appraise it (``verify_command``);
``atls inspect``          decode evidence, unverified, to see what a refused server sent;
``atls config check``     check a configuration file against the installed plugins;
``atls demo``             the local end-to-end demo (``demo``).

Expected failures (rejections, configuration and plugin problems, unreadable
files) print one line on stderr and exit non-zero; a traceback would bury the
failing check.  Exit codes: 0 accepted, 1 rejected, 2 usage / configuration /
plugin errors, 3 undecided (collateral or key service unreachable), 70 an
internal error (a bug: rerun with ``--traceback``).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from atls_core._version import __version__
from atls_core.cli_common import (
    EXIT_ACCEPTED,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_REJECTED,
    EXIT_UNDECIDED,
    EXIT_USAGE,
    UsageExit,
    pinned_policy,
)
from atls_core.errors import (
    ATLSError,
    CollateralUnavailable,
    ConfigurationError,
    DuplicateRegistration,
    MalformedEvidence,
    PluginLoadError,
    PluginNotFound,
    StaleEvidence,
    did_you_mean,
)
from atls_core.interfaces import CliOption
from atls_core.registry import PluginManager, PluginStatus, default_manager
from atls_core.report import render_error, render_result, safe_text

if TYPE_CHECKING:  # `atls plugins` needs neither: argparse and the policy load when used
    import argparse

    from atls_core.certificate import PeerCertificate
    from atls_core.config import ATLSConfig, HostRule
    from atls_core.policy import Policy

__all__ = [
    "EXIT_ACCEPTED",
    "EXIT_INTERNAL",
    "EXIT_REJECTED",
    "EXIT_UNDECIDED",
    "EXIT_USAGE",
    "main",
]

MAX_EVIDENCE_BYTES = 64 * 1024 * 1024
"""Recorded evidence (quotes, tokens, event logs) is far smaller; refuse to slurp a disk image."""

_USAGE_ERRORS = (ConfigurationError, PluginNotFound, PluginLoadError, DuplicateRegistration)
_PLUGINS_FORMS = {
    ("plugins",): False,
    ("plugins", "--json"): True,
    ("--traceback", "plugins"): False,
    ("--traceback", "plugins", "--json"): True,
}
"""``atls plugins`` as typed, and whether it asks for JSON: read without building a parser."""


def _plugin_options(manager: PluginManager, validator_id: str) -> list[CliOption]:
    """Second phase input: the selected validator's extra flags (checked at registration)."""
    return manager.cli_options(validator_id)


# -- atls plugins -----------------------------------------------------------------------------


def _status_word(status: PluginStatus) -> str:
    if status.disabled:
        return "disabled"
    return "ok" if status.loaded else "broken"


def _plugins_json(statuses: Sequence[PluginStatus]) -> dict[str, Any]:
    return {
        "atls_core": __version__,
        "plugins": [
            {
                "name": s.info.name,
                "distribution": s.info.distribution,
                "version": s.info.version,
                "entry_point": s.info.value,
                "status": _status_word(s),
                "error": s.error,
                "validators": [
                    {
                        "id": v.id,
                        "media_types": list(v.media_types),
                        "oids": list(v.oids),
                        "transport": v.transport.value,
                        "binding_scheme": v.binding_scheme,
                        "binding_schemes": list(v.binding_schemes),
                        "tee_type": v.tee_type,
                        "insecure": v.insecure,
                        "plugin_version": s.info.version,
                        "scheme_version": v.scheme_version,
                        "description": v.description,
                        "settings": list(v.settings),
                        "measurements": list(v.measurements),
                        "workload_identity": list(v.workload_identity),
                        "pinning_options": list(v.pinning_options),
                        "policy_options": list(v.policy_options),
                    }
                    for v in s.validators
                ],
                "issuers": [
                    {
                        "id": i.id,
                        "validator_id": i.validator_id,
                        "media_type": i.media_type,
                        "oid": i.oid,
                        "transport": i.transport.value,
                        "binding_scheme": i.binding_scheme,
                        "insecure": i.insecure,
                        "plugin_version": s.info.version,
                    }
                    for i in s.issuers
                ],
            }
            for s in statuses
        ],
    }


def _plugins_text(statuses: Sequence[PluginStatus]) -> str:
    lines: list[str] = []
    by_distribution: dict[tuple[str, str], list[PluginStatus]] = {("atls-core", __version__): []}
    for status in statuses:
        key = (status.info.distribution, status.info.version)
        by_distribution.setdefault(key, []).append(status)
    for (distribution, version), group in by_distribution.items():
        lines.append(f"{safe_text(distribution)} {safe_text(version)}")
        for s in group:
            head = f"  plugin {safe_text(s.info.name)} ({safe_text(s.info.value)}): "
            if s.disabled:
                lines.append(head + "disabled")
                continue
            if not s.loaded:
                lines.append(head + "BROKEN: " + safe_text(" ".join((s.error or "").split())))
                continue
            lines.append(head + "ok")
            for v in s.validators:
                flag = " [INSECURE: test only]" if v.insecure else ""
                lines.append(f"    validator {v.id}{flag}")
                if v.description:  # what it appraises, in the plugin's words
                    lines.append(f"      {safe_text(v.description)}")
                lines.append(
                    f"      transport {v.transport.value}, binding {v.binding_scheme}, "
                    f"tee {v.tee_type}"
                )
                lines.append(f"      media types: {', '.join(v.media_types)}")
                ways = ", ".join(v.ways_to_pin) or "(nothing: allow_any_workload)"
                lines.append(f"      pin with: {ways}")
                for label, values in (
                    ("oids", v.oids),
                    ("settings", v.settings),
                    ("measurements", v.measurements),
                    ("policy options", v.policy_options),
                ):
                    if values:
                        lines.append(f"      {label}: {', '.join(values)}")
            for i in s.issuers:
                flag = " [INSECURE: test only]" if i.insecure else ""
                lines.append(f"    issuer {i.id} -> {i.validator_id}{flag}")
    return "\n".join(lines)


def _cmd_plugins(manager: PluginManager, out: TextIO, *, as_json: bool) -> int:
    statuses = manager.load_all()
    if as_json:
        out.write(json.dumps(_plugins_json(statuses), indent=2) + "\n")
    else:
        out.write(_plugins_text(statuses) + "\n")
    # A broken plugin fails a deployment check; a disabled one is the configuration's choice.
    broken = any(not s.loaded and not s.disabled for s in statuses)
    return EXIT_USAGE if broken else EXIT_ACCEPTED


# -- atls verify-evidence -------------------------------------------------------------------


def _read_evidence(name: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_EVIDENCE_BYTES + 1)
    else:
        with open(name, "rb") as handle:
            data = handle.read(MAX_EVIDENCE_BYTES + 1)
    if len(data) > MAX_EVIDENCE_BYTES:
        raise ConfigurationError(
            f"{name}: evidence file is larger than {MAX_EVIDENCE_BYTES} bytes",
            check="cli.evidence_size",
        )
    return data


def _load_policy(path: str | None) -> Policy:
    import tomllib
    from pathlib import Path

    from atls_core.policy import Policy

    if path is None:
        return Policy()
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read policy file {path}: {exc.strerror}", check="config.file"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: invalid TOML: {exc}", check="config.file") from None
    if "hosts" in data:  # a whole configuration: its policies are per host rule
        raise ConfigurationError(
            f"{path}: --policy takes a bare policy table (its keys at the file's top level), and "
            "this is a configuration with [hosts]; pass it as --config FILE [--host NAME]",
            check="config.policy",
        )
    if isinstance(data.get("policy"), dict):  # a host rule's [policy] table, copied whole
        raise ConfigurationError(
            f"{path}: a policy file holds the policy's keys at its top level; remove the "
            "[policy] header (and the prefix of its sub-tables)",
            check="config.policy",
        )
    return Policy.from_mapping(data, where=path)


def _cmd_verify_evidence(
    args: argparse.Namespace,
    manager: PluginManager,
    dests: dict[str, str],
    out: TextIO,
    err: TextIO,
) -> int:
    import datetime as dt

    from atls_core.binding import BindingContext
    from atls_core.clock import FixedClock
    from atls_core.errors import AppraisalFailed
    from atls_core.selection import select_validator

    at: dt.datetime = args.at if args.at is not None else dt.datetime.now(dt.UTC)
    configured = _configured_rule(args.config, args.host, args.validator, manager)
    rule, allowed = None, False
    if configured is not None:
        from atls_core.selection import manager_for

        rule, config = configured
        allowed = config.allow_insecure_test_validators
        # The file's disabled plugins are refused here as online: hand-overs included.
        manager = manager_for(config, manager)
    settings = dict(rule.settings) if rule is not None else {}
    settings.update(  # a flag overrides the configured setting
        (setting, getattr(args, dest))
        for dest, setting in dests.items()
        if getattr(args, dest) is not None
    )
    allow_insecure = args.allow_insecure or allowed
    if manager.validator_spec(args.validator).insecure and not allow_insecure:
        raise ConfigurationError(
            f"{args.validator} is an insecure test validator: its evidence proves nothing; "
            "pass --allow-insecure to appraise it anyway",
            check="config.insecure",
        )
    base = rule.policy if rule is not None and args.policy is None else _load_policy(args.policy)
    policy = pinned_policy(base, args.reference, args.allow_any_workload)
    try:
        selected = select_validator(
            args.validator,
            policy=policy,
            settings=settings,
            allow_insecure=allow_insecure,
            manager=manager,
            where=rule.where if rule is not None else "atls verify-evidence",
        )
    except ConfigurationError as error:
        raise _named_by_flag(error, manager.cli_options(args.validator)) from None
    data = _read_evidence(args.file)
    name = "<stdin>" if args.file == "-" else args.file
    try:
        evidence = selected.validator.evidence_from_file(data, name=name)
        result = selected.appraise(
            evidence, binding=BindingContext.offline_context(), clock=FixedClock(at)
        )
    except ATLSError as error:
        if args.json:
            out.write(json.dumps({"accepted": False, "error": _error_json(error)}, indent=2) + "\n")
        if args.at is None and isinstance(error, StaleEvidence):
            err.write(render_error(error) + "\n" + _AT_HINT + "\n")
            return _exit_code(error)
        raise
    out.write((result.to_json() if args.json else render_result(result)) + "\n")
    if result.accepted:
        return EXIT_ACCEPTED
    try:
        result.raise_for_status()
    except AppraisalFailed as failure:
        err.write(render_error(failure) + "\n")
    return EXIT_REJECTED


def _configured_rule(
    path: str | None, host: str | None, validator: str, manager: PluginManager
) -> tuple[HostRule, ATLSConfig] | None:
    """The host rule of ``--config`` that gives ``validator`` its settings and policy (the
    rule for ``--host``, else the first naming the validator), and the configuration.

    A validator whose required setting has no command-line flag is usable offline only so;
    the rest of the file is not checked (it may name plugins not installed here).
    """
    if path is None:
        if host is not None:
            raise ConfigurationError("--host names a rule of --config FILE", check="cli.host")
        return None
    from atls_core.config import ATLSConfig

    config = ATLSConfig.load(path, check=False, manager=manager)
    if host is not None:
        rule = config.rule_for(host)
        if rule.validator != validator:
            raise ConfigurationError(
                f"{rule.where} uses validator {rule.validator}, not --validator {validator}",
                check="cli.host",
                expected=validator,
                actual=rule.validator,
            )
        return rule, config
    for rule in config.hosts:
        if rule.validator == validator:
            return rule, config
    raise ConfigurationError(
        f"{path}: no host rule uses validator {validator}",
        check="cli.host",
        expected=validator,
        actual=sorted({r.validator for r in config.hosts}),
    )


_AT_HINT = (
    "atls: hint: evidence or collateral recorded earlier is appraised at the time it was "
    "recorded with --at (unix seconds or ISO 8601)"
)


def _named_by_flag(error: ConfigurationError, options: list[CliOption]) -> ConfigurationError:
    """``error`` with each setting it names followed by the flag that sets it here.

    Settings and flags are named apart (``root_ca`` is ``--root``): a refusal that
    names only the setting leaves the user to guess the switch.
    """
    reason = error.reason
    for option in options:
        named = f"settings.{option.setting}"
        reason = re.sub(re.escape(named) + r"\b", f"{named} ({option.flag})", reason)
    if reason == error.reason:
        return error
    return ConfigurationError(
        reason, check=error.check, expected=error.expected, actual=error.actual
    )


def _error_json(error: ATLSError) -> dict[str, Any]:
    from atls_core.result import _jsonable

    return {
        "type": type(error).__name__,
        "check": error.check,
        "message": error.reason,
        "expected": _jsonable(error.expected),
        "actual": _jsonable(error.actual),
    }


# -- atls inspect ------------------------------------------------------------------------------

# Patterns, compiled by ``re`` when `atls inspect` first uses them (not at every command's start).
_PEM_CERTIFICATE = rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----"
_COMPACT_JWS = r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z"


def _file_certificate(data: bytes) -> PeerCertificate | None:
    """The certificate a PEM file holds, or the file itself when it reads as a DER certificate.

    None means "not a certificate": the evidence readers get the file.  The first byte
    alone decides nothing: a DER certificate starts with 0x30, but so do ASCII ``0`` (every
    hex-encoded quote) and DER evidence envelopes.
    """
    from atls_core.certificate import PeerCertificate

    der = _pem_certificate_der(data)
    if der is None:
        if data[:1] != b"\x30":
            return None
        try:
            return PeerCertificate.from_der(data)
        except MalformedEvidence:
            return None
    try:
        return PeerCertificate.from_der(der)
    except MalformedEvidence as error:  # unreadable input is a usage error (2), not a refusal
        raise ConfigurationError(
            f"the PEM certificate cannot be read: {error.reason}", check="inspect.certificate"
        ) from None


def _pem_certificate_der(data: bytes) -> bytes | None:
    """The first certificate's DER when the file is PEM, else None."""
    import base64
    import binascii

    # quotes embed PEM chains: not a file of one
    match = re.match(_PEM_CERTIFICATE, data.lstrip(), re.DOTALL)
    if match is None:
        return None
    try:
        return base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "the PEM certificate is not valid base64", check="inspect.certificate"
        ) from None


def _certificate_facts(
    certificate: PeerCertificate, readers: dict[str, list[str]]
) -> dict[str, Any]:
    """What the certificate itself says, and which installed validator reads each extension."""
    from cryptography import x509

    from atls_core.binding import key_digest

    facts: dict[str, Any] = {
        "sha256": certificate.digest,
        "key_sha256": key_digest(certificate.spki_der),
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
    }
    try:
        parsed = x509.load_der_x509_certificate(certificate.der)
        facts["subject"] = parsed.subject.rfc4514_string()
        facts["issuer"] = parsed.issuer.rfc4514_string()
    except ValueError:
        pass  # atls' own reader parsed it; cryptography refuses some TEE certificates
    facts["extensions"] = [
        {
            "oid": oid,
            "critical": extension.critical,
            "bytes": len(extension.value),
            "read_by": ", ".join(readers.get(oid, ())) or "-",
        }
        for oid, extension in certificate.extensions.items()
    ]
    return facts


def _token_view(data: bytes) -> dict[str, Any] | None:
    """A compact JWS's header and claims, decoded only (for tokens no built validator read)."""
    from atls_core.jose import b64url_decode

    try:
        text = data.strip().decode("ascii")
    except UnicodeDecodeError:
        return None
    if not re.match(_COMPACT_JWS, text):
        return None
    head, body, _signature = text.split(".")
    try:
        header = json.loads(b64url_decode(head, check="inspect.token"))
        claims = json.loads(b64url_decode(body, check="inspect.token"))
    except (ATLSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return {
        "format": "compact JWS: signature NOT verified, issuer NOT checked",
        "header": header,
        "claims": claims,
    }


def _inspect_settings(path: str | None) -> dict[str, Any]:
    """Settings per validator id from a configuration file (first rule naming it wins)."""
    if path is None:
        return {}
    from atls_core.config import ATLSConfig

    found: dict[str, Any] = {}
    for rule in ATLSConfig.load(path, check=False).hosts:
        found.setdefault(rule.validator, rule.settings)
    return found


def _json_ready(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def _cmd_inspect(args: argparse.Namespace, manager: PluginManager, out: TextIO, err: TextIO) -> int:
    from atls_core.report import UNVERIFIED_NOTICE, render_inspection

    data = _read_evidence(args.file)
    name = "<stdin>" if args.file == "-" else args.file
    settings = _inspect_settings(args.config)
    not_decoded: list[dict[str, str]] = []
    specs = []
    for status in manager.load_all():
        if not status.loaded and not status.disabled:
            not_decoded.append({"validator": f"plugin {status.info.name}", "reason": "broken"})
        specs += list(status.validators)
    readers: dict[str, list[str]] = {}
    for spec in specs:
        for oid in spec.oids:
            readers.setdefault(oid, []).append(spec.id)
    certificate = _file_certificate(data)
    if args.validator is not None:
        specs = [manager.validator_spec(args.validator)]
    elif certificate is not None:
        specs = [s for s in specs if set(s.oids) & set(certificate.extensions)]
    decoded: list[dict[str, Any]] = []
    for spec in specs:
        try:
            _spec, factory, _plugin = manager.validator_factory(spec.id)
            validator = factory(settings.get(spec.id, {}))
        except ATLSError as error:
            reason = f"not built ({error.reason}); give its settings with --config"
            not_decoded.append({"validator": spec.id, "reason": reason})
            continue
        describe = getattr(validator, "describe", None)
        try:
            if not callable(describe):
                raise ConfigurationError("cannot describe evidence", check="inspect.unsupported")
            evidence = (
                validator.evidence_from_certificate(certificate)
                if certificate is not None
                else validator.evidence_from_file(data, name=name)
            )
            description = dict(describe(evidence))
        except ATLSError as error:
            not_decoded.append({"validator": spec.id, "reason": f"{error.check}: {error.reason}"})
            continue
        same = next((d for d in decoded if d["description"] == description), None)
        if same is not None:
            same["validators"].append(spec.id)
        else:
            decoded.append({"validators": [spec.id], "description": description})
    document: dict[str, Any] = {"file": name, "unverified": True, "notice": UNVERIFIED_NOTICE}
    if certificate is not None:
        document["certificate"] = _certificate_facts(certificate, readers)
    elif not decoded and (token := _token_view(data)) is not None:
        document["token"] = token
    document["decoded"] = decoded
    document["not_decoded"] = not_decoded
    if args.json:
        out.write(json.dumps(document, indent=2, default=_json_ready) + "\n")
    else:
        out.write(render_inspection(document) + "\n")
    if decoded or certificate is not None or "token" in document:
        return EXIT_ACCEPTED
    err.write(f"atls: inspect: no installed validator decodes {safe_text(name)}\n")
    return EXIT_USAGE


# -- commands owned elsewhere --------------------------------------------------------------


def _lazy(module: str) -> Any:
    """Import a command module owned elsewhere; a missing piece is one line, not a traceback."""
    command = module.removesuffix("_command")
    try:
        return importlib.import_module(f"atls_core.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"atls_core.{module}":
            raise ConfigurationError(
                f"`atls {command}` is not available in this installation ({exc.name} is missing)",
                check="cli.unavailable",
            ) from None
        extra = {"requests": "requests", "urllib3": "requests", "httpx": "httpx"}.get(
            (exc.name or "").partition(".")[0]
        )
        hint = f"; install atls-core[{extra}]" if extra else ""
        raise ConfigurationError(
            f"`atls {command}` needs {exc.name}, which is not installed{hint}",
            check="cli.dependency",
        ) from None


def _cmd_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from atls_core.config import ATLSConfig

    if args.config_command != "check":
        err.write("atls: give a subcommand: atls config check FILE\n")
        return EXIT_USAGE
    config = ATLSConfig.load(args.file, check=False)
    manager = default_manager()
    problems = _rule_problems(config, manager)
    if problems:  # every rule's, not only the first: one run finds every typo
        err.write("".join(render_error(problem) + "\n" for problem in problems))
        return EXIT_USAGE
    lines, unpinned = [], []
    for rule in config.hosts:
        policy = rule.policy
        spec = manager.validator_spec(rule.validator)
        pins = spec.pins_in(policy)
        pinned = (
            "ANY WORKLOAD (allow_any_workload)"
            if policy.allow_any_workload
            else "pins " + ", ".join(pins)
            if pins
            else "pins nothing"
        )
        if not pins and not policy.allow_any_workload:
            unpinned.append(f"{rule.where}: pin one of {', '.join(spec.ways_to_pin)}")
        lines.append(
            f"  {safe_text(rule.pattern)}: {safe_text(rule.validator)}, policy "
            f"{safe_text(policy.id)} ({pinned})\n"
        )
    installed = {info.name for info in manager.available()}
    for name in sorted(set(config.disable_plugins) - installed):
        err.write(
            f"atls: warning: atls.disable_plugins names {safe_text(name)!r}, which is no "
            f"installed plugin{did_you_mean(name, installed)} (installed: "
            f"{', '.join(sorted(installed))})\n"
        )
    if unpinned:
        # The appraisal's pinning rule refuses every connection of such a rule.
        err.write(
            f"atls: {safe_text(args.file)}: workload.unpinned: every connection would be "
            "refused, because a policy pins no workload identity (or set "
            "allow_any_workload = true to explore):\n"
            + "".join(f"  {safe_text(line)}\n" for line in unpinned)
        )
        return EXIT_USAGE
    out.write(f"{safe_text(args.file)}: ok\n" + "".join(lines))
    return EXIT_ACCEPTED


def _rule_problems(config: ATLSConfig, manager: PluginManager) -> list[ATLSError]:
    """Each host rule's mistake: its names checked against the spec, then its validator
    built as ``ATLSContext(config)`` builds it (a setting's value is refused there)."""
    from atls_core.selection import validator_for_rule

    problems: list[ATLSError] = []
    for rule in config.hosts:
        try:
            config.check_rule(rule, manager)
            validator_for_rule(config, rule, manager=manager)
        except ATLSError as error:
            problems.append(error)
    return problems


def _cmd_verify(args: argparse.Namespace) -> int:
    status: int = _lazy("verify_command").run(args)
    return status


def _cmd_demo() -> int:
    status: int = _lazy("demo").run()
    return status


# -- entry point ----------------------------------------------------------------------------


def _culprit(error: BaseException) -> str:
    """``" in plugin atls-tdx 0.2.0 (atls_tdx.dcap.verifier)"`` for the deepest plugin frame."""
    import importlib.metadata as md

    plugins: dict[str, tuple[str, str]] = {}
    for ep in md.entry_points(group="atls"):
        top = ep.value.partition(":")[0].partition(".")[0]
        if ep.dist is not None and top != "atls_core":
            plugins[top] = (ep.dist.metadata["Name"], ep.dist.version)
    for top, names in md.packages_distributions().items():
        if top.startswith("atls_") and top != "atls_core" and top not in plugins and names:
            plugins[top] = (names[0], md.version(names[0]))  # support distributions (atls-dcap)
    traceback = error.__traceback__
    found = ""
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        owner = plugins.get(module.partition(".")[0])
        if owner is not None:
            found = f" in plugin {owner[0]} {owner[1]} ({module})"
        traceback = traceback.tb_next
    return found


_REPORT_IT = " (rerun with --traceback and report it)\n"


def _defect_behind(error: BaseException) -> BaseException | None:
    """The bug a live refusal wraps: a validator's bare exception during appraisal.

    The TLS layer refuses such a connection (fail closed) with an ``ssl`` error,
    check ``tls.appraisal.internal``, whose cause is the plugin's exception; the
    command reports it as the internal error it is.  (Other errors with a cause,
    such as a plugin that fails to import, are verdicts on the installation: exit 2.)
    """
    if getattr(error, "check", None) != "tls.appraisal.internal":
        return None
    return error.__cause__


def _exit_code(error: BaseException) -> int:
    cause: BaseException | None = error
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # evidence handed to a missing plugin
        if isinstance(cause, _USAGE_ERRORS):
            return EXIT_USAGE
        seen.add(id(cause))
        cause = cause.__cause__
    if isinstance(error, CollateralUnavailable):
        return EXIT_UNDECIDED
    if isinstance(error, ATLSError):
        return EXIT_REJECTED
    return EXIT_USAGE  # OSError: an unreadable file or an unwritable output


def main(argv: Sequence[str] | None = None, *, manager: PluginManager | None = None) -> int:
    """Run the ``atls`` command; returns the exit status (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    out, err = sys.stdout, sys.stderr
    show_traceback = "--traceback" in arguments
    try:
        try:
            as_json = _PLUGINS_FORMS.get(tuple(arguments))
            if as_json is not None:
                return _cmd_plugins(manager or default_manager(), out, as_json=as_json)
            from atls_core.cli_parser import build_parser, validator_argument

            plugin_options: list[CliOption] = []
            command = next((a for a in arguments if not a.startswith("-")), None)
            manager = manager or (default_manager() if command == "verify-evidence" else None)
            if command == "verify-evidence":
                validator_id = validator_argument(arguments)
                if validator_id is not None and manager is not None:
                    plugin_options = _plugin_options(manager, validator_id)
            parser, dests = build_parser(plugin_options)
            args = parser.parse_args(arguments)
            if args.command is None:
                parser.print_help(err)
                return EXIT_USAGE
            if args.command == "plugins":
                return _cmd_plugins(manager or default_manager(), out, as_json=args.json)
            if args.command == "verify-evidence":
                return _cmd_verify_evidence(args, manager or default_manager(), dests, out, err)
            if args.command == "verify":
                return _cmd_verify(args)
            if args.command == "config":
                return _cmd_config(args, out, err)
            if args.command == "inspect":
                return _cmd_inspect(args, manager or default_manager(), out, err)
            return _cmd_demo()
        except UsageExit as usage:
            return usage.status
        except BrokenPipeError:
            raise
        except (ATLSError, OSError) as error:
            defect = _defect_behind(error)
            if defect is None:
                err.write(render_error(error) + "\n")
                return _exit_code(error)
            if show_traceback:
                raise
            err.write(render_error(error) + _culprit(defect) + _REPORT_IT)
            return EXIT_INTERNAL
    except KeyboardInterrupt:
        err.write("atls: interrupted\n")
        return 130
    except BrokenPipeError:
        # `atls ... | head -1`: the reader went away; say nothing more, as Unix tools do.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:
        if show_traceback:
            raise
        err.write(
            render_error(error).replace("atls: ", "atls: internal error: ", 1)
            + _culprit(error)
            + _REPORT_IT
        )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    # run the importable module's main: cli_parser raises ``atls_core.cli.UsageExit``, which
    # this ``__main__`` copy of the module would not catch as its own
    from atls_core.cli import main as _main

    sys.exit(_main())

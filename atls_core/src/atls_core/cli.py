"""The ``atls`` command line.

``atls plugins``          what is installed and whether it loads;
``atls verify-evidence``  offline appraisal of recorded evidence at a fixed time;
``atls verify``           connect to a server and appraise it (``verify_command``);
``atls demo``             the local end-to-end demo (``demo``).

Expected failures (rejections, configuration and plugin problems, unreadable
files) print one line on stderr and exit non-zero; a traceback would bury the
failing check.  Exit codes: 0 accepted, 1 rejected, 2 usage / configuration /
plugin errors, 3 undecided (collateral or key service unreachable), 70 an
internal error (a bug: rerun with ``--traceback``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from atls_core._version import __version__
from atls_core.errors import (
    ATLSError,
    CollateralUnavailable,
    ConfigurationError,
    DuplicateRegistration,
    PluginLoadError,
    PluginNotFound,
)
from atls_core.interfaces import CliOption
from atls_core.policy import Policy
from atls_core.registry import PluginManager, PluginStatus, default_manager
from atls_core.report import render_error, render_result, safe_text

__all__ = [
    "EXIT_ACCEPTED",
    "EXIT_INTERNAL",
    "EXIT_REJECTED",
    "EXIT_UNDECIDED",
    "EXIT_USAGE",
    "main",
]

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNDECIDED = 3
EXIT_INTERNAL = 70

MAX_EVIDENCE_BYTES = 64 * 1024 * 1024
"""Recorded evidence (quotes, tokens, event logs) is far smaller; refuse to slurp a disk image."""

_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*\Z")
_USAGE_ERRORS = (ConfigurationError, PluginNotFound, PluginLoadError, DuplicateRegistration)


class _UsageError(Exception):
    """argparse wanted to exit: carry its status instead of leaving the process."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports through :class:`_UsageError` (``main`` returns ints)."""

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            sys.stderr.write(message)
        raise _UsageError(status)

    def error(self, message: str) -> Any:
        sys.stderr.write(f"atls: usage: {' '.join(message.split())} (see `{self.prog} --help`)\n")
        raise _UsageError(EXIT_USAGE)


# -- argument parsing ---------------------------------------------------------------------


def _time_argument(text: str) -> dt.datetime:
    from atls_core.clock import parse_time

    try:
        return parse_time(text)
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither Unix seconds nor an ISO-8601 time"
        ) from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("the timeout must be a positive number of seconds")
    return value


def _build_parser(plugin_options: Sequence[CliOption] = ()) -> tuple[_Parser, dict[str, str]]:
    """The full parser; ``plugin_options`` come from the selected validator's plugin.

    Returns the parser and ``{argparse dest: setting name}`` for the plugin options.
    """
    parser = _Parser(
        prog="atls",
        description="Attested TLS: appraise TEE attestation evidence bound to TLS keys.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"atls-core {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show a traceback for internal errors (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins, their validators and issuers, and load status",
        description="Load every installed plugin and report what it provides or why it fails.",
        allow_abbrev=False,
    )
    plugins.add_argument("--json", action="store_true", help="print JSON")

    offline = commands.add_parser(
        "verify-evidence",
        help="appraise recorded evidence offline at a fixed time",
        description=(
            "Appraise evidence read from FILE ('-' for stdin) with a fixed clock. Everything "
            "except the TLS binding is checked; the result says 'unbound'. Validator-specific "
            "options are listed by `atls verify-evidence --validator ID --help`."
        ),
        allow_abbrev=False,
    )
    offline.add_argument("file", metavar="FILE", help="evidence file, or '-' for stdin")
    offline.add_argument("--validator", required=True, metavar="ID", help="e.g. tdx.dcap")
    offline.add_argument(
        "--at",
        type=_time_argument,
        metavar="TIME",
        help="appraisal time: Unix seconds or ISO-8601 (default: now)",
    )
    offline.add_argument(
        "--policy", metavar="FILE", help="TOML file whose top level is a policy table"
    )
    offline.add_argument("--json", action="store_true", help="print the result as JSON")
    offline.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow insecure test validators (the simulated TEE)",
    )
    dests: dict[str, str] = {}
    if plugin_options:
        group = offline.add_argument_group("options of the selected validator")
        for index, option in enumerate(plugin_options):
            dest = f"plugin_option_{index}"
            try:
                group.add_argument(
                    option.flag,
                    dest=dest,
                    metavar=option.metavar,
                    help=option.help,
                    action="append" if option.multiple else "store",
                )
            except argparse.ArgumentError as exc:
                raise PluginLoadError(
                    f"plugin option {option.flag} clashes with another option: {exc}",
                    check="plugins.cli_options",
                    actual=option.flag,
                ) from None
            dests[dest] = option.setting

    verify = commands.add_parser(
        "verify",
        help="connect to an attested server and appraise it",
        description="Connect to URL, appraise the server's attestation and print the result.",
        allow_abbrev=False,
    )
    verify.add_argument("url", metavar="URL")
    verify.add_argument("--config", metavar="FILE", help="atls configuration (TOML)")
    verify.add_argument("--validator", metavar="ID", help="validator id (instead of --config)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow insecure test validators (the simulated TEE)",
    )
    verify.add_argument(
        "--timeout", type=_positive_seconds, default=10.0, metavar="S", help="seconds (10)"
    )

    commands.add_parser(
        "demo",
        help="run the local demo (simulated TEE, three clients, a rejection)",
        description="A local attested server, three HTTP clients and a rejection.",
        allow_abbrev=False,
    )
    return parser, dests


def _validator_argument(argv: Sequence[str]) -> str | None:
    """First parsing phase: find ``--validator`` without knowing the plugin options."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--validator")
    known, _ = pre.parse_known_args(list(argv))
    value: str | None = known.validator
    return value


def _plugin_options(manager: PluginManager, validator_id: str) -> list[CliOption]:
    """Second phase input: the selected validator's extra flags, checked before use."""
    spec = manager.validator_spec(validator_id)
    options = manager.cli_options(validator_id)
    for option in options:
        if not isinstance(option, CliOption) or not _FLAG.match(option.flag):
            raise PluginLoadError(
                f"{validator_id} declares an invalid verify-evidence option",
                check="plugins.cli_options",
                expected="CliOption with a --long-flag",
                actual=repr(option),
            )
        if option.setting not in spec.settings:
            raise PluginLoadError(
                f"{validator_id} option {option.flag} maps to an undeclared setting",
                check="plugins.cli_options",
                expected=sorted(spec.settings),
                actual=option.setting,
            )
    return options


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
                        "tee_type": v.tee_type,
                        "insecure": v.insecure,
                        "plugin_version": v.plugin_version,
                        "scheme_version": v.scheme_version,
                        "description": v.description,
                        "settings": list(v.settings),
                        "measurements": list(v.measurements),
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
                        "plugin_version": i.plugin_version,
                    }
                    for i in s.issuers
                ],
            }
            for s in statuses
        ],
    }


def _plugins_text(statuses: Sequence[PluginStatus]) -> str:
    lines = [f"atls-core {__version__}"]
    by_distribution: dict[tuple[str, str], list[PluginStatus]] = {}
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
                lines.append(
                    f"      transport {v.transport.value}, binding {v.binding_scheme}, "
                    f"tee {v.tee_type}"
                )
                lines.append(f"      media types: {', '.join(v.media_types)}")
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


def _cmd_plugins(args: argparse.Namespace, manager: PluginManager, out: TextIO) -> int:
    statuses = manager.load_all()
    if args.json:
        out.write(json.dumps(_plugins_json(statuses), indent=2) + "\n")
    else:
        out.write(_plugins_text(statuses) + "\n")
    return EXIT_ACCEPTED


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
    return Policy.from_mapping(data, where=path)


def _cmd_verify_evidence(
    args: argparse.Namespace,
    manager: PluginManager,
    dests: dict[str, str],
    out: TextIO,
    err: TextIO,
) -> int:
    from atls_core.binding import BindingContext
    from atls_core.clock import FixedClock
    from atls_core.errors import AppraisalFailed
    from atls_core.selection import select_validator

    at: dt.datetime = args.at if args.at is not None else dt.datetime.now(dt.UTC)
    settings = {
        setting: getattr(args, dest)
        for dest, setting in dests.items()
        if getattr(args, dest) is not None
    }
    if manager.validator_spec(args.validator).insecure and not args.allow_insecure:
        raise ConfigurationError(
            f"{args.validator} is an insecure test validator: its evidence proves nothing; "
            "pass --allow-insecure to appraise it anyway",
            check="config.insecure",
        )
    policy = _load_policy(args.policy)
    selected = select_validator(
        args.validator,
        policy=policy,
        settings=settings,
        allow_insecure=args.allow_insecure,
        manager=manager,
        where="atls verify-evidence",
    )
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
        raise
    out.write((result.to_json() if args.json else render_result(result)) + "\n")
    if result.accepted:
        return EXIT_ACCEPTED
    try:
        result.raise_for_status()
    except AppraisalFailed as failure:
        err.write(render_error(failure) + "\n")
    return EXIT_REJECTED


def _error_json(error: ATLSError) -> dict[str, Any]:
    from atls_core.result import _jsonable

    return {
        "type": type(error).__name__,
        "check": error.check,
        "message": error.reason,
        "expected": _jsonable(error.expected),
        "actual": _jsonable(error.actual),
    }


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


def _cmd_verify(args: argparse.Namespace) -> int:
    status: int = _lazy("verify_command").run(args)
    return status


def _cmd_demo() -> int:
    status: int = _lazy("demo").run()
    return status


# -- entry point ----------------------------------------------------------------------------


def _exit_code(error: BaseException) -> int:
    if isinstance(error, _USAGE_ERRORS):
        return EXIT_USAGE
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
            plugin_options: list[CliOption] = []
            command = next((a for a in arguments if not a.startswith("-")), None)
            manager = manager or (default_manager() if command == "verify-evidence" else None)
            if command == "verify-evidence":
                validator_id = _validator_argument(arguments)
                if validator_id is not None and manager is not None:
                    plugin_options = _plugin_options(manager, validator_id)
            parser, dests = _build_parser(plugin_options)
            args = parser.parse_args(arguments)
            if args.command is None:
                parser.print_help(err)
                return EXIT_USAGE
            if args.command == "plugins":
                return _cmd_plugins(args, manager or default_manager(), out)
            if args.command == "verify-evidence":
                return _cmd_verify_evidence(args, manager or default_manager(), dests, out, err)
            if args.command == "verify":
                return _cmd_verify(args)
            return _cmd_demo()
        except _UsageError as usage:
            return usage.status
        except (ATLSError, OSError) as error:
            err.write(render_error(error) + "\n")
            return _exit_code(error)
    except KeyboardInterrupt:
        err.write("atls: interrupted\n")
        return 130
    except Exception as error:
        if show_traceback:
            raise
        err.write(
            render_error(error).replace("atls: ", "atls: internal error: ", 1)
            + " (rerun with --traceback and report it)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

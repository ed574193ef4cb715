"""The ``atls`` command's argument parser (argparse), imported only when a command needs it.

``atls plugins`` and ``atls plugins --json`` are read without it: argparse,
its help formatter (which imports ``shutil``) and the gettext look-ups of
building a parser cost a good share of that command's start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from atls_core._version import __version__
from atls_core.cli_common import EXIT_CODES_HELP, EXIT_USAGE, UsageExit
from atls_core.errors import PluginLoadError
from atls_core.interfaces import CliOption

__all__ = ["build_parser", "validator_argument"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports through :class:`UsageExit` (``main`` returns ints)."""

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            sys.stderr.write(message)
        raise UsageExit(status)

    def error(self, message: str) -> Any:
        sys.stderr.write(f"atls: usage: {' '.join(message.split())} (see `{self.prog} --help`)\n")
        raise UsageExit(EXIT_USAGE)


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


def build_parser(plugin_options: Sequence[CliOption] = ()) -> tuple[_Parser, dict[str, str]]:
    """The full parser; ``plugin_options`` come from the selected validator's plugin.

    Returns the parser and ``{argparse dest: setting name}`` for the plugin options.
    """
    parser = _Parser(
        prog="atls",
        description="Attested TLS: appraise TEE attestation evidence bound to TLS keys.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        description=(
            "Load every installed plugin and report what it provides or why it fails. "
            "Exit 0 when every plugin loads, 2 when one is broken."
        ),
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
    offline.add_argument(
        "--config",
        metavar="FILE",
        help="atls configuration: settings and policy (unless --policy) come from the host "
        "rule for --host, else from the first rule that names --validator; flags override",
    )
    offline.add_argument("--host", metavar="NAME", help="the host whose rule --config applies")
    offline.add_argument("--json", action="store_true", help="print the result as JSON")
    offline.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow insecure test validators (the simulated TEE)",
    )
    _add_pinning_arguments(offline)
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
                    type=_OPTION_TYPES[option.kind],
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
    _add_pinning_arguments(verify)

    inspect = commands.add_parser(
        "inspect",
        help="decode evidence (UNVERIFIED): what a server's certificate, quote or token says",
        description=(
            "Decode FILE ('-' for stdin) with every installed validator that can: a "
            "certificate (PEM or DER) by the extensions it carries, or a quote, attestation, "
            "event log or token. Prints structure and measurements, replays event logs; "
            "verifies NOTHING and appraises nothing. Run it first when a server is refused."
        ),
        allow_abbrev=False,
    )
    inspect.add_argument("file", metavar="FILE", help="evidence or certificate, '-' for stdin")
    inspect.add_argument("--validator", metavar="ID", help="decode with this validator only")
    inspect.add_argument(
        "--config",
        metavar="FILE",
        help="atls configuration: validators that need settings to be built take them "
        "from the first host rule that names them",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON")

    config = commands.add_parser(
        "config",
        help="work with configuration files",
        description="Configuration files: `atls config check FILE`.",
        allow_abbrev=False,
    )
    config_commands = config.add_subparsers(
        dest="config_command", metavar="SUBCOMMAND", parser_class=_Parser
    )
    check = config_commands.add_parser(
        "check",
        help="check a configuration file against the installed plugins",
        description=(
            "Load FILE as atls_core.ATLSConfig.load does, resolve every validator among the "
            "installed plugins and build it, so settings, policy options and reference values "
            "are checked. Exit 0 when it is usable, 2 with the first mistake otherwise."
        ),
        allow_abbrev=False,
    )
    check.add_argument("file", metavar="FILE", help="atls configuration (TOML)")

    commands.add_parser(
        "demo",
        help="run the local demo (simulated TEE, three clients, two refusals)",
        description="A local attested server, three HTTP clients and two refusals.",
        allow_abbrev=False,
    )
    return parser, dests


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


_OPTION_TYPES: dict[str, Any] = {"text": str, "number": _number, "integer": _integer}


def _add_pinning_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pinning the workload (the policy's reference values)")
    group.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="NAME=HEX",
        help="pin a measurement (repeatable; added to the policy file or configured policy, "
        "replacing a reference value of the same name)",
    )
    group.add_argument(
        "--allow-any-workload",
        action="store_true",
        help="accept evidence whose workload nothing pins (status warning; for exploring)",
    )


def validator_argument(argv: Sequence[str]) -> str | None:
    """First parsing phase: find ``--validator`` without knowing the plugin options."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--validator")
    known, _ = pre.parse_known_args(list(argv))
    value: str | None = known.validator
    return value

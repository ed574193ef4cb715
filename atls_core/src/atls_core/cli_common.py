"""What the ``atls`` command's modules share: exit codes, the usage exit, pins from flags.

Kept apart from :mod:`atls_core.cli` so the parser and ``atls verify`` can use
them without importing the command (no import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from atls_core.errors import ConfigurationError

if TYPE_CHECKING:
    from atls_core.policy import Policy

__all__ = [
    "EXIT_ACCEPTED",
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES_HELP",
    "EXIT_INTERNAL",
    "EXIT_REJECTED",
    "EXIT_UNDECIDED",
    "EXIT_USAGE",
    "UsageExit",
    "pinned_policy",
]

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNDECIDED = 3
EXIT_INTERNAL = 70
EXIT_BROKEN_PIPE = 141
"""The shell's status for a writer killed by SIGPIPE: the output was cut short by its reader."""

EXIT_CODES_HELP = """exit codes:
  0   accepted
  1   refused: the appraisal failed (the failing check is printed)
  2   usage, configuration or plugin error (nothing was appraised)
  3   undecided: collateral, a key service or the server was unreachable
  70  internal error (a bug: rerun with --traceback and report it)"""


class UsageExit(Exception):
    """argparse wanted to exit: carry its status instead of leaving the process."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def pinned_policy(policy: Policy, references: Sequence[str], allow_any: bool) -> Policy:
    """``policy`` with ``--reference NAME=HEX`` pins and ``--allow-any-workload`` applied."""
    extra: dict[str, str] = {}
    for item in references:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigurationError(
                "--reference takes NAME=HEX, e.g. --reference mrtd=ab12...",
                check="cli.reference",
                actual=item,
            )
        extra[name.strip()] = value.strip()
    if not extra and not allow_any:
        return policy
    import attrs

    from atls_core.policy import Policy

    references_now = dict(policy.reference_values)
    for name, value in extra.items():
        references_now[name] = Policy(reference_values={name: value}).reference_values[name]
    return attrs.evolve(
        policy,
        reference_values=references_now,
        allow_any_workload=policy.allow_any_workload or allow_any,
    )

"""``atls inspect`` in a plugin's tests: run it in-process, find one validator's description.

Each plugin that implements ``describe`` checks what ``atls inspect`` prints of
its evidence; these two helpers keep them from each writing the same runner.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

__all__ = ["described_by", "inspect_json"]


def inspect_json(*argv: str) -> tuple[int, Any, str]:
    """``atls inspect *argv --json``: (exit status, the JSON document or None, stderr)."""
    from atls_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["inspect", *argv, "--json"])
    text = out.getvalue()
    return status, json.loads(text) if text else None, err.getvalue()


def described_by(document: Any, validator_id: str) -> dict[str, Any]:
    """The description ``validator_id`` gave in an inspect document (an assertion error
    naming what was not decoded, and why, when it gave none)."""
    for entry in document["decoded"]:
        if validator_id in entry["validators"]:
            description: dict[str, Any] = entry["description"]
            return description
    raise AssertionError(f"{validator_id} decoded nothing: {document['not_decoded']}")

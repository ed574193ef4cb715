"""Human-readable reports of attestation results and errors.

Used by the command line and by anyone who wants to show a result to a person.
Everything printed here may come from evidence a server supplied (claims,
measurements, advisory ids), so control characters are escaped: a hostile
server cannot rewrite the operator's terminal or forge extra report lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from atls_core.errors import ATLSError, _shown

if TYPE_CHECKING:  # `atls plugins` renders no result: it need not load their classes
    import datetime as dt

    from atls_core.binding import Binding
    from atls_core.result import AttestationResult

__all__ = ["render_error", "render_inspection", "render_result", "safe_text"]

_WIDTH = 14


def safe_text(value: object) -> str:
    """One line of printable text: control characters become escapes."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.isoformat().replace("+00:00", "Z")


def _line(label: str, value: object) -> str:
    return f"  {label + ':':<{_WIDTH}} {safe_text(value)}"


def _section(title: str, lines: Iterable[str]) -> list[str]:
    body = list(lines)
    return [f"{title}:", *body] if body else []


def _expected_actual(expected: object, actual: object) -> str:
    parts = []
    if expected is not None:
        parts.append(f"expected {_shown(expected)}")
    if actual is not None:
        parts.append(f"got {_shown(actual)}")
    return f" ({safe_text(', '.join(parts))})" if parts else ""


def _binding_text(binding: Binding) -> str:
    """Offline there is no TLS key to bind to: say so, not that a check failed."""
    if binding.verified:
        return f"{binding.scheme}, verified, freshness {binding.freshness.value}"
    if binding.freshness.value == "unbound":
        return f"{binding.scheme}, not checked (offline: no TLS connection to bind to)"
    return f"{binding.scheme}, NOT verified, freshness {binding.freshness.value}"


def render_result(result: AttestationResult) -> str:
    """A multi-line report: verdict first, then who, what, how bound, and why not."""
    verdict = "ACCEPTED" if result.accepted else "REJECTED"
    verifier = result.verifier
    tcb = result.tcb
    binding = result.binding
    lines = [
        f"{verdict} (status: {result.status.value})",
        _line(
            "validator",
            f"{verifier.validator} (plugin {verifier.plugin} {verifier.plugin_version}, "
            f"atls-core {verifier.core_version})",
        ),
        _line("tee", result.tee_type),
        _line("debug", {None: "unknown", True: "yes", False: "no"}[result.debug]),
        _line("tcb status", tcb.status if tcb.status is not None else "none recorded"),
        _line("advisories", ", ".join(tcb.advisory_ids) if tcb.advisory_ids else "none"),
    ]
    if tcb.date is not None:
        lines.append(_line("tcb date", _time(tcb.date)))
    if tcb.evaluation_data_number is not None:
        lines.append(_line("tcb eval num", tcb.evaluation_data_number))
    lines.append(_line("binding", _binding_text(binding)))
    if binding.key_digest:
        lines.append(_line("key sha256", binding.key_digest))
    if binding.nonce:
        lines.append(_line("nonce", binding.nonce))
    lines.append(_line("policy", f"{result.policy_id} (sha256 {result.policy_digest})"))
    lines.append(_line("evidence", f"sha256 {result.evidence_digest}"))
    lines.append(_line("issued at", _time(result.issued_at)))
    expiry = _time(result.expires_at)
    if result.expires_at is not None and result.expiry_reason:
        expiry += f" ({result.expiry_reason})"
    lines.append(_line("expires at", expiry if result.expires_at is not None else "no expiry"))
    vector = result.trustworthiness.to_dict()
    if vector:
        lines.append(_line("ar4si", ", ".join(f"{k}={v}" for k, v in sorted(vector.items()))))
    lines += _section(
        "measurements",
        (f"  {safe_text(name)}: {safe_text(value)}" for name, value in result.measurements.items()),
    )
    lines += _section("warnings", (f"  - {safe_text(w)}" for w in result.warnings))
    lines += _section(
        "failed checks",
        (
            f"  - {safe_text(f.check)}: {safe_text(f.message)}"
            + ("" if f.enforced else " [warn-only]")
            + _expected_actual(f.expected, f.actual)
            for f in result.failures
        ),
    )
    return "\n".join(lines)


def render_error(error: BaseException) -> str:
    """One line for stderr: ``atls: <check>: <reason> (expected .., got ..)``."""
    if isinstance(error, ATLSError):
        text = str(error)
    elif isinstance(error, OSError):
        where = f" {error.filename}" if error.filename is not None else ""
        text = f"os: {error.strerror or type(error).__name__}{where}"
    else:
        detail = str(error)
        text = f"error: {type(error).__name__}" + (f": {detail}" if detail else "")
    return "atls: " + safe_text(" ".join(text.split()))


# -- atls inspect ------------------------------------------------------------------------------

_LONG_TEXT = 240
"""Text values longer than this are cut in the human form (``--json`` shows them whole)."""
UNVERIFIED_NOTICE = (
    "UNVERIFIED: decoded without checking any signature, certificate chain, binding or "
    "policy; nothing below is attested until `atls verify` or `atls verify-evidence` accepts it"
)


def _scalar(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = safe_text(value)
    if len(text) > _LONG_TEXT:
        text = f"{text[:_LONG_TEXT]}... ({len(text)} chars; --json shows all)"
    return text


def _is_scalar(value: object) -> bool:
    return not isinstance(value, (Mapping, list, tuple))


def _tree(value: object, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_scalar(item):
                lines.append(f"{pad}{safe_text(key)}: {_scalar(item)}")
            elif not item:
                lines.append(f"{pad}{safe_text(key)}: (none)")
            else:
                lines.append(f"{pad}{safe_text(key)}:")
                lines += _tree(item, indent + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Mapping) and all(_is_scalar(v) for v in item.values()):
                lines.append(
                    pad + "- " + ", ".join(f"{safe_text(k)}={_scalar(v)}" for k, v in item.items())
                )
            elif _is_scalar(item):
                lines.append(f"{pad}- {_scalar(item)}")
            else:
                lines.append(f"{pad}-")
                lines += _tree(item, indent + 1)
    else:
        lines.append(pad + _scalar(value))
    return lines


def render_inspection(document: Mapping[str, Any]) -> str:
    """``atls inspect``'s human form: the notice first, then what each validator decoded.

    ``document`` is the command's JSON form: ``file``, optional ``certificate`` and
    ``token``, ``decoded`` (``[{"validators": [...], "description": {...}}]``) and
    ``not_decoded`` (``[{"validator", "reason"}]``).  Every value may come from a
    hostile server: everything is escaped and long values are cut.
    """
    lines = [UNVERIFIED_NOTICE, f"file: {_scalar(document.get('file'))}"]
    for section in ("certificate", "token"):
        if document.get(section):
            lines.append(f"{section}:")
            lines += _tree(document[section], 1)
    for entry in document.get("decoded", ()):
        description = dict(entry["description"])
        title = description.pop("format", "evidence")
        lines.append(f"{', '.join(safe_text(v) for v in entry['validators'])}: {_scalar(title)}")
        lines += _tree(description, 1)
    reasons: dict[str, list[str]] = {}
    for item in document.get("not_decoded", ()):
        reasons.setdefault(" ".join(str(item["reason"]).split()), []).append(item["validator"])
    if reasons:
        lines.append("not decoded by:")
        lines += [
            f"  {', '.join(safe_text(v) for v in validators)}: {_scalar(reason)}"
            for reason, validators in reasons.items()
        ]
    return "\n".join(lines)

"""What a validator and the core hand each other once evidence is being read.

Public as :mod:`atls_core.interfaces`' ``ReportData``, ``ChallengeRequest`` and
``ChallengeResponse``; kept here so that listing plugins, which reads only their
specs, does not build these classes (each attrs class costs a command's start).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from atls_core.errors import MalformedEvidence

__all__ = ["ChallengeRequest", "ChallengeResponse", "ReportData"]


def _frozen_material(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class ReportData:
    """What :meth:`Validator.verify` hands the core: report data it verified.

    ``scheme`` is one of the spec's ``binding_schemes`` (``None``: the first);
    ``material`` carries the scheme's extra inputs, read from verified evidence
    (e.g. Gramine's CBOR claims).  The core binds it; a plugin never does.
    """

    value: bytes
    scheme: str | None = None
    material: Mapping[str, bytes] = attrs.field(factory=dict, converter=_frozen_material)


def _frozen_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class ChallengeRequest:
    """An HTTP request the core sends over the just-appraised-to-be connection."""

    method: str = "POST"
    path: str
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_headers)
    body: bytes = b""
    max_response_bytes: int = 4 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ChallengeResponse:
    status: int
    headers: Mapping[str, str] = attrs.field(converter=_frozen_headers)
    body: bytes

    def ok_body(self, endpoint: str = "the challenge endpoint") -> bytes:
        """The body of a 200 answer: any other status is no evidence (``challenge.status``)."""
        if self.status != 200:
            raise MalformedEvidence(
                f"{endpoint} did not answer 200",
                check="challenge.status",
                expected=200,
                actual=self.status,
            )
        return self.body

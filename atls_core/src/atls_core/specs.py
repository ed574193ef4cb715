"""An issuer's spec read off the spec of the validator that appraises its evidence.

An issuer and its validator must agree on the validator id, binding scheme,
media type, transport, extension OID and whether they are a test pair; written
out twice, they drift (an issuer announcing a scheme its validator refuses is
only found at the first handshake).  :func:`issuer_spec` takes them from the
validator's spec, so only what is the issuer's own is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from atls_core.evidence import Transport
from atls_core.interfaces import IssuerSpec, ValidatorSpec

__all__ = ["issuer_spec"]


def _chosen(what: str, chosen: str | None, declared: tuple[str, ...], validator: str) -> str:
    if chosen is None and declared:
        return declared[0]
    if chosen not in declared:
        raise ValueError(f"{validator} declares no {what} {chosen!r} (it has {list(declared)})")
    return chosen


def issuer_spec(
    validator: ValidatorSpec,
    *,
    id: str,
    description: str,
    settings: Iterable[str] = (),
    binding_scheme: str | None = None,
    media_type: str | None = None,
    oid: str | None = None,
) -> IssuerSpec:
    """The spec of issuer ``id``, whose evidence ``validator`` appraises.

    By default the issuer uses the validator's first scheme, media type and
    OID; ``binding_scheme`` and ``oid`` pick another the validator declares
    (anything else is a ``ValueError`` at import), ``media_type`` another media
    type (a challenge answer may be a document the validator unwraps).
    """
    certificate = validator.transport is Transport.CERTIFICATE
    return IssuerSpec(
        id=id,
        validator_id=validator.id,
        binding_scheme=_chosen(
            "binding scheme", binding_scheme, validator.binding_schemes, validator.id
        ),
        media_type=media_type or validator.media_types[0],
        transport=validator.transport,
        oid=_chosen("OID", oid, validator.oids, validator.id) if certificate else None,
        description=description,
        settings=tuple(settings),
        insecure=validator.insecure,
    )

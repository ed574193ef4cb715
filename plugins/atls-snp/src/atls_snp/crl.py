"""The ARK's revocation list: is the ASK (or ASVK) of this chain revoked?

AMD's key distribution service publishes one CRL per product and key type
(``/vcek/v1/<Product>/crl``, ``/vlek/v1/<Product>/crl``), signed by the ARK
with RSASSA-PSS/SHA-384 like the certificates.  It lists revoked
intermediates; VCEKs are not revoked one by one (a new TCB means a new VCEK).
Read with the same DER walker as the certificates; the signature must verify
under the chain's ARK and the CRL's issuer must be that ARK.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_snp import der
from atls_snp.certs import AmdCertificate, SignedDer, split_pem, split_signed, verify_pss

__all__ = ["Crl", "CrlCheck", "check_crl", "check_revocation", "parse_crl", "require_signed"]

_CHECK = "snp.crl.format"


@attrs.frozen(kw_only=True)
class Crl(SignedDer):
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: Mapping[int, dt.datetime]


@attrs.frozen(kw_only=True)
class CrlCheck:
    """What the result records about revocation."""

    checked: bool
    source: str | None = None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    stale: bool = False

    def to_claim(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "source": self.source,
            "this_update": None if self.this_update is None else self.this_update.isoformat(),
            "next_update": None if self.next_update is None else self.next_update.isoformat(),
            "stale": self.stale,
        }


def _is_time(tag: int) -> bool:
    return tag in (der.UTC_TIME, der.GENERALIZED_TIME)


@functools.lru_cache(maxsize=32)
def parse_crl(data: bytes) -> Crl:
    """A DER (or PEM ``X509 CRL``) certificate revocation list."""
    if data.lstrip().startswith(b"-----BEGIN"):
        blocks = split_pem(data, label=b"X509 CRL", check=_CHECK)
        if len(blocks) != 1:
            raise MalformedEvidence("expected one PEM CRL", check=_CHECK, actual=len(blocks))
        data = blocks[0]
    signed = split_signed(data, what="a certificate revocation list", check=_CHECK)
    algorithm, fields = signed.algorithm, signed.fields
    if fields and fields[0][0] == der.INTEGER:
        fields = fields[1:]
    if len(fields) < 3 or der.whole(data, fields[0]) != algorithm or not _is_time(fields[2][0]):
        raise MalformedEvidence("bad tbsCertList", check=_CHECK)
    issuer, this_update = fields[1], der.time(data, fields[2], check=_CHECK)
    rest = fields[3:]
    next_update = None
    if rest and _is_time(rest[0][0]):
        next_update = der.time(data, rest[0], check=_CHECK)
        rest = rest[1:]
    revoked: dict[int, dt.datetime] = {}
    if rest and rest[0][0] == der.SEQUENCE:
        for entry in der.children(data, rest[0], check=_CHECK):
            items = der.children(data, entry, check=_CHECK)
            if entry[0] != der.SEQUENCE or len(items) < 2:
                raise MalformedEvidence("bad revoked certificate entry", check=_CHECK)
            serial = der.integer(data, items[0], check=_CHECK)
            revoked[serial] = der.time(data, items[1], check=_CHECK)
    return Crl(
        der=data,
        digest=hashlib.sha256(data).digest(),
        tbs=signed.tbs,
        signature=signed.signature,
        issuer=der.whole(data, issuer),
        this_update=this_update,
        next_update=next_update,
        revoked=MappingProxyType(revoked),
    )


def require_signed(crl: Crl, ark: AmdCertificate) -> None:
    """A CRL not signed by the chain's ARK proves nothing: refuse it."""
    if crl.issuer != ark.subject or not verify_pss(ark.public_key, crl.signature, crl.tbs):
        raise UntrustedChain(
            f"the revocation list is not signed by {ark.subject_cn}", check="snp.crl.signature"
        )


def check_revocation(
    crl: Crl, *, intermediate: AmdCertificate, now: dt.datetime, source: str
) -> CrlCheck:
    """Refuse a revoked intermediate; ``crl`` has passed :func:`require_signed`."""
    revoked_at = crl.revoked.get(intermediate.serial)
    if revoked_at is not None and revoked_at <= now:
        raise UntrustedChain(
            f"{intermediate.subject_cn} is revoked",
            check="snp.crl.revoked",
            actual=f"serial {intermediate.serial:#x} revoked {revoked_at.isoformat()}",
        )
    return CrlCheck(
        checked=True,
        source=source,
        this_update=crl.this_update,
        next_update=crl.next_update,
        stale=crl.next_update is not None and crl.next_update < now,
    )


def check_crl(
    crl: Crl,
    *,
    ark: AmdCertificate,
    intermediate: AmdCertificate,
    now: dt.datetime,
    source: str,
) -> CrlCheck:
    """Refuse a revoked intermediate; a CRL not signed by the chain's ARK proves nothing."""
    require_signed(crl, ark)
    return check_revocation(crl, intermediate=intermediate, now=now, source=source)

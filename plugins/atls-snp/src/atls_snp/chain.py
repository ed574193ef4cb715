"""From a report and a pool of certificates to a verified chain: ARK -> ASK/ASVK -> VCEK/VLEK.

The pool holds whatever certificates came with the evidence, from configured
files or from AMD's key distribution service; none is trusted for where it
came from.  A chain is accepted only when

* its root hashes to a pinned ARK (:data:`atls_snp.roots.PINNED_ARKS`, or a
  test root configuration names explicitly) and signs itself;
* the intermediate is the one the report's SIGNING_KEY calls for (SEV-<Product>
  for a VCEK, SEV-VLEK-<Product> for a VLEK), issued and signed by that ARK;
* the endorsement key is a P-384 SEV-VCEK/SEV-VLEK certificate issued and
  signed by that intermediate, for the same product, whose TCB extensions
  equal the report's REPORTED_TCB and whose hwID is the report's CHIP_ID (a
  VLEK has none and its report's CHIP_ID is zero);
* all three are valid at the appraisal time;
* the endorsement key made the report's ECDSA P-384 signature.

When several candidates exist, the one that gets furthest is reported, so the
error names the real problem.  Certificate links that verified once are
remembered (the signature does not depend on time), so a long-running client
pays for the RSA checks once per chain.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from atls_core.errors import ATLSError, MalformedEvidence, StaleEvidence, UntrustedChain
from atls_snp.certs import AmdCertificate
from atls_snp.report import Report
from atls_snp.roots import PINNED_ARKS, Product, SigningKey

__all__ = [
    "Pool",
    "Source",
    "VerifiedChain",
    "product_of",
    "vek_matches",
    "verify_chain",
    "verify_report_signature",
]

Source = str
"""Where a certificate came from: ``evidence``, ``file`` or ``kds``."""

_LINKS: dict[tuple[bytes, bytes], bool] = {}
_LINKS_LOCK = threading.Lock()
_MAX_LINKS = 4096


def _linked(child: AmdCertificate, issuer: AmdCertificate) -> bool:
    """``child`` is issued and signed by ``issuer``; verified signatures are remembered."""
    key = (child.digest, issuer.digest)
    if _LINKS.get(key):
        return True
    ok = child.signed_by(issuer)
    if ok:
        with _LINKS_LOCK:
            if len(_LINKS) >= _MAX_LINKS:
                _LINKS.clear()
            _LINKS[key] = True
    return ok


@attrs.frozen
class Pool:
    """Candidate certificates and where each came from (first source wins)."""

    entries: tuple[tuple[AmdCertificate, Source], ...] = ()

    def plus(self, certificates: Iterable[AmdCertificate], source: Source) -> Pool:
        seen = {cert.digest for cert, _ in self.entries}
        added = list(self.entries)
        for cert in certificates:
            if cert.digest not in seen:
                seen.add(cert.digest)
                added.append((cert, source))
        return Pool(tuple(added))

    def named(self, common_name: str) -> list[AmdCertificate]:
        return [cert for cert, _ in self.entries if cert.subject_cn == common_name]

    def roots(self, anchors: Mapping[bytes, Product]) -> list[AmdCertificate]:
        return [cert for cert, _ in self.entries if cert.digest in anchors]

    def source(self, cert: AmdCertificate) -> Source:
        return next(source for candidate, source in self.entries if candidate is cert)


@attrs.frozen(kw_only=True)
class VerifiedChain:
    product: Product
    signing_key: SigningKey
    ark: AmdCertificate
    intermediate: AmdCertificate
    vek: AmdCertificate
    pinned: bool
    """The root is one of AMD's pinned ARKs (not a test root)."""
    sources: Mapping[str, Source]

    @property
    def not_after(self) -> dt.datetime:
        return min(self.ark.not_after, self.intermediate.not_after, self.vek.not_after)

    def describe(self) -> dict[str, Any]:
        """Who endorsed the report (the VEK's TCB and hwID equal the report's: not repeated)."""
        vek = self.vek.vek
        return {
            "ark": {**self.ark.describe(), "pinned": self.pinned, "source": self.sources["ark"]},
            "intermediate": {
                **self.intermediate.describe(),
                "source": self.sources["intermediate"],
            },
            "vek": {
                **self.vek.describe(),
                "product_name": vek.product_name,
                "csp_id": vek.csp_id,
                "source": self.sources["vek"],
            },
        }


def product_of(name: str | None) -> Product | None:
    """``Milan-B0`` -> Milan: a VCEK's productName starts with its family."""
    if not name:
        return None
    return Product.named(name.split("-", 1)[0])


def vek_matches(vek: AmdCertificate, report: Report, product: Product) -> str | None:
    """Why ``vek`` cannot be the key of ``report`` on ``product`` (TCB, hwID), or None."""
    wanted = report.reported_tcb(product).components()
    spls = vek.vek.spls
    if any(spls.get(name) != value for name, value in wanted.items()):
        return "tcb"
    if report.signing_key is SigningKey.VLEK:
        return None if not any(report.chip_id) else "hwid"
    hw_id = vek.vek.hw_id
    size = 8 if product.turin_layout else 64
    if hw_id is None or len(hw_id) != size or report.chip_id != hw_id.ljust(64, b"\0"):
        return "hwid"
    return None


def verify_report_signature(report: Report, vek: AmdCertificate) -> bool:
    r, s = report.signature_rs
    key = vek.public_key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(encode_dss_signature(r, s), report.signed_part, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return False
    return True


class _Failures:
    """The failure of the candidate that got furthest."""

    def __init__(self) -> None:
        self.stage = -1
        self.error: ATLSError | None = None

    def add(self, stage: int, error: ATLSError) -> None:
        if stage > self.stage:
            self.stage, self.error = stage, error


def _validity(certs: Iterable[AmdCertificate], now: dt.datetime) -> StaleEvidence | None:
    for cert in certs:
        if not cert.valid_at(now):
            return StaleEvidence(
                f"{cert.subject_cn} is not valid at the appraisal time",
                check="snp.chain.validity",
                expected=f"{cert.not_before.isoformat()} .. {cert.not_after.isoformat()}",
                actual=now.isoformat(),
            )
    return None


def _vek_failure(
    vek: AmdCertificate, report: Report, product: Product, intermediate: AmdCertificate
) -> tuple[int, ATLSError] | None:
    if not _linked(vek, intermediate):
        return 4, UntrustedChain(
            f"{vek.subject_cn} is not signed by {intermediate.subject_cn}",
            check="snp.chain.signature",
        )
    named = vek.vek.product_name
    if product_of(named) is not product:
        return 5, UntrustedChain(
            "the endorsement key is for another product",
            check="snp.vek.product",
            expected=product.value,
            actual=named,
        )
    if not vek.is_p384:
        return 5, UntrustedChain("the endorsement key is not ECDSA P-384", check="snp.vek.key")
    mismatch = vek_matches(vek, report, product)
    if mismatch == "tcb":
        return 6, UntrustedChain(
            "the endorsement key was issued for another TCB than the report's REPORTED_TCB",
            check="snp.vek.tcb",
            expected=report.reported_tcb(product).components(),
            actual=dict(vek.vek.spls),
        )
    if mismatch == "hwid":
        return 7, UntrustedChain(
            "the endorsement key belongs to another chip than the report's CHIP_ID",
            check="snp.vek.hwid",
            expected=report.chip_id.hex(),
            actual=(vek.vek.hw_id or b"").hex() or None,
        )
    return None


def verify_chain(
    report: Report,
    pool: Pool,
    *,
    anchors: Mapping[bytes, Product],
    now: dt.datetime,
) -> VerifiedChain:
    """The chain that endorses ``report`` (see the module doc) or the reason there is none."""
    signing = report.signing_key
    cpuid_product = report.cpuid_product
    if report.cpuid is not None and cpuid_product is None:
        family, model, stepping = report.cpuid
        raise MalformedEvidence(
            "the report's CPUID names no SEV-SNP product this verifier knows",
            check="snp.product",
            expected=[p.value for p in Product],
            actual=f"family {family:#x} model {model:#x} stepping {stepping:#x}",
        )
    arks = pool.roots(anchors)
    if not arks:
        raise UntrustedChain(
            "no certificate chain to a pinned AMD root: the evidence, the configured files "
            "and the key distribution service gave no ARK",
            check="snp.chain",
            expected=[p.ark_name for p in Product],
        )
    failures = _Failures()
    for ark in arks:
        product = anchors[ark.digest]
        if cpuid_product is not None and product is not cpuid_product:
            failures.add(
                0,
                UntrustedChain(
                    "the chain's root is for another product than the report's CPUID",
                    check="snp.product",
                    expected=cpuid_product.value,
                    actual=product.value,
                ),
            )
            continue
        if not _linked(ark, ark):
            failures.add(
                1, UntrustedChain(f"{ark.subject_cn} is not self-signed", check="snp.chain")
            )
            continue
        wanted = signing.intermediate_name(product)
        intermediates = [c for c in pool.named(wanted) if _linked(c, ark)]
        if not intermediates:
            failures.add(
                2,
                UntrustedChain(
                    f"no {wanted} certificate issued by {ark.subject_cn} "
                    f"(the report is signed by a {signing.name})",
                    check="snp.chain",
                    expected=wanted,
                ),
            )
            continue
        for intermediate in intermediates:
            veks = [
                c for c in pool.named(signing.certificate_name) if c.issuer == intermediate.subject
            ]
            if not veks:
                failures.add(
                    3,
                    UntrustedChain(
                        f"no {signing.certificate_name} certificate issued by {wanted}",
                        check="snp.chain",
                        expected=signing.certificate_name,
                    ),
                )
            for vek in veks:
                failure = _vek_failure(vek, report, product, intermediate)
                if failure is not None:
                    failures.add(*failure)
                    continue
                stale = _validity((ark, intermediate, vek), now)
                if stale is not None:
                    failures.add(8, stale)
                    continue
                if not verify_report_signature(report, vek):
                    failures.add(
                        9,
                        UntrustedChain(
                            f"the report signature does not verify with the {signing.name}",
                            check="snp.signature",
                        ),
                    )
                    continue
                return VerifiedChain(
                    product=product,
                    signing_key=signing,
                    ark=ark,
                    intermediate=intermediate,
                    vek=vek,
                    pinned=ark.digest in PINNED_ARKS,
                    sources={
                        "ark": pool.source(ark),
                        "intermediate": pool.source(intermediate),
                        "vek": pool.source(vek),
                    },
                )
    raise failures.error or UntrustedChain("no usable certificate chain", check="snp.chain")

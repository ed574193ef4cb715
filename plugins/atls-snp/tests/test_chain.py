"""Chain verification: ARK -> ASK/ASVK -> VCEK/VLEK -> report, and each way it can fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.errors import ATLSError, MalformedEvidence, StaleEvidence, UntrustedChain
from atls_snp.certs import parse_certificate
from atls_snp.chain import Pool, verify_chain
from atls_snp.report import parse_report
from atls_snp.roots import PINNED_ARKS, Product, SigningKey
from atls_snp.testing import SyntheticSnp
from atls_snp.testing.pki import SnpTestPki, shared_pki
from atls_snp.testing.reports import resign


def _pool(*certificates: bytes) -> Pool:
    return Pool().plus((parse_certificate(c) for c in certificates), "evidence")


def _anchors(*worlds: SyntheticSnp) -> Mapping[bytes, Product]:
    return {**PINNED_ARKS, **{w.pki.ark_sha256: w.product for w in worlds}}


def _verify(world: SyntheticSnp, report: bytes, *certificates: bytes) -> object:
    return verify_chain(
        parse_report(report),
        _pool(*(certificates or world.chain())),
        anchors=_anchors(world),
        now=world.now,
    )


def _refused(world: SyntheticSnp, report: bytes, *certificates: bytes) -> ATLSError:
    with pytest.raises(ATLSError) as info:
        _verify(world, report, *certificates)
    return info.value


@pytest.mark.parametrize("vlek", [False, True])
def test_each_product_and_key_kind_verifies(
    milan: SyntheticSnp, genoa: SyntheticSnp, turin: SyntheticSnp, vlek: bool
) -> None:
    for world in (milan, genoa, turin):
        chain = verify_chain(
            parse_report(world.report(vlek=vlek)),
            _pool(*world.chain(vlek=vlek)),
            anchors=_anchors(world),
            now=world.now,
        )
        assert chain.product is world.product
        assert chain.signing_key is (SigningKey.VLEK if vlek else SigningKey.VCEK)
        assert not chain.pinned  # a test root, never one of AMD's
        assert chain.sources == {"ark": "evidence", "intermediate": "evidence", "vek": "evidence"}


def test_certificate_order_does_not_matter(milan: SyntheticSnp) -> None:
    vcek, ask, ark = milan.chain()
    _verify(milan, milan.report(), ark, vcek, ask)


def test_no_pinned_root_is_refused(milan: SyntheticSnp) -> None:
    vcek, ask, ark = milan.chain()
    report = parse_report(milan.report())
    with pytest.raises(UntrustedChain) as info:
        verify_chain(report, _pool(vcek, ask, ark), anchors=PINNED_ARKS, now=milan.now)
    assert info.value.check == "snp.chain"


def test_a_look_alike_pki_does_not_chain_to_the_configured_root(milan: SyntheticSnp) -> None:
    other = SnpTestPki.generate(Product.MILAN)
    impostor = other.vcek(chip_id=milan.chip_id, tcb=milan.tcb, not_before=milan.issued)
    forged = resign(milan.report(), impostor.key)
    # The impostor's own ARK is not trusted; the trusted ARK did not sign its ASK.
    error = _refused(milan, forged, impostor.certificate, other.ask, other.ark, milan.pki.ark)
    assert error.check == "snp.chain"
    error = _refused(milan, forged, impostor.certificate, milan.pki.ask, milan.pki.ark)
    assert error.check == "snp.chain.signature"


def test_missing_intermediate_or_vek_is_refused(milan: SyntheticSnp) -> None:
    vcek, ask, ark = milan.chain()
    assert _refused(milan, milan.report(), vcek, ark).check == "snp.chain"
    assert _refused(milan, milan.report(), ask, ark).check == "snp.chain"


def test_vlek_report_is_not_accepted_through_the_vcek_intermediate(milan: SyntheticSnp) -> None:
    error = _refused(
        milan, milan.report(vlek=True), milan.vlek.certificate, milan.pki.ask, milan.pki.ark
    )
    assert error.check == "snp.chain"
    assert "SEV-VLEK-Milan" in error.reason


def test_vcek_for_another_tcb_is_refused(milan: SyntheticSnp) -> None:
    lower = {**milan.tcb, "snp": milan.tcb["snp"] - 1}
    report = milan.report(reported_tcb=lower)
    error = _refused(milan, report)
    assert error.check == "snp.vek.tcb"


def test_host_reporting_a_lower_tcb_than_it_runs_verifies_with_the_reported_one(
    milan: SyntheticSnp,
) -> None:
    higher = {**milan.tcb, "snp": milan.tcb["snp"] + 1}
    _verify(milan, milan.report(current_tcb=higher))


def test_vcek_of_another_chip_is_refused(milan: SyntheticSnp) -> None:
    other_chip = bytes(reversed(milan.chip_id))
    error = _refused(milan, milan.report(chip_id=other_chip))
    assert error.check == "snp.vek.hwid"


def test_turin_hwid_is_eight_bytes_then_zeros(turin: SyntheticSnp) -> None:
    _verify(turin, turin.report())
    padded = turin.chip_id[:8] + b"\x01" + bytes(55)
    assert _refused(turin, turin.report(chip_id=padded)).check == "snp.vek.hwid"


def test_vlek_report_needs_a_zero_chip_id(milan: SyntheticSnp) -> None:
    report = milan.report(vlek=True, chip_id=milan.chip_id)
    assert _refused(milan, report, *milan.chain(vlek=True)).check == "snp.vek.hwid"


def test_report_signed_by_another_key_is_refused(milan: SyntheticSnp) -> None:
    other = milan.pki.vcek(chip_id=milan.chip_id, tcb=milan.tcb, not_before=milan.issued)
    forged = resign(milan.report(), other.key)
    assert _refused(milan, forged).check == "snp.signature"
    # ...and verifies once the chain names the key that did sign it.
    _verify(milan, forged, other.certificate, milan.pki.ask, milan.pki.ark)


def test_the_matching_vek_is_chosen_among_several(milan: SyntheticSnp) -> None:
    lower = {**milan.tcb, "microcode": 1}
    stale_vcek = milan.pki.vcek(chip_id=milan.chip_id, tcb=lower, not_before=milan.issued)
    chain = verify_chain(
        parse_report(milan.report()),
        _pool(stale_vcek.certificate, *milan.chain()),
        anchors=_anchors(milan),
        now=milan.now,
    )
    assert chain.vek.der == milan.vcek.certificate


def test_expired_or_not_yet_valid_certificates_are_refused(milan: SyntheticSnp) -> None:
    report = parse_report(milan.report())
    for when in (milan.issued - dt.timedelta(days=1), milan.issued + dt.timedelta(days=8 * 365)):
        with pytest.raises(StaleEvidence) as info:
            verify_chain(report, _pool(*milan.chain()), anchors=_anchors(milan), now=when)
        assert info.value.check == "snp.chain.validity"


def test_report_cpuid_must_match_the_roots_product(genoa: SyntheticSnp) -> None:
    # A Genoa chip's report claiming to be a Milan: the Genoa chain does not serve it.
    raw = bytearray(genoa.report())
    raw[0x189] = 0x01  # CPUID model of Milan
    forged = resign(bytes(raw), genoa.vcek.key)
    with pytest.raises(UntrustedChain) as info:
        verify_chain(
            parse_report(forged), _pool(*genoa.chain()), anchors=_anchors(genoa), now=genoa.now
        )
    assert info.value.check == "snp.product"


def test_unknown_cpuid_is_refused(milan: SyntheticSnp) -> None:
    raw = bytearray(milan.report())
    raw[0x188] = 0x17
    with pytest.raises(MalformedEvidence) as info:
        _verify(milan, resign(bytes(raw), milan.vcek.key))
    assert info.value.check == "snp.product"


def test_vek_for_another_product_is_refused(milan: SyntheticSnp) -> None:
    mislabelled = milan.pki.vcek(
        chip_id=milan.chip_id, tcb=milan.tcb, not_before=milan.issued, product_name="Genoa"
    )
    report = resign(milan.report(), mislabelled.key)
    error = _refused(milan, report, mislabelled.certificate, milan.pki.ask, milan.pki.ark)
    assert error.check == "snp.vek.product"


def test_vek_on_another_curve_is_refused(milan: SyntheticSnp) -> None:
    """A VCEK on P-256, otherwise right (product, TCB, chip), signing the report."""
    on_p256 = milan.pki.vcek(
        chip_id=milan.chip_id, tcb=milan.tcb, not_before=milan.issued, curve=ec.SECP256R1()
    )
    report = resign(milan.report(), on_p256.key)
    error = _refused(milan, report, on_p256.certificate, milan.pki.ask, milan.pki.ark)
    assert error.check == "snp.vek.key"


def test_version_2_report_has_no_cpuid_and_takes_the_roots_product(turin: SyntheticSnp) -> None:
    chain = verify_chain(
        parse_report(turin.report(version=2)),
        _pool(*turin.chain()),
        anchors=_anchors(turin),
        now=turin.now,
    )
    assert chain.product is Product.TURIN


def test_shared_pki_is_one_per_product() -> None:
    assert shared_pki(Product.MILAN) is shared_pki(Product.MILAN)
    assert shared_pki(Product.MILAN).ark != shared_pki(Product.GENOA).ark

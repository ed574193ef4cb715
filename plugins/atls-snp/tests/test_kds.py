"""Fetching from the key distribution service (a stand-in on 127.0.0.1): what, when, cached, CRL."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.errors import ATLSError, CollateralUnavailable, UntrustedChain
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_snp.envelope import encode_envelope
from atls_snp.kds import KdsCache
from atls_snp.roots import Product
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.kds import FakeKds
from atls_snp.testing.pki import SnpTestPki
from atls_snp.validator import SnpReportValidator

SPKI = b"a TLS key's SubjectPublicKeyInfo"
PINNED = Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()})


@pytest.fixture
def kds(milan: SyntheticSnp) -> Iterator[FakeKds]:
    with FakeKds(milan.pki) as service:
        service.add_vcek(milan.vcek)
        yield service


class Client:
    """A validator talking to the stand-in, with its own cache (and its own clock for it)."""

    def __init__(self, world: SyntheticSnp, kds: FakeKds, **settings: Any) -> None:
        self.world = world
        self.seconds = 0.0
        self.cache = KdsCache(clock=lambda: self.seconds)
        self.validator = SnpReportValidator(
            world.settings(kds="auto", kds_url=kds.url, **settings), kds_cache=self.cache
        )

    def appraise(
        self, certificates: list[bytes] | None = None, *, live: bool = True, **fields: Any
    ) -> AttestationResult:
        nonce = new_nonce()
        report = self.world.report(report_data_for("atls-v1", spki_der=SPKI, nonce=nonce), **fields)
        evidence = self.validator.evidence_from_file(
            encode_envelope(report, certificates or []), name="e"
        )
        binding = (
            BindingContext(spki_der=SPKI, nonce=nonce) if live else BindingContext.offline_context()
        )
        return self.world.appraise(self.validator, evidence, PINNED, binding=binding)


def test_missing_certificates_are_fetched_once_and_cached(
    milan: SyntheticSnp, kds: FakeKds
) -> None:
    client = Client(milan, kds)
    result = client.appraise()
    assert result.accepted, result.to_json()
    certificates = result.claims["certificates"]
    assert certificates["ark"]["source"] == "file"  # the configured test root
    assert certificates["intermediate"]["source"] == "kds"
    assert certificates["vek"]["source"] == "kds"
    assert result.claims["crl"]["checked"] is True
    assert result.claims["crl"]["source"] == "kds"
    assert kds.requests["/vcek/v1/Milan/cert_chain"] == 1
    assert kds.requests["/vcek/v1/Milan/crl"] == 1
    assert (
        sum(
            n
            for p, n in kds.requests.items()
            if p.startswith(f"/vcek/v1/Milan/{milan.chip_id.hex()}")
        )
        == 1
    )
    fetched = kds.total()
    for _ in range(3):
        assert client.appraise().accepted
    assert kds.total() == fetched, "a warm cache must not call the service"
    assert not any(w.startswith("snp.crl") for w in result.warnings)


def test_cache_entries_expire(milan: SyntheticSnp, kds: FakeKds) -> None:
    client = Client(milan, kds, kds_cache_seconds=60)
    assert client.appraise().accepted
    fetched = kds.total()
    client.seconds = 61
    assert client.appraise().accepted
    assert kds.total() == 2 * fetched


CHAIN, CRL = "/vcek/v1/Milan/cert_chain", "/vcek/v1/Milan/crl"


def _counts(kds: FakeKds, world: SyntheticSnp) -> tuple[int, int, int]:
    """Requests so far for the cert_chain, this chip's VCEK and the CRL."""
    return (
        kds.requests[CHAIN],
        kds.requests[f"/vcek/v1/Milan/{world.chip_id.hex()}"],
        kds.requests[CRL],
    )


@pytest.mark.parametrize(
    ("wrong", "check", "first", "second"),
    [
        # An ASK of another ARK's (same names, other keys): nothing verified, nothing kept.
        ("chain", "snp.chain", (1, 1, 0), (2, 2, 1)),
        # A VCEK of the right chip and TCB that did not sign the report: nothing kept.
        ("vcek", "snp.signature", (1, 1, 0), (2, 2, 1)),
        # A CRL signed by the ASK: the verified chain stays cached, only the CRL is asked again.
        ("crl", "snp.crl.signature", (1, 1, 1), (1, 1, 2)),
    ],
)
def test_a_wrong_answer_costs_one_refusal_not_a_cache_lifetime(
    milan: SyntheticSnp,
    kds: FakeKds,
    wrong: str,
    check: str,
    first: tuple[int, int, int],
    second: tuple[int, int, int],
) -> None:
    # kds_url is configurable: a wrong answer once must not refuse this chip for a day.
    if wrong == "chain":
        kds.replies[CHAIN] = SnpTestPki.generate(Product.MILAN).cert_chain_pem()
    elif wrong == "vcek":
        other = milan.pki.vcek(chip_id=milan.chip_id, tcb=milan.tcb, not_before=milan.issued)
        kds.replies[f"/vcek/v1/Milan/{milan.chip_id.hex()}"] = other.certificate
    else:
        kds.replies[CRL] = milan.pki.crl(signer=milan.pki.ask_key)
    client = Client(milan, kds)
    with pytest.raises(UntrustedChain) as info:
        client.appraise()
    assert info.value.check == check
    assert _counts(kds, milan) == first
    kds.replies.clear()
    result = client.appraise()
    assert result.accepted, result.to_json()
    assert _counts(kds, milan) == second
    assert client.appraise().accepted
    assert _counts(kds, milan) == second, "verified answers are cached"


def test_a_revoking_crl_is_kept_it_verified(milan: SyntheticSnp, kds: FakeKds) -> None:
    kds.crl = milan.pki.crl(revoked={0x10001: milan.issued - dt.timedelta(days=1)})
    client = Client(milan, kds)
    for _ in range(2):
        with pytest.raises(UntrustedChain) as info:
            client.appraise()
        assert info.value.check == "snp.crl.revoked"
    assert _counts(kds, milan) == (1, 1, 1)


def test_evidence_with_the_chain_needs_only_the_crl(milan: SyntheticSnp, kds: FakeKds) -> None:
    client = Client(milan, kds)
    assert client.appraise(milan.chain()).accepted
    assert dict(kds.requests) == {"/vcek/v1/Milan/crl": 1}


def test_offline_appraisal_fetches_no_crl(milan: SyntheticSnp, kds: FakeKds) -> None:
    client = Client(milan, kds)
    result = client.appraise(milan.chain(), live=False)
    assert result.accepted
    assert kds.total() == 0
    assert result.claims["crl"]["checked"] is False


def test_a_revoked_ask_is_refused(milan: SyntheticSnp, kds: FakeKds) -> None:
    kds.crl = milan.pki.crl(revoked={0x10001: milan.issued - dt.timedelta(days=1)})
    with pytest.raises(UntrustedChain) as info:
        Client(milan, kds).appraise(milan.chain())
    assert info.value.check == "snp.crl.revoked"


def test_a_crl_not_signed_by_the_ark_is_refused(milan: SyntheticSnp, kds: FakeKds) -> None:
    kds.crl = milan.pki.crl(signer=milan.pki.ask_key)
    with pytest.raises(UntrustedChain) as info:
        Client(milan, kds).appraise(milan.chain())
    assert info.value.check == "snp.crl.signature"


def test_a_stale_crl_is_a_warning(milan: SyntheticSnp, kds: FakeKds) -> None:
    kds.crl = milan.pki.crl(next_update=milan.issued)
    result = Client(milan, kds).appraise(milan.chain())
    assert result.accepted
    assert result.claims["crl"]["stale"] is True
    assert any(w.startswith("snp.crl") for w in result.warnings)


def test_no_crl_means_could_not_decide(milan: SyntheticSnp, kds: FakeKds) -> None:
    kds.crl = None
    with pytest.raises(CollateralUnavailable) as info:
        Client(milan, kds).appraise(milan.chain())
    assert info.value.check == "snp.kds"


def test_a_configured_crl_file_is_used_offline(milan: SyntheticSnp, tmp_path: Any) -> None:
    crl = tmp_path / "crl.pem"
    body = base64.encodebytes(milan.pki.crl(revoked={0x10001: milan.issued})).decode()
    crl.write_text(f"-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n")
    validator = SnpReportValidator(milan.settings(crl=str(crl)))
    evidence = validator.evidence_from_file(milan.envelope(), name="e")
    with pytest.raises(UntrustedChain) as info:
        milan.appraise(validator, evidence, PINNED)
    assert info.value.check == "snp.crl.revoked"
    unrevoked = tmp_path / "crl.der"
    unrevoked.write_bytes(milan.pki.crl())
    validator = SnpReportValidator(milan.settings(crl=str(unrevoked)))
    result = milan.appraise(
        validator, validator.evidence_from_file(milan.envelope(), name="e"), PINNED
    )
    assert result.claims["crl"]["checked"] is True
    assert result.claims["crl"]["source"] == f"file:{unrevoked}"


def test_host_supplied_vcek_for_the_wrong_tcb_is_replaced_from_the_service(
    milan: SyntheticSnp, kds: FakeKds
) -> None:
    higher = {**milan.tcb, "snp": milan.tcb["snp"] + 1}
    current = milan.pki.vcek(chip_id=milan.chip_id, tcb=higher, not_before=milan.issued)
    client = Client(milan, kds)
    result = client.appraise([current.certificate, milan.pki.ask, milan.pki.ark])
    assert result.accepted, result.to_json()
    assert result.claims["certificates"]["vek"]["source"] == "kds"


def test_vleks_cannot_be_fetched(milan: SyntheticSnp, kds: FakeKds) -> None:
    with pytest.raises(UntrustedChain) as info:
        Client(milan, kds).appraise(vlek=True)
    assert info.value.check == "snp.chain"
    assert kds.requests["/vlek/v1/Milan/cert_chain"] == 1
    result = Client(milan, kds).appraise([milan.vlek.certificate], vlek=True)
    assert result.accepted
    assert kds.requests["/vlek/v1/Milan/crl"] == 1


def test_unknown_chip_is_a_service_answer_not_a_verdict(milan: SyntheticSnp, kds: FakeKds) -> None:
    with pytest.raises(CollateralUnavailable):
        Client(milan, kds).appraise(chip_id=bytes(range(64)))


def test_version_2_reports_need_the_product_to_fetch(milan: SyntheticSnp, kds: FakeKds) -> None:
    # Nothing configured but AMD's pinned roots: a v2 report names no product to ask for.
    validator = SnpReportValidator({"kds": "auto", "kds_url": kds.url}, kds_cache=KdsCache())
    evidence = validator.evidence_from_file(milan.report(version=2), name="report")
    with pytest.raises(UntrustedChain) as info:
        milan.appraise(validator, evidence, PINNED)
    assert "settings.product" in info.value.reason
    assert kds.total() == 0
    # Told the product (or given a root), it fetches the rest.
    assert Client(milan, kds, product="Milan").appraise(version=2).accepted


def test_the_service_being_down_is_could_not_decide(milan: SyntheticSnp) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    validator = SnpReportValidator(
        milan.settings(kds="auto", kds_url=f"http://127.0.0.1:{port}", kds_timeout=5),
        kds_cache=KdsCache(),
    )
    evidence = validator.evidence_from_file(encode_envelope(milan.report(), []), name="e")
    with pytest.raises(CollateralUnavailable) as info:
        milan.appraise(
            validator, evidence, PINNED, binding=BindingContext(spki_der=SPKI, nonce=None)
        )
    assert info.value.check == "snp.kds"


def test_turin_vcek_urls_carry_the_fmc_spl_and_an_eight_byte_hwid(turin: SyntheticSnp) -> None:
    with FakeKds(turin.pki) as kds:
        kds.add_vcek(turin.vcek)  # served only for the exact hwID and SPLs, fmcSPL included
        result = Client(turin, kds).appraise()
        assert result.accepted, result.to_json()
        assert result.claims["certificates"]["vek"]["source"] == "kds"
        assert kds.requests[f"/vcek/v1/Turin/{turin.chip_id[:8].hex()}"] == 1


def test_kds_never_does_not_touch_the_network(milan: SyntheticSnp, kds: FakeKds) -> None:
    validator = SnpReportValidator(milan.settings(kds="never", kds_url=kds.url))
    evidence = validator.evidence_from_file(encode_envelope(milan.report(), []), name="e")
    with pytest.raises(ATLSError) as info:
        milan.appraise(validator, evidence, PINNED)
    assert info.value.check == "snp.chain"
    assert kds.total() == 0


def test_an_older_crl_after_a_newer_one_is_a_replay(milan: SyntheticSnp, kds: FakeKds) -> None:
    # A mirror at kds_url replays the genuine CRL from before the ASK's revocation, still
    # before its next update, once the revoking one has left the cache.
    revoked_at = milan.issued - dt.timedelta(days=1)
    kds.crl = milan.pki.crl(revoked={0x10001: revoked_at}, this_update=milan.issued)
    client = Client(milan, kds, kds_cache_seconds=60)
    with pytest.raises(UntrustedChain) as info:
        client.appraise(milan.chain())
    assert info.value.check == "snp.crl.revoked"
    client.seconds = 61  # the revoking CRL is no longer served from the cache
    kds.crl = milan.pki.crl(this_update=milan.issued - dt.timedelta(days=2))
    with pytest.raises(UntrustedChain) as info:
        client.appraise(milan.chain())
    assert info.value.check == "snp.crl.rollback"
    assert kds.requests[CRL] == 2


def test_a_crl_that_did_not_verify_raises_no_bar(milan: SyntheticSnp, kds: FakeKds) -> None:
    forged_later = milan.issued + dt.timedelta(days=30)
    kds.crl = milan.pki.crl(this_update=forged_later, signer=milan.pki.ask_key)
    client = Client(milan, kds)
    with pytest.raises(UntrustedChain) as info:
        client.appraise(milan.chain())
    assert info.value.check == "snp.crl.signature"
    kds.crl = milan.pki.crl()  # the genuine CRL, issued before the forged date
    assert client.appraise(milan.chain()).accepted


def test_a_cached_crl_older_than_one_seen_since_is_fetched_again(milan: SyntheticSnp) -> None:
    # Two validators share the process's cache through two mirrors; one mirror lags. Its
    # cached CRL, older than the one the other validator saw since, is refused once and then
    # fetched again, not refused until its cache lifetime ends.
    older, newer = milan.issued - dt.timedelta(days=2), milan.issued
    shared = KdsCache()
    with FakeKds(milan.pki) as lagging, FakeKds(milan.pki) as current:
        lagging.crl = milan.pki.crl(this_update=older)
        current.crl = milan.pki.crl(this_update=newer)
        clients = []
        for service in (lagging, current):
            client = Client(milan, service)
            client.validator = SnpReportValidator(
                milan.settings(kds="auto", kds_url=service.url), kds_cache=shared
            )
            clients.append(client)
        behind, ahead = clients
        assert behind.appraise(milan.chain()).accepted  # the older CRL, cached
        assert ahead.appraise(milan.chain()).accepted  # the newer CRL raises the bar
        with pytest.raises(UntrustedChain) as info:
            behind.appraise(milan.chain())
        assert info.value.check == "snp.crl.rollback"
        lagging.crl = current.crl  # the mirror catches up
        assert behind.appraise(milan.chain()).accepted
        assert lagging.requests[CRL] == 2

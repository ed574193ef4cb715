"""One key distribution service cache shared by validators with different settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.errors import UntrustedChain
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_snp.envelope import encode_envelope
from atls_snp.kds import KdsCache
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.testing.kds import FakeKds
from atls_snp.validator import SnpReportValidator

SPKI = b"a TLS key's SubjectPublicKeyInfo"
PINNED = Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()})


@pytest.fixture
def kds(milan: SyntheticSnp) -> Iterator[FakeKds]:
    with FakeKds(milan.pki) as service:
        service.add_vcek(milan.vcek)
        yield service


def _appraise(world: SyntheticSnp, validator: SnpReportValidator) -> AttestationResult:
    nonce = new_nonce()
    report = world.report(report_data_for("atls-v1", spki_der=SPKI, nonce=nonce))
    evidence = validator.evidence_from_file(encode_envelope(report, world.chain()), name="e")
    binding = BindingContext(spki_der=SPKI, nonce=nonce)
    return world.appraise(validator, evidence, PINNED, binding=binding)


def test_a_short_cache_lifetime_is_kept_when_a_longer_one_filled_the_shared_cache(
    milan: SyntheticSnp, kds: FakeKds
) -> None:
    # Validators share one process-wide cache (AMD rate-limits its service); a validator
    # set to see revocations within a minute must not be served a CRL another validator,
    # set to a day, fetched an hour ago.
    seconds = [0.0]
    cache = KdsCache(clock=lambda: seconds[0])
    relaxed = SnpReportValidator(
        milan.settings(kds="auto", kds_url=kds.url, kds_cache_seconds=86400), kds_cache=cache
    )
    strict = SnpReportValidator(
        milan.settings(kds="auto", kds_url=kds.url, kds_cache_seconds=60), kds_cache=cache
    )
    assert _appraise(milan, relaxed).accepted
    assert kds.requests["/vcek/v1/Milan/crl"] == 1
    kds.crl = milan.pki.crl(revoked={0x10001: milan.issued - dt.timedelta(days=1)})
    seconds[0] = 3600.0
    with pytest.raises(UntrustedChain) as info:
        _appraise(milan, strict)
    assert info.value.check == "snp.crl.revoked"
    assert kds.requests["/vcek/v1/Milan/crl"] == 2
    # The relaxed validator keeps its day: the newer answer is what it reads now.
    with pytest.raises(UntrustedChain):
        _appraise(milan, relaxed)
    assert kds.requests["/vcek/v1/Milan/crl"] == 2


def test_a_zero_cache_lifetime_always_fetches(milan: SyntheticSnp, kds: FakeKds) -> None:
    cache = KdsCache(clock=lambda: 0.0)
    relaxed = SnpReportValidator(milan.settings(kds="auto", kds_url=kds.url), kds_cache=cache)
    uncached = SnpReportValidator(
        milan.settings(kds="auto", kds_url=kds.url, kds_cache_seconds=0), kds_cache=cache
    )
    assert _appraise(milan, relaxed).accepted
    assert _appraise(milan, uncached).accepted
    assert _appraise(milan, uncached).accepted
    assert kds.requests["/vcek/v1/Milan/crl"] == 3

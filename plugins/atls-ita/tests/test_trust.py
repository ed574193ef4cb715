"""x5c chain rules that only a chain ITA never publishes reaches: certificates from the
stand-in PKI, arranged so that the rule under test is the one that must refuse them."""

from __future__ import annotations

import datetime as dt

import pytest

from atls_core.errors import UntrustedChain
from atls_ita.testing.pki import StandInPki
from atls_ita.trust import ChainTrust

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki() -> StandInPki:
    """Root (pathLen 1) -> signing CA (pathLen 0) -> token-signing certificate."""
    return StandInPki.generate(algorithms=("PS384",), not_before=NOW - dt.timedelta(days=1))


def test_the_stand_in_chain_is_accepted(pki: StandInPki) -> None:
    leaf = pki.signers["PS384"].certificate
    assert ChainTrust((pki.root,)).verify([leaf, pki.ca, pki.root], now=NOW).leaf == leaf


def test_a_certificate_issued_by_an_end_entity_is_refused(pki: StandInPki) -> None:
    """An end-entity certificate right under the root signs a "token-signing" one.  The
    root's path length allows that one intermediate, so only the CA rule refuses it: the
    same chain through a CA is accepted."""
    trust = ChainTrust((pki.root,))
    ca = pki.issue("Another signing CA", issuer=(pki.root_key, pki.root), ca_path=0)
    _, signed_by_ca = pki.issue("Token signing", issuer=ca)
    assert trust.verify([signed_by_ca, ca[1], pki.root], now=NOW).leaf == signed_by_ca
    end_entity = pki.issue("An end entity", issuer=(pki.root_key, pki.root))
    _, forged = pki.issue("Token signing", issuer=end_entity)
    with pytest.raises(UntrustedChain) as info:
        trust.verify([forged, end_entity[1], pki.root], now=NOW)
    assert info.value.check == "ita.x5c.ca"


def test_a_chain_longer_than_a_path_length_allows_is_refused(pki: StandInPki) -> None:
    """The signing CA's pathLenConstraint is 0: a CA it issued may not issue the leaf."""
    sub_ca = pki.issue("A CA under the signing CA", issuer=(pki.ca_key, pki.ca), ca_path=0)
    _, leaf = pki.issue("Token signing", issuer=sub_ca)
    with pytest.raises(UntrustedChain) as info:
        ChainTrust((pki.root,)).verify([leaf, sub_ca[1], pki.ca, pki.root], now=NOW)
    assert info.value.check == "ita.x5c.path_length"

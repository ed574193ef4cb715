"""The TCB facts memo: one claims call per platform, never a platform's facts for another.

The verifier takes the TCB date, evaluation number, FMSPC and expiry from dcap-qvl's
claims once per (collateral, PCK chain, TEE TCB SVN, QE report).  These tests verify
quotes of different platforms, TDX modules and quoting enclaves interleaved through one
verifier and one parsed collateral, and hold every answer to what a fresh verifier says
of that quote alone, so a memo keyed on too little fails here.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import tracemalloc
from collections.abc import Callable

import pytest

from atls_dcap import DcapSettings, DcapVerifier
from atls_dcap.collateral import Collateral
from atls_dcap.report import VerifiedQuote
from atls_dcap.testing.pccs import FakePcs
from atls_dcap.testing.pki import TCB_PROFILES, DcapTestPki
from atls_dcap.testing.quotes import make_sgx_quote, make_tdx_quote
from atls_dcap.verifier import _CHAIN_KEPT, _KEY_MEMO_SIZE

ISSUED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(days=2)


def _report_data(label: str) -> bytes:
    return hashlib.sha512(label.encode()).digest()


def _verifier(pki: DcapTestPki) -> DcapVerifier:
    return DcapVerifier(
        DcapSettings.from_settings(
            {"root_ca": pki.root_ca_der, "allow_custom_root": True, "cache_dir": "none"}
        )
    )


def _facts(verified: VerifiedQuote) -> tuple[object, ...]:
    return (
        verified.tcb_status,
        verified.advisory_ids,
        verified.tcb_date,
        verified.tcb_evaluation_data_number,
        verified.fmspc,
        verified.collateral_expires_at,
    )


QuoteMaker = Callable[[DcapTestPki, str], bytes]

TDX_QUOTES: dict[str, QuoteMaker] = {
    "up to date": lambda pki, label: make_tdx_quote(pki, _report_data(label)),
    "platform out of date": lambda pki, label: make_tdx_quote(
        pki, _report_data(label), tcb="outofdate"
    ),
    "TDX module out of date": lambda pki, label: make_tdx_quote(
        pki, _report_data(label), tee_tcb_svn=TCB_PROFILES["outofdate"].tee_tcb_svn
    ),
    "quoting enclave out of date": lambda pki, label: make_tdx_quote(
        pki, _report_data(label), qe_svn=3
    ),
}
SGX_QUOTES: dict[str, QuoteMaker] = {
    "up to date": lambda pki, label: make_sgx_quote(pki, _report_data(label)),
    "platform out of date": lambda pki, label: make_sgx_quote(
        pki, _report_data(label), tcb="outofdate"
    ),
    "quoting enclave out of date": lambda pki, label: make_sgx_quote(
        pki, _report_data(label), qe_svn=6
    ),
}


@pytest.mark.parametrize(("tee", "makers"), [("tdx", TDX_QUOTES), ("sgx", SGX_QUOTES)])
def test_interleaved_platforms_each_get_their_own_facts(
    pki: DcapTestPki, tee: str, makers: dict[str, QuoteMaker]
) -> None:
    text = pki.collateral_json(tee, issue_date=ISSUED)
    alone = {
        name: _facts(
            _verifier(pki).verify_parsed(make(pki, "alone"), Collateral.from_json(text), now=NOW)
        )
        for name, make in makers.items()
    }
    collateral = Collateral.from_json(text)
    # Each case differs from "up to date" in one part of the memo key only (PCK chain, TEE
    # TCB SVN, QE report) and in its facts, so a key missing that part fails below.
    baseline = alone["up to date"]
    assert all(facts != baseline for name, facts in alone.items() if name != "up to date")
    shared = _verifier(pki)
    for round_number in range(2):
        for name, make in makers.items():
            quote = make(pki, f"{name} {round_number}")
            assert _facts(shared.verify_parsed(quote, collateral, now=NOW)) == alone[name], name
    # One claims call per platform, not per quote: two rounds, fresh report data each time.
    assert len(collateral.tcb_facts) == len(makers)


@pytest.mark.parametrize(
    ("pad", "limit"),
    [(1_000_000, 2_000_000), (_CHAIN_KEPT, 6 * _CHAIN_KEPT)],
    ids=["megabyte", "just-past-the-bound"],
)
def test_memos_do_not_keep_the_unsigned_chain_bytes(pki: DcapTestPki, pad: int, limit: int) -> None:
    """The PCK chain is unsigned and dcap-qvl reads past a padded one: the memos key a
    chain longer than a real one by digest, so quotes padded by whoever relays them cannot
    pile up in a client's memory (twelve chains just past the bound kept as they are would
    hold twice the limit)."""
    with FakePcs(pki.collateral_json("tdx", issue_date=ISSUED)) as pcs:
        verifier = DcapVerifier(
            DcapSettings.from_settings(
                {
                    "root_ca": pki.root_ca_der,
                    "allow_custom_root": True,
                    "cache_dir": "none",
                    "collateral": "pccs",
                    "pccs_url": pcs.url,
                }
            )
        )
        verifier.verify(make_tdx_quote(pki, _report_data("first")), now=NOW)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for index in range(12):
                suffix = f"# {index}\n".encode() + b"A" * pad
                padded = make_tdx_quote(pki, _report_data("padded"), chain_suffix=suffix)
                del suffix
                verified = verifier.verify(padded, now=NOW)
                assert verified.tcb_status == "UpToDate"  # the padding is read past
                del padded, verified
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < limit, f"{held / 2**20:.2f} MiB kept after 12 padded quotes"


def test_facts_memo_keeps_a_token_not_the_chain(pki: DcapTestPki) -> None:
    """A chain of a real size is looked up by its bytes in one bounded table; the facts
    memo, one per collateral, keeps its token only (else each collateral's memo could hold
    hundreds of distinct padded chains)."""
    text = pki.collateral_json("tdx", issue_date=ISSUED)
    collateral = Collateral.from_json(text)
    verifier = _verifier(pki)
    for index in range(3):
        suffix = f"# {index}\n".encode() + b"A" * 1000
        quote = make_tdx_quote(pki, _report_data("token"), chain_suffix=suffix)
        verifier.verify_parsed(quote, collateral, now=NOW)
    assert len(collateral.tcb_facts) == 3
    for chain, *_rest in collateral.tcb_facts:
        assert isinstance(chain, int)


def test_chain_tokens_are_never_given_to_other_bytes(pki: DcapTestPki) -> None:
    """Tokens name one chain's bytes for as long as a memo may keep them: the table is
    bounded and clears, and a cleared chain gets a new token, never an old one; two
    verifiers (whose collateral, so memo, a cache may share) never hand out the same."""
    first, second = _verifier(pki), _verifier(pki)
    chains = [b"chain %d " % index + b"-" * 64 for index in range(_KEY_MEMO_SIZE + 10)]
    tokens = [first._chain_id(chain) for chain in chains]
    assert len(first._chains) <= _KEY_MEMO_SIZE
    assert len(set(tokens)) == len(chains)
    assert first._chain_id(chains[-1]) == tokens[-1]  # still in the table
    again = first._chain_id(chains[0])  # cleared meanwhile
    assert again not in tokens
    assert second._chain_id(chains[0]) not in [*tokens, again]
    assert (
        first._chain_id(b"A" * (_CHAIN_KEPT + 1))
        == hashlib.sha256(b"A" * (_CHAIN_KEPT + 1)).digest()
    )

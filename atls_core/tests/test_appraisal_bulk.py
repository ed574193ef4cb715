"""Recording a report's worth at once, and what the hot path no longer recomputes.

``Appraisal.measure_many`` and ``claim_many`` must record exactly what one ``measure`` or
``claim`` call per item would; ``Evidence.digest`` remembers recent digests by exact bytes;
a cache that stores nothing is skipped without hashing the certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest

from atls_core import evidence as evidence_module
from atls_core.appraisal import Appraisal
from atls_core.appraisal_cache import AppraisalCache
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.policy import Policy
from atls_core.testing.facts import unit_spec

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
SPEC = unit_spec(
    "unit.bulk",
    media_type="application/x-unit",
    measurements=("image", "config", "kernel"),
    workload_identity=("image",),
)
SOURCE = EvidenceSource(transport=Transport.FILE, location="x")


def _appraisal() -> Appraisal:
    evidence = Evidence(media_type="application/x-unit", data=b"evidence", source=SOURCE)
    return Appraisal(spec=SPEC, policy=Policy(), evidence=evidence, clock=FixedClock(NOW))


VALUES: dict[str, Any] = {"kernel": b"\x0a\xbc", "image": "0xABCD", "config": b"\x00"}


def test_measure_many_records_what_measure_does_in_order() -> None:
    one_by_one, at_once = _appraisal(), _appraisal()
    for name, value in VALUES.items():
        one_by_one.measure(name, value)
    at_once.measure_many(VALUES)
    assert list(at_once.measurements.items()) == list(one_by_one.measurements.items())
    assert dict(at_once.measurements) == {"kernel": "0abc", "image": "abcd", "config": "00"}


@pytest.mark.parametrize(
    "values",
    [{"image": b"\x01", "undeclared": b"\x02"}, {"image": 7}],
    ids=["undeclared name", "a number"],
)
def test_measure_many_refuses_what_measure_refuses(values: dict[str, Any]) -> None:
    with pytest.raises(ATLSError) as info:
        _appraisal().measure_many(values)
    assert info.value.check == "plugins.contract"


def test_claim_many_keeps_earlier_claims_in_place() -> None:
    appraisal = _appraisal()
    appraisal.claim("first", 1)
    appraisal.claim_many({"second": "b", "first": 3, "third": [1]})
    assert list(appraisal.claims.items()) == [("first", 3), ("second", "b"), ("third", [1])]


def _uncached_digest(media_type: str, data: bytes) -> str:
    h = hashlib.sha256(media_type.encode() + len(data).to_bytes(8, "big"))
    h.update(data)
    return h.hexdigest()


def test_evidence_digest_is_remembered_by_exact_bytes_and_bounded() -> None:
    data = b"quote" * 100
    first = Evidence(media_type="application/x-unit", data=data, source=SOURCE)
    assert first.digest == _uncached_digest("application/x-unit", data)
    other_type = Evidence(media_type="application/x-other", data=data, source=SOURCE)
    assert other_type.digest == _uncached_digest("application/x-other", data) != first.digest
    endorsed = Evidence(
        media_type="application/x-unit", data=data, source=SOURCE, endorsements={"log": b"1"}
    )
    assert endorsed.digest not in (first.digest, other_type.digest)
    for index in range(3 * evidence_module._DIGEST_MEMO_SIZE):
        body = b"%d" % index
        evidence = Evidence(media_type="application/x-unit", data=body, source=SOURCE)
        assert evidence.digest == _uncached_digest("application/x-unit", body)
        assert len(evidence_module._DIGESTS) <= evidence_module._DIGEST_MEMO_SIZE
    large = bytes(evidence_module._DIGEST_KEPT + 1)
    Evidence(media_type="application/x-unit", data=large, source=SOURCE).digest  # noqa: B018
    assert all(len(kept) <= evidence_module._DIGEST_KEPT for _t, kept in evidence_module._DIGESTS)
    assert (
        Evidence(media_type="application/x-unit", data=bytearray(b"raw"), source=SOURCE).digest  # type: ignore[arg-type]
        == _uncached_digest("application/x-unit", b"raw")
    )


def test_a_cache_of_no_entries_is_not_enabled() -> None:
    assert not AppraisalCache(max_entries=0).enabled
    assert AppraisalCache(max_entries=1).enabled

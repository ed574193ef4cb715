"""``describe`` (``atls inspect``): a token decoded, signature NOT verified, by its variant only."""

from __future__ import annotations

import pytest

from atls_azure import specs
from atls_azure.testing.maa import StandInMaa
from atls_azure.validators import CvmTokenValidator, SgxTokenValidator
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport


def _evidence(data: bytes) -> Evidence:
    return Evidence(
        media_type=specs.MEDIA_TYPE,
        data=data,
        source=EvidenceSource(transport=Transport.FILE, location="token.jwt"),
    )


def test_the_matching_variant_shows_header_and_claims(maa: StandInMaa) -> None:
    claims = maa.cvm_claims(bytes(64))
    token = maa.sign(claims)
    description = CvmTokenValidator(maa.settings()).describe(_evidence(token.encode()))
    assert "signature NOT verified" in description["format"]
    assert description["claims"]["x-ms-azurevm-vmid"] == claims["x-ms-azurevm-vmid"]
    assert description["header"]["alg"] == "RS256"
    with pytest.raises(MalformedEvidence) as info:
        SgxTokenValidator(maa.settings()).describe(_evidence(token.encode()))
    assert info.value.check == "azure.attestation_type"


def test_not_a_token(maa: StandInMaa) -> None:
    with pytest.raises(MalformedEvidence) as info:
        CvmTokenValidator(maa.settings()).describe(_evidence(b"\x00\x01 not a token"))
    assert info.value.check == "jwt.format"

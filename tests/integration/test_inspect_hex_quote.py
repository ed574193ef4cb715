"""``atls inspect`` on a quote saved as hex text, with every plugin installed.

ASCII ``0`` is 0x30, the tag a DER certificate starts with, and every hex quote
starts with it (``04...``, ``03...``, ``0x...``): such a file must reach the
evidence readers, as ``atls verify-evidence`` reads it, not be refused as a
malformed certificate (which exited 1, "refused", for a file never appraised).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atls_core.testing.inspection import described_by, inspect_json
from atls_core.testing.vectors import Vector
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote

SIMULATOR = "tdx/neg-dstack-simulator-b0c06f-eventlog-ok-tcb-nomatch"


@pytest.fixture(scope="module")
def quote() -> bytes:
    return make_tdx_quote(DcapTestPki.generate(seed="inspect hex quote"), b"\x42" * 64)


@pytest.mark.parametrize("prefix", ["", "0x"])
@pytest.mark.parametrize("validator", [[], ["--validator", "tdx.dcap"]], ids=["all", "tdx.dcap"])
def test_a_hex_quote_is_decoded_not_refused_as_a_certificate(
    tmp_path: Path,
    quote: bytes,
    prefix: str,
    validator: list[str],
) -> None:
    path = tmp_path / "quote.hex"
    path.write_text(prefix + quote.hex() + "\n")
    status, document, err = inspect_json(str(path), *validator)
    assert (status, err) == (0, "")
    assert "certificate" not in document
    described = described_by(document, "tdx.dcap")
    assert described["measurements"]["mrtd"] == DEFAULT_MRTD.hex()
    assert described["report_data"] == "42" * 64


@pytest.mark.vectors
def test_the_recorded_hex_quote_of_the_user_trial(atls_vector: Vector) -> None:
    path = atls_vector(SIMULATOR, "quote.hex")
    for validator in ([], ["--validator", "tdx.dcap"]):
        status, document, err = inspect_json(str(path), *validator)
        assert (status, err) == (0, "")
        assert described_by(document, "tdx.dcap")["format"] == "Intel TDX quote v4"

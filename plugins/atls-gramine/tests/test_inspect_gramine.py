"""``describe`` and ``atls inspect`` on Gramine RA-TLS certificates: decoded, NOT verified.

The SGX quote in the certificate's extension is shown with the names
``reference_values`` and the policy options use, and the key binding is spelt
out so it can be compared with the certificate's ``key_sha256``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_core.testing.inspection import described_by, inspect_json
from atls_core.testing.vectors import Vector
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRSIGNER, make_sgx_quote, make_tdx_quote
from atls_gramine.issuer import build_ratls_certificate
from atls_gramine.specs import LEGACY_OID, TCG_OID, VALIDATOR_SPEC
from atls_gramine.testing.certs import make_ratls_credentials, spki_of
from atls_gramine.validator import GramineRatlsValidator

MRENCLAVE = b"\x6e" * 32
KONVERA = "konvera-gramine-ratls-cert-00606a-outofdate"
CCC = "neg-ccc-gramine-cert-00606a-debug-enclave"


def _described(validator: GramineRatlsValidator, der: bytes) -> dict[str, Any]:
    evidence = validator.evidence_from_certificate(PeerCertificate.from_der(der))
    return dict(validator.describe(evidence))


def test_the_tcg_extension_is_described_with_its_key_binding(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    credentials = make_ratls_credentials(
        pki, key=key, mrenclave=MRENCLAVE, isv_prod_id=7, isv_svn=3
    )
    shown = _described(validator, credentials.certificate_der)
    assert shown["format"] == (
        "Gramine RA-TLS tcg-dice extension: SGX quote v3, signature NOT verified"
    )
    assert list(shown["measurements"]) == list(VALIDATOR_SPEC.measurements)
    assert shown["measurements"] == {
        "mrenclave": MRENCLAVE.hex(),
        "mrsigner": DEFAULT_MRSIGNER.hex(),
    }
    assert (shown["isv_prod_id"], shown["isv_svn"], shown["debug"]) == (7, 3, False)
    assert shown["attributes"]["init"] is shown["attributes"]["mode64"] is True
    binding = shown["key_binding"]
    assert binding["scheme"] == "gramine-tcg"
    assert binding["pubkey_hash"] == hashlib.sha256(spki_of(key)).hexdigest()
    assert binding["report_data_is_claims_hash"] is True
    assert "report_data" not in shown["fields"]


def test_the_legacy_extension_and_a_debug_enclave(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    credentials = make_ratls_credentials(pki, key=key, extensions=("legacy",), debug=True)
    shown = _described(validator, credentials.certificate_der)
    assert shown["format"].startswith("Gramine RA-TLS legacy extension: SGX quote v3")
    assert shown["debug"] is True
    assert shown["attributes"]["debug"] is True
    assert shown["key_binding"]["scheme"] == "gramine-legacy"
    assert shown["report_data"] == hashlib.sha256(spki_of(key)).hexdigest() + "00" * 32


def test_a_tdx_quote_in_the_extension_is_not_described_as_sgx(
    validator: GramineRatlsValidator, pki: DcapTestPki
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    der = build_ratls_certificate(
        key, legacy_quote=make_tdx_quote(pki, bytes(64)), tcg_evidence=None
    )
    with pytest.raises(MalformedEvidence) as info:
        _described(validator, der)
    assert info.value.check == "gramine.tee_type"


@pytest.mark.parametrize("prefix", [b"", b"0x"])
def test_a_hex_quote_file_is_named_as_such(
    validator: GramineRatlsValidator, pki: DcapTestPki, prefix: bytes
) -> None:
    """Hex text starts with ASCII 0, the DER SEQUENCE tag: it is no certificate either."""
    text = prefix + make_sgx_quote(pki, bytes(64)).hex().encode()
    with pytest.raises(MalformedEvidence) as info:
        validator.evidence_from_file(text, name="quote.hex")
    assert info.value.check == "gramine.file.quote"
    assert "hex-encoded SGX quote (version 3)" in info.value.reason


def test_atls_inspect_decodes_the_certificate(pki: DcapTestPki, tmp_path: Path) -> None:
    credentials = make_ratls_credentials(pki, mrenclave=MRENCLAVE)
    path = tmp_path / "server.pem"
    path.write_bytes(credentials.certificate_pem)
    status, document, _ = inspect_json(str(path))
    assert status == 0
    readers = {e["oid"]: e["read_by"] for e in document["certificate"]["extensions"]}
    assert readers[TCG_OID] == readers[LEGACY_OID] == "gramine.ratls"
    shown = described_by(document, "gramine.ratls")
    assert shown["measurements"]["mrenclave"] == MRENCLAVE.hex()
    assert shown["key_binding"]["pubkey_hash"] == document["certificate"]["key_sha256"]


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("folder", "name", "scheme", "debug"),
    [
        (KONVERA, "tlscert.pem", "gramine-legacy", False),
        (CCC, "gramine-cert.pem", "gramine-tcg", True),
    ],
)
def test_atls_inspect_on_recorded_certificates(
    vector: Vector,
    folder: str,
    name: str,
    scheme: str,
    debug: bool,
) -> None:
    status, document, _ = inspect_json(str(vector("gramine", folder, name)))
    assert status == 0
    shown = described_by(document, "gramine.ratls")
    assert shown["key_binding"]["scheme"] == scheme
    assert shown["debug"] is debug
    key = document["certificate"]["key_sha256"]
    claimed = shown["key_binding"].get("pubkey_hash", shown["report_data"][:64])
    assert claimed == key

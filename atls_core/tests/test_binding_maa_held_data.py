"""The maa-held-data binding scheme (Azure Attestation SGX/TDX runtime data)."""

from __future__ import annotations

import hashlib

import pytest

from atls_core import binding as b
from atls_core.errors import BindingMismatch
from atls_core.testing.conformance import other_spki


def test_binds_key_carried_in_held_data() -> None:
    spki = other_spki()
    held = b'{"jwk": "..."}'
    report = hashlib.sha256(held).digest() + bytes(32)
    material = {"held_data": held, "held_key_spki": spki}
    result = b.bind("maa-held-data", b.BindingContext(spki_der=spki), report, material=material)
    assert result.verified
    assert result.freshness is b.Freshness.KEY_ONLY
    assert b.report_data_for("maa-held-data", spki_der=spki, material=material) == report


def test_held_key_must_be_tls_key() -> None:
    spki, held_key = other_spki(), other_spki()
    held = b"data"
    report = hashlib.sha256(held).digest() + bytes(32)
    with pytest.raises(BindingMismatch) as info:
        b.bind(
            "maa-held-data",
            b.BindingContext(spki_der=spki),
            report,
            material={"held_data": held, "held_key_spki": held_key},
        )
    assert info.value.check == "binding.held_key"


def test_report_data_must_be_hash_of_held_data() -> None:
    spki = other_spki()
    with pytest.raises(BindingMismatch) as info:
        b.bind(
            "maa-held-data",
            b.BindingContext(spki_der=spki),
            hashlib.sha256(b"other").digest() + bytes(32),
            material={"held_data": b"data", "held_key_spki": spki},
        )
    assert info.value.check == "binding.report_data"


def test_zero_tail_is_compared() -> None:
    spki = other_spki()
    with pytest.raises(BindingMismatch):
        b.bind(
            "maa-held-data",
            b.BindingContext(spki_der=spki),
            hashlib.sha256(b"data").digest() + b"\x01" * 32,
            material={"held_data": b"data", "held_key_spki": spki},
        )


def test_material_required() -> None:
    spki = other_spki()
    with pytest.raises(BindingMismatch) as info:
        b.bind("maa-held-data", b.BindingContext(spki_der=spki), bytes(64))
    assert info.value.check == "binding.material"

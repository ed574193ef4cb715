"""Shared fixtures: a stand-in MAA instance on loopback and TLS keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_azure.testing.maa import StandInMaa


@pytest.fixture
def maa() -> Iterator[StandInMaa]:
    with StandInMaa() as service:
        yield service


@pytest.fixture(scope="module")
def module_maa() -> Iterator[StandInMaa]:
    with StandInMaa() as service:
        yield service


def tls_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, spki


def vectors() -> Path:
    root = os.environ.get("ATLS_VECTORS")
    if not root:
        pytest.skip("ATLS_VECTORS is not set")
    return Path(root)

"""Shared fixtures: a stand-in MAA, a server written as for pyatls, validators that trust both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from atls_pyatls.azure import AciValidator
from atls_pyatls.testing import PyatlsStyleServer, aci_validator_for

from atls_azure.testing.maa import StandInMaa


@pytest.fixture
def maa() -> Iterator[StandInMaa]:
    with StandInMaa() as service:
        yield service


@pytest.fixture
def server(maa: StandInMaa) -> Iterator[PyatlsStyleServer]:
    with PyatlsStyleServer(maa) as https:
        yield https


@pytest.fixture
def aci(maa: StandInMaa) -> Callable[..., AciValidator]:
    """``AciValidator`` with pyatls's arguments, trusting the stand-in MAA (http on loopback,
    a tests-only setting: ``allow_insecure``)."""

    def build(policies: list[str] | None = None, **settings: Any) -> AciValidator:
        return aci_validator_for(maa, policies, **settings)

    return build

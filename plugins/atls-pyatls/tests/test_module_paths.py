"""pyatls's module paths and names all import, as the objects atls-pyatls provides."""

from __future__ import annotations

import importlib

import atls_pyatls
import pytest
from atls_pyatls.requests_adapter import HTTPAAdapter

NAMES = {
    "atls": ["ATLSContext", "HTTPAConnection"],
    "atls.atls_context": ["ATLSContext"],
    "atls.httpa_connection": ["HTTPAConnection"],
    "atls.validators": ["Validator"],
    "atls.validators.validator": ["Validator"],
    "atls.validators.azure.aas": ["AciValidator", "CvmValidator", "PUBLIC_JKUS"],
    "atls.validators.azure.aas.aci_validator": ["AciValidator"],
    "atls.validators.azure.aas.cvm_validator": ["CvmValidator"],
    "atls.validators.azure.aas.shared": ["PUBLIC_JKUS"],
    "atls.utils.requests": ["HTTPAAdapter"],
    "atls.utils.requests.adapter": ["HTTPAAdapter"],
    "atls.utils.urllib3": ["inject_into_urllib3", "extract_from_urllib3"],
    "atls.utils.urllib3.patch": ["inject_into_urllib3", "extract_from_urllib3"],
}
"""pyatls 0.0.4's public modules and what each exports."""

OURS = {
    **{name: getattr(atls_pyatls, name) for name in atls_pyatls.__all__},
    "HTTPAAdapter": HTTPAAdapter,
}


@pytest.mark.parametrize("module", sorted(NAMES))
def test_module_exports(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(NAMES[module])
    for name in NAMES[module]:
        assert getattr(imported, name) is OURS[name], (module, name)


def test_version() -> None:
    from importlib.metadata import version

    assert version("atls-pyatls") == atls_pyatls.__version__

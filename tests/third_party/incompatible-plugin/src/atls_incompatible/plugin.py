"""Test fixture: a well-formed plugin that atls must refuse before importing it.

Its distribution requires atls-core>=99, so the core refuses it with both
versions named; this module must never be imported.
"""

from __future__ import annotations

from atls_core import Transport, ValidatorSpec, hookimpl
from atls_core.registry import ValidatorRegistrar
from atls_core.testing.simulated import SimulatedValidator

SPEC = ValidatorSpec(
    id="incompatible.future",
    media_types=("application/vnd.atls-incompatible",),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="future",
    oids=("1.3.9999.255.43",),
    insecure=True,
)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(SPEC, lambda settings: SimulatedValidator(settings, spec=SPEC))

"""Test fixture: its validator reads OID 1.3.9999.255.42, which atls-example owns.

Whichever of the two loads second is refused with ``DuplicateRegistration``;
neither silently shadows the other.
"""

from __future__ import annotations

from atls_core import Transport, ValidatorSpec, hookimpl
from atls_core.registry import ValidatorRegistrar
from atls_core.testing.simulated import SimulatedValidator

SPEC = ValidatorSpec(
    id="duplicate.hmac",
    media_types=("application/vnd.atls-example.hmac",),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="example-hmac",
    oids=("1.3.9999.255.42",),
    settings=("hardware_key",),
    insecure=True,
)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(SPEC, lambda settings: SimulatedValidator(settings, spec=SPEC))

"""Entry point of the example plugin: specs and hooks only, nothing heavy.

The validator and issuer live in :mod:`atls_example.hmac_tee`, imported when a
factory runs, so discovering this plugin costs one small import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core import CliOption, IssuerSpec, Transport, ValidatorSpec, hookimpl

if TYPE_CHECKING:
    from atls_core.interfaces import Issuer, Settings, Validator
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar

MEDIA_TYPE = "application/vnd.atls-example.hmac"
OID = "1.3.9999.255.42"
"""Unregistered test arc: never used by real evidence."""

VALIDATOR_SPEC = ValidatorSpec(
    id="example.hmac",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="example-hmac",
    oids=(OID,),
    description="TOY: HMAC-SHA256 'evidence' under a shared key (insecure example plugin)",
    measurements=("image",),
    workload_identity=("image",),
    settings=("key", "key_file"),
    cli_options=(
        CliOption(
            flag="--key-file",
            setting="key_file",
            help="file holding the hex HMAC key shared with the issuer",
            metavar="FILE",
        ),
    ),
    insecure=True,
)
"""``image`` identifies the workload: the core refuses a policy that pins nothing
(unless it says ``allow_any_workload``), so this spec only names what can be pinned."""

ISSUER_SPEC = IssuerSpec(
    id="example.hmac",
    validator_id="example.hmac",
    binding_scheme="atls-v1",
    media_type=MEDIA_TYPE,
    transport=Transport.CERTIFICATE,
    oid=OID,
    description="TOY: HMAC-SHA256 'evidence' issuer (insecure example plugin)",
    settings=("key", "key_file", "image", "debug", "lifetime"),
    insecure=True,
)


def _validator(settings: Settings) -> Validator:
    from atls_example.hmac_tee import HmacValidator

    return HmacValidator(settings)


def _issuer(settings: Settings) -> Issuer:
    from atls_example.hmac_tee import HmacIssuer

    return HmacIssuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(VALIDATOR_SPEC, _validator)


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    registry.register(ISSUER_SPEC, _issuer)

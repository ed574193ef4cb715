"""Entry point of the atls-tdx plugin: registration hooks only.

Importing this module loads the specs (facts, no code); the validators
(dcap-qvl) and the issuers (configfs, the dstack agent's HTTP client) are
imported when a factory builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atls_core.hookspecs import hookimpl
from atls_tdx.specs import (
    CONFIGFS_TSM_ISSUER_SPEC,
    DSTACK_AGENT_ISSUER_SPEC,
    DSTACK_CHALLENGE_SPEC,
    DSTACK_SPEC,
    TDX_DCAP_SPEC,
)

if TYPE_CHECKING:
    from atls_core.interfaces import Issuer, Settings, Validator
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar

__all__ = ["atls_register_issuers", "atls_register_validators"]


def _tdx_dcap(settings: Settings) -> Validator:
    from atls_tdx.dcap_validator import TdxDcapValidator

    return TdxDcapValidator(settings)


def _dstack(settings: Settings) -> Validator:
    from atls_tdx.dstack import DstackValidator

    return DstackValidator(settings)


def _dstack_challenge(settings: Settings) -> Validator:
    from atls_tdx.dstack import DstackValidator

    return DstackValidator.challenge_validator(settings)


def _configfs_tsm(settings: Settings) -> Issuer:
    from atls_tdx.issuers import ConfigfsTsmIssuer

    return ConfigfsTsmIssuer(settings)


def _dstack_agent(settings: Settings) -> Issuer:
    from atls_tdx.issuers import DstackAgentIssuer

    return DstackAgentIssuer(settings)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    registry.register(TDX_DCAP_SPEC, _tdx_dcap)
    registry.register(DSTACK_SPEC, _dstack)
    registry.register(DSTACK_CHALLENGE_SPEC, _dstack_challenge)


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    registry.register(CONFIGFS_TSM_ISSUER_SPEC, _configfs_tsm)
    registry.register(DSTACK_AGENT_ISSUER_SPEC, _dstack_agent)

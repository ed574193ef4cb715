"""A simulated TEE: an issuer/validator pair over a locally generated key.

INSECURE BY DESIGN.  The "hardware" is an Ed25519 key in this process, so the
evidence proves nothing about where code runs.  It exists so that the TLS
layer, the HTTP integrations, the demo and plugin authors' tests can run end to
end without TEE hardware.  Its specs are marked ``insecure``: the registry
refuses to build it unless configuration explicitly sets
``allow_insecure_test_validators = true``.

Evidence is a JSON envelope ``{"payload": b64, "signature": b64}``; the payload
carries report data, measurements, a TCB status, a debug flag and a validity
window, all covered by the signature.

This module is atls-core's ``insecure`` entry point, imported by every
``atls plugins`` and by the registry whenever the simulated TEE is selected:
cryptography (and the configuration and appraisal modules) load when a key is
made or used, not on import.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from atls_core.errors import MalformedEvidence, StaleEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.hookspecs import hookimpl
from atls_core.interfaces import CliOption, IssuerSpec, Settings, ValidatorBase, ValidatorSpec
from atls_core.specs import issuer_spec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from atls_core.appraisal import Appraisal
    from atls_core.clock import Clock
    from atls_core.interfaces import ChallengeRequest, ChallengeResponse, ReportData
    from atls_core.registry import IssuerRegistrar, ValidatorRegistrar

__all__ = [
    "CHALLENGE_PATH",
    "MEDIA_TYPE",
    "OID",
    "SimulatedHardware",
    "SimulatedIssuer",
    "SimulatedValidator",
]

MEDIA_TYPE = "application/vnd.atls.simulated+json"
OID = "1.3.9999.255.1"
"""Test-only extension OID (unregistered arc, never used for real evidence)."""
CHALLENGE_PATH = "/.well-known/atls/simulated-evidence"
MEASUREMENTS = ("image", "config")
DEFAULT_MEASUREMENTS = {"image": "1a" * 32, "config": "c0" * 32}
"""What the simulated issuer measures unless its settings say otherwise."""

VALIDATOR_SPEC = ValidatorSpec(
    id="insecure.simulated",
    media_types=(MEDIA_TYPE,),
    binding_schemes=("atls-v1",),
    transport=Transport.CERTIFICATE,
    tee_type="simulated",
    oids=(OID,),
    description="INSECURE simulated TEE for tests and demos (certificate-borne evidence)",
    measurements=MEASUREMENTS,
    workload_identity=MEASUREMENTS,
    settings=("hardware_key",),
    cli_options=(
        CliOption(
            flag="--hardware-key",
            setting="hardware_key",
            help="hex Ed25519 public key of the simulated hardware",
            metavar="HEX",
        ),
    ),
    insecure=True,
)
CHALLENGE_VALIDATOR_SPEC = attrs.evolve(
    VALIDATOR_SPEC,
    id="insecure.simulated-challenge",
    binding_schemes=("challenge-v1",),
    transport=Transport.CHALLENGE,
    oids=(),
    description="INSECURE simulated TEE for tests and demos (evidence fetched by challenge)",
)
_ISSUER_SETTINGS = (
    "hardware_key",
    "measurements",
    "debug",
    "tcb_status",
    "advisory_ids",
    "lifetime",
)
ISSUER_SPEC = issuer_spec(
    VALIDATOR_SPEC,
    id="insecure.simulated",
    description="INSECURE simulated TEE issuer",
    settings=_ISSUER_SETTINGS,
)
CHALLENGE_ISSUER_SPEC = issuer_spec(
    CHALLENGE_VALIDATOR_SPEC,
    id="insecure.simulated-challenge",
    description="INSECURE simulated TEE issuer",
    settings=_ISSUER_SETTINGS,
)


@attrs.frozen
class SimulatedHardware:
    """The simulated root of trust: one Ed25519 key pair."""

    private_key: Ed25519PrivateKey = attrs.field(repr=False)

    @classmethod
    def generate(cls) -> SimulatedHardware:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key_hex(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return raw.hex()

    @property
    def private_key_hex(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return raw.hex()

    def validator_settings(self) -> dict[str, Any]:
        return {"hardware_key": self.public_key_hex}

    def issuer_settings(self, **extra: Any) -> dict[str, Any]:
        from atls_core.secret import Secret

        return {"hardware_key": Secret(self.private_key_hex, "simulated hardware"), **extra}


def _hardware_key(settings: Settings) -> bytes:
    from atls_core.settings import load
    from atls_core.testing.simulated_settings import HardwareKey

    return load(HardwareKey, settings, partial=True).hardware_key


class SimulatedIssuer:
    """Signs report data with the simulated hardware key."""

    def __init__(
        self, settings: Settings, *, spec: IssuerSpec = ISSUER_SPEC, clock: Clock | None = None
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from atls_core.clock import SystemClock

        self.spec = spec
        self._key = Ed25519PrivateKey.from_private_bytes(_hardware_key(settings))
        self._measurements: Mapping[str, str] = dict(
            settings.get("measurements", DEFAULT_MEASUREMENTS)
        )
        self._debug = bool(settings.get("debug", False))
        self._tcb_status = str(settings.get("tcb_status", "UpToDate"))
        self._advisories = [str(a) for a in settings.get("advisory_ids", ())]
        self._lifetime = dt.timedelta(seconds=float(settings.get("lifetime", 3600)))
        self._clock = clock or SystemClock()

    def issue(self, report_data: bytes, *, certificate_sha256: bytes | None = None) -> Evidence:
        now = self._clock.now()
        payload = {
            "version": 1,
            "report_data": report_data.hex(),
            "measurements": dict(self._measurements),
            "debug": self._debug,
            "tcb_status": self._tcb_status,
            "advisory_ids": self._advisories,
            "not_before": int(now.timestamp()),
            "not_after": int((now + self._lifetime).timestamp()),
        }
        if certificate_sha256 is not None:
            payload["certificate_sha256"] = certificate_sha256.hex()
        raw = json.dumps(payload, sort_keys=True).encode()
        envelope = {
            "payload": base64.b64encode(raw).decode(),
            "signature": base64.b64encode(self._key.sign(raw)).decode(),
        }
        transport = self.spec.transport
        return Evidence(
            media_type=MEDIA_TYPE,
            data=json.dumps(envelope).encode(),
            source=EvidenceSource(transport=transport, oid=self.spec.oid),
        )


class SimulatedValidator(ValidatorBase):
    def __init__(self, settings: Settings, *, spec: ValidatorSpec = VALIDATOR_SPEC) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self.spec = spec
        self._key: Ed25519PublicKey = Ed25519PublicKey.from_public_bytes(_hardware_key(settings))

    # -- challenge transport -------------------------------------------------

    def challenge(self, nonce: bytes) -> ChallengeRequest:
        from atls_core.interfaces import ChallengeRequest  # built when first used, not listed

        body = json.dumps({"nonce": nonce.hex()}).encode()
        return ChallengeRequest(
            method="POST",
            path=CHALLENGE_PATH,
            headers={"Content-Type": "application/json"},
            body=body,
        )

    def evidence_from_challenge(self, response: ChallengeResponse) -> Evidence:
        return Evidence(
            media_type=MEDIA_TYPE,
            data=response.ok_body(),
            source=EvidenceSource(transport=Transport.CHALLENGE, location=CHALLENGE_PATH),
        )

    # -- appraisal -----------------------------------------------------------

    def _payload(self, evidence: Evidence) -> dict[str, Any]:
        from cryptography.exceptions import InvalidSignature

        try:
            envelope = json.loads(evidence.data)
            raw = base64.b64decode(envelope["payload"], validate=True)
            signature = base64.b64decode(envelope["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise MalformedEvidence(
                "not a simulated-TEE envelope", check="simulated.format"
            ) from None
        try:
            self._key.verify(signature, raw)
        except InvalidSignature:
            raise UntrustedChain(
                "signature does not verify under the configured simulated hardware key",
                check="simulated.signature",
            ) from None
        try:
            payload: dict[str, Any] = json.loads(raw)
            if payload.get("version") != 1:
                raise MalformedEvidence(
                    "unsupported payload version",
                    check="simulated.version",
                    expected=1,
                    actual=payload.get("version"),
                )
            bytes.fromhex(payload["report_data"])
            int(payload["not_before"]), int(payload["not_after"])
        except (ValueError, KeyError, TypeError):
            raise MalformedEvidence(
                "malformed simulated payload", check="simulated.format"
            ) from None
        return payload

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The payload as it reads, signature NOT checked (``atls inspect``)."""
        try:
            payload = json.loads(base64.b64decode(json.loads(evidence.data)["payload"]))
            if not isinstance(payload, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):
            raise MalformedEvidence(
                "not a simulated-TEE envelope", check="simulated.format"
            ) from None
        return {
            "format": "INSECURE simulated-TEE evidence (proves nothing)",
            "measurements": dict(payload.get("measurements") or {}),
            "report_data": payload.get("report_data"),
            "tcb_status": payload.get("tcb_status"),
            "debug": payload.get("debug"),
            "not_before": payload.get("not_before"),
            "not_after": payload.get("not_after"),
            "certificate_sha256": payload.get("certificate_sha256"),
        }

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        payload = self._payload(evidence)
        now = appraisal.now
        not_before = dt.datetime.fromtimestamp(int(payload["not_before"]), dt.UTC)
        not_after = dt.datetime.fromtimestamp(int(payload["not_after"]), dt.UTC)
        if now < not_before or now >= not_after:
            raise StaleEvidence(
                "simulated evidence is outside its validity window",
                check="simulated.validity",
                expected=f"{not_before.isoformat()} .. {not_after.isoformat()}",
                actual=now.isoformat(),
            )
        material = {}
        if self.spec.binding_scheme == "challenge-v1":
            certificate = payload.get("certificate_sha256")
            if not isinstance(certificate, str):
                raise MalformedEvidence(
                    "challenge evidence names no certificate", check="simulated.format"
                )
            material = {"certificate_sha256": bytes.fromhex(certificate)}
        appraisal.set_evidence_time(not_before)
        appraisal.valid_until(not_after, "simulated evidence not_after")
        appraisal.set_debug(bool(payload.get("debug")))
        appraisal.set_tcb(str(payload.get("tcb_status")), list(payload.get("advisory_ids", [])))
        for name, value in dict(payload.get("measurements", {})).items():
            appraisal.measure(str(name), str(value))
        appraisal.claim("simulated", True)
        appraisal.warn("simulated", "INSECURE simulated TEE: this evidence proves nothing")
        from atls_core.interfaces import ReportData  # built when first used, not listed

        return ReportData(value=bytes.fromhex(payload["report_data"]), material=material)


@hookimpl
def atls_register_validators(registry: ValidatorRegistrar) -> None:
    for spec in (VALIDATOR_SPEC, CHALLENGE_VALIDATOR_SPEC):
        registry.register(spec, functools.partial(SimulatedValidator, spec=spec))


@hookimpl
def atls_register_issuers(registry: IssuerRegistrar) -> None:
    for spec in (ISSUER_SPEC, CHALLENGE_ISSUER_SPEC):
        registry.register(spec, functools.partial(SimulatedIssuer, spec=spec))

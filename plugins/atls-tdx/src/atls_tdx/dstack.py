"""``tdx.dstack`` and ``tdx.dstack-challenge``: dstack deployments, one verification.

Order of trust:

1. the quote is verified by dcap-qvl (Intel's signatures, collateral, TCB);
2. the event log is replayed, runtime events re-digested from name and
   payload, and the result must equal RTMR0-3 of the quote -- only then does
   anything in the log count;
3. the application's identity is read from RTMR3's system events (app id,
   compose hash, OS image hash) and checked against policy; a compose document
   or certificate app id supplied by the server must agree with the log;
4. the binding: RA-TLS certificates bind the TLS key through report data
   (SHA-512("ratls-cert:" || SPKI)); the challenge protocol binds the nonce
   through report data (``challenge-v1``) and the certificate through the last
   'New TLS Certificate' RTMR3 event.

``policy.app_compose`` is the deployed ``app-compose.json`` *text*: dstack
measures SHA-256 of the file's exact bytes (``dstack-util``'s
``measure_app_info`` hashes the file; the VMM writes the text it is given
verbatim), and its own tools write that file differently -- the VMM CLI with
``json.dumps(indent=4, ensure_ascii=False)`` in insertion order, the VMM web UI
with ``JSON.stringify`` (compact, insertion order), the dstack SDKs compact with
keys sorted (:func:`sdk_app_compose`).  No serialisation of a mapping is
canonical, so a mapping is refused when the configuration is loaded
(:meth:`DstackValidator.check_policy`), naming the text to pass instead.

Pinning is the core's rule: a policy must pin one of ``spec.workload_identity``
(the compose hash, a non-zero MRCONFIGID, or RTMR3 for certificates) or set
``app_compose`` or ``allowed_compose_hashes``, or the appraisal is refused.  The
app id (``app_id``, ``allowed_app_ids``) is checked when given but does not pin:
the host chooses it (see :data:`atls_tdx.specs.DSTACK_WORKLOAD`).  The boot chain (MRTD,
RTMR0-2) is pinned with enforced ``policy.reference_values``; while it is not,
the result says so with a ``dstack.boot_chain`` warning: any firmware, kernel
and kernel command line would pass.

AMD SEV-SNP (``.8`` attestations whose platform is SEV-SNP): the report is
handed to atls-snp's ``snp.report`` through the registry (this plugin does not
import atls-snp; the ``snp_*`` settings are passed on as its settings), the
application is read from the MrConfig document once the verified HOST_DATA
equals its hash, and the report data is bound as above (see
:mod:`atls_tdx.dstack_snp`).  There the boot chain is the launch MEASUREMENT.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.errors import (
    BindingMismatch,
    ConfigurationError,
    MalformedEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import (
    ChallengeRequest,
    ChallengeResponse,
    ReportData,
    Settings,
    ValidatorBase,
    ValidatorSpec,
)
from atls_core.policy import Policy
from atls_dcap.settings import DCAP_SETTINGS
from atls_tdx.dstack_attestation import decode_app_info
from atls_tdx.dstack_eventlog import DstackFacts, check_replay, dstack_facts, parse_event_log
from atls_tdx.dstack_evidence import (
    evidence_from_attestation,
    evidence_from_dstack_certificate,
    evidence_from_quote_document,
    required_rtmrs,
)
from atls_tdx.dstack_snp import describe_sev_snp, snp_settings, verify_sev_snp
from atls_tdx.specs import (
    DSTACK_CHALLENGE_PATH,
    DSTACK_CHALLENGE_SPEC,
    DSTACK_SNP_BOOT_CHAIN,
    DSTACK_SNP_MEDIA_TYPE,
    DSTACK_SNP_POLICY_OPTIONS,
    DSTACK_SPEC,
)
from atls_tdx.tdx_common import make_verifier, verify_tdx_quote

__all__ = ["DstackValidator", "compose_hash", "expected_mr_config_id", "sdk_app_compose"]

_BOOT_CHAIN = ("mrtd", "rtmr0", "rtmr1", "rtmr2")
_ALLOW_LISTS = (
    ("allowed_compose_hashes", 32, "dstack.compose_hash"),
    ("allowed_app_ids", 20, "dstack.app_id"),
    ("allowed_os_image_hashes", 32, "dstack.os_image_hash"),
)
"""Allow-list options: value size in bytes and the check that applies them."""
_MR_CONFIG_ID_COMPOSE = 0x01


def compose_hash(app_compose: bytes | str) -> bytes:
    """dstack's compose hash: SHA-256 of the exact app-compose document (UTF-8)."""
    data = app_compose.encode() if isinstance(app_compose, str) else app_compose
    return hashlib.sha256(data).digest()


def _sdk_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("app-compose keys must be strings")
        return {key: _sdk_value(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sdk_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sdk_top_level(key: str, value: Any) -> bool:
    """Members the SDKs' ``AppCompose`` round trip keeps: not private, not null or NaN."""
    if key.startswith("_") or value is None:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def sdk_app_compose(app_compose: Mapping[str, Any]) -> str:
    """The app-compose text a dstack SDK writes for ``app_compose`` (and hashes).

    As the dstack SDKs' ``get_compose_hash`` (its ``AppCompose`` round trip and
    ``to_deterministic_json``): top-level members that are ``None``, NaN or
    infinite, or whose name starts with ``_``, are left out (as are ``None``
    members of ``docker_config``), ``runner`` is written as a string, keys are
    sorted at every level, no whitespace (``separators=(",", ":")``), non-ASCII
    characters kept as they are (``ensure_ascii=False``), deeper NaN and
    infinities written as ``null``; the compose hash is SHA-256 of its UTF-8
    bytes.  Apps deployed through an SDK (Phala Cloud, and what secureai's
    ``DstackTDXVerifier(app_compose={...})`` assumes) have exactly this text;
    apps deployed with the VMM CLI or web UI do not -- pass their
    ``app-compose.json`` text as it is.
    """
    if not all(isinstance(key, str) for key in app_compose):
        raise TypeError("app-compose keys must be strings")
    top = {key: value for key, value in app_compose.items() if _sdk_top_level(key, value)}
    if "runner" in top:
        top["runner"] = str(top["runner"])
    docker = top.get("docker_config")
    if isinstance(docker, Mapping):
        top["docker_config"] = {k: v for k, v in docker.items() if v is not None}
    return json.dumps(_sdk_value(top), separators=(",", ":"), ensure_ascii=False)


def _app_compose_document(document: Any) -> bytes:
    """``policy.app_compose`` as the bytes to hash; a mapping is refused with the reason."""
    if isinstance(document, str):
        return document.encode()
    if isinstance(document, (bytes, bytearray)):
        return bytes(document)
    if isinstance(document, Mapping):
        try:
            text: str | None = sdk_app_compose(document)
        except (TypeError, ValueError):
            text = None
        sdk = (
            f"; for an app deployed with a dstack SDK (Phala Cloud; what secureai assumes) "
            f"that text is atls_tdx.dstack.sdk_app_compose(mapping) (compose hash "
            f"{compose_hash(text).hex()}, the error's expected value)"
            if text is not None
            else ""
        )
        raise ConfigurationError(
            "policy.app_compose must be the deployed app-compose.json text, not a mapping: "
            "dstack hashes the file's exact bytes and its tools serialise it differently "
            "(VMM CLI: 4-space indents, insertion order; VMM web UI: compact, insertion order; "
            "dstack SDKs: compact, sorted keys), so no form of a mapping is canonical. Pass the "
            "file's text, e.g. Path('app-compose.json').read_text()" + sdk + "; or pin "
            "policy.allowed_compose_hashes",
            check="config.policy",
            expected=text,
        )
    raise ConfigurationError(
        "policy.app_compose must be the deployed app-compose.json text (a string)",
        check="config.policy",
        actual=type(document).__name__,
    )


def _configured_compose_hash(document: Any) -> bytes:
    """The compose hash ``policy.app_compose`` pins; hashed once per document text."""
    if isinstance(document, (str, bytes)):
        return _compose_hash_of_text(document)
    return compose_hash(_app_compose_document(document))  # refused, or bytes-like: hashed


@functools.lru_cache(maxsize=16)
def _compose_hash_of_text(document: str | bytes) -> bytes:
    return compose_hash(_app_compose_document(document))


def expected_mr_config_id(compose: bytes) -> bytes:
    """MRCONFIGID of a dstack TD that binds its compose hash: 0x01 || hash || zeros."""
    if len(compose) != 32:
        raise ValueError("a dstack compose hash is 32 bytes (SHA-256)")
    return bytes([_MR_CONFIG_ID_COMPOSE]) + compose + bytes(48 - 1 - len(compose))


def _hex_values(policy: Policy, name: str, size: int) -> frozenset[bytes] | None:
    """An allow-list option's values; parsed once per list content, not per appraisal."""
    raw = policy.option(name)
    if raw is None:
        return None
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ConfigurationError(
            f"policy.{name} must be a list of hex strings", check="config.policy"
        )
    items = tuple(raw)  # the content, not the list: a list changed later is parsed again
    try:
        return _parsed_hex_values(name, size, items)
    except TypeError:  # an unhashable item, refused by the parser itself
        return _parsed_hex_values.__wrapped__(name, size, items)


@functools.lru_cache(maxsize=64)
def _parsed_hex_values(name: str, size: int, items: tuple[Any, ...]) -> frozenset[bytes]:
    values = set()
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else None
        if text is not None and text.startswith("0x"):
            text = text[2:]
        try:
            value = bytes.fromhex(text) if text is not None else b""
        except ValueError:
            value = b""
        if len(value) != size:
            raise ConfigurationError(
                f"policy.{name}: each value must be {size} bytes of hex",
                check="config.policy",
                actual=item,
            )
        values.add(value)
    if not values:
        raise ConfigurationError(f"policy.{name} lists no value", check="config.policy")
    return frozenset(values)


def _check_key_is_certificates(context: b.BindingContext) -> None:
    """Challenge mode attests the certificate; the TLS key must be that certificate's key."""
    if context.certificate_der is None:
        raise BindingMismatch("no TLS certificate to bind to", check="dstack.certificate_event")
    certificate = PeerCertificate.from_der(context.certificate_der)
    b.check_public_key(context, certificate.spki_der, check="binding.key")


class DstackValidator(ValidatorBase):
    def __init__(self, settings: Settings, *, spec: ValidatorSpec = DSTACK_SPEC) -> None:
        self.spec = spec
        self._verifier = make_verifier(settings, DCAP_SETTINGS)
        path = settings.get("quote_path", DSTACK_CHALLENGE_PATH)
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or not path.isprintable()
            or not path.isascii()
            or " " in path
        ):
            raise ConfigurationError(
                "settings.quote_path must be an absolute HTTP path", check="config.settings"
            )
        self._quote_path = path
        self._snp_settings = snp_settings(settings)

    @classmethod
    def challenge_validator(cls, settings: Settings) -> DstackValidator:
        return cls(settings, spec=DSTACK_CHALLENGE_SPEC)

    def check_policy(self, policy: Policy) -> None:
        """Values of the dstack options, when configuration is loaded (not at a connection)."""
        document = policy.option("app_compose")
        if document is not None:
            _app_compose_document(document)
        for option, size, _check in _ALLOW_LISTS:
            _hex_values(policy, option, size)

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The quote, the event log replayed against its RTMRs, RTMR3's facts (unverified)."""
        if evidence.media_type == DSTACK_SNP_MEDIA_TYPE:
            return describe_sev_snp(evidence)
        from atls_tdx.inspection import describe_dstack

        return describe_dstack(evidence, required=required_rtmrs(evidence))

    @property
    def _challenge_mode(self) -> bool:
        return self.spec.binding_scheme == "challenge-v1"

    # -- transports ----------------------------------------------------------

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        if self._challenge_mode:
            return super().evidence_from_certificate(certificate)
        return evidence_from_dstack_certificate(certificate)

    def challenge(self, nonce: bytes) -> ChallengeRequest:
        if not self._challenge_mode:
            return super().challenge(nonce)
        report_data = b.report_data_for("challenge-v1", spki_der=b"", nonce=nonce)
        return ChallengeRequest(
            method="POST",
            path=self._quote_path,
            headers={"Content-Type": "application/json"},
            # secureai servers read report_data_hex; atls servers (ChallengeEndpoint)
            # recompute it from the nonce.  Either way the quote must carry it.
            # json.dumps's text of {"report_data_hex": ..., "nonce": ...}, written directly.
            body=b'{"report_data_hex": "%s", "nonce": "%s"}'
            % (report_data.hex().encode(), nonce.hex().encode()),
        )

    def evidence_from_challenge(self, response: ChallengeResponse) -> Evidence:
        if not self._challenge_mode:
            return super().evidence_from_challenge(response)
        return evidence_from_quote_document(
            response.ok_body("the quote endpoint"),
            source=EvidenceSource(transport=Transport.CHALLENGE, location=self._quote_path),
        )

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        """A quote document (JSON: GetQuote, /tdx_quote or tcb_info) or a raw dstack
        attestation (what the ``.8`` extension holds; appraised as a certificate's)."""
        source = EvidenceSource(transport=Transport.FILE, location=name)
        if data.lstrip()[:1] == b"{":
            return evidence_from_quote_document(data, source=source)
        return evidence_from_attestation(data, source=source)

    # -- appraisal -----------------------------------------------------------

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        if evidence.media_type == DSTACK_SNP_MEDIA_TYPE:
            return self._verify_sev_snp(evidence, appraisal)
        snp_only = [name for name in DSTACK_SNP_POLICY_OPTIONS if name in appraisal.policy.options]
        if snp_only:
            appraisal.warn(
                "dstack.snp_options",
                f"policy options {snp_only} apply to SEV-SNP only; this evidence is TDX",
            )
        event_log = evidence.endorsements.get("event_log")
        if event_log is None:
            raise MalformedEvidence("dstack evidence needs its event log", check="dstack.event_log")
        events = parse_event_log(event_log)
        verified = verify_tdx_quote(self._verifier, evidence.data, appraisal)
        quoted = []
        for index in range(4):
            value = verified.fields.get(f"rtmr{index}")
            if not isinstance(value, bytes):
                raise MalformedEvidence("the quote has no RTMRs", check="dstack.rtmr")
            quoted.append(value)
        # A certificate's attestation extension carries a stripped log: only RTMR3 replays.
        # Nothing is read from the others; the quote's RTMR0-2 stay pinnable as measurements.
        replay = check_replay(events, quoted, required=required_rtmrs(evidence))
        if replay.not_replayed:
            appraisal.claim("rtmrs_not_replayed", list(replay.not_replayed))
        facts = dstack_facts(events)
        self._record(appraisal, facts)
        self._check_server_claims(appraisal, evidence, facts, verified.fields.get("mrconfigid"))
        self._check_policy(appraisal, appraisal.policy, facts)
        return self._report_data(appraisal.context, facts, verified.report_data)

    def _verify_sev_snp(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        """snp.report verifies the report; the MrConfig document HOST_DATA binds is the app."""
        facts, report_data = verify_sev_snp(evidence, appraisal, settings=self._snp_settings)
        where = "the MrConfig document (HOST_DATA)"
        self._check_server_claims(appraisal, evidence, facts, None, measured_in=where)
        self._check_policy(
            appraisal,
            appraisal.policy,
            facts,
            boot_chain=DSTACK_SNP_BOOT_CHAIN,
            measured_by="the MrConfig document",
        )
        return self._report_data(appraisal.context, facts, report_data)

    def _record(self, appraisal: Appraisal, facts: DstackFacts) -> None:
        for name in ("compose_hash", "app_id", "os_image_hash", "instance_id"):
            value = getattr(facts, name)
            if value is not None:
                appraisal.measure(name, value)
        if facts.key_provider is not None:
            appraisal.claim("key_provider", facts.key_provider.decode(errors="replace"))
        if facts.mr_kms is not None:
            appraisal.claim("mr_kms", facts.mr_kms.hex())
        # Newer RTMR3 events, named as the SEV-SNP path names them: visible, not pins.
        if facts.gpu_policy_hash is not None:
            appraisal.claim("gpu_policy_hash", facts.gpu_policy_hash.hex())
        if facts.init_script_hashes:
            appraisal.claim("init_script_hashes", [h.hex() for h in facts.init_script_hashes])
        if facts.storage_fs is not None:
            appraisal.claim("storage_fs", facts.storage_fs.decode(errors="replace"))
        if facts.certificate_digest is not None:
            appraisal.claim("certificate_event_sha256", facts.certificate_digest.hex())
        appraisal.claim("system_ready", facts.system_ready)
        appraisal.claim("app_events", list(facts.app_events))
        if not facts.system_ready:
            appraisal.warn("dstack.system_ready", "the event log has no system-ready event")

    def _check_server_claims(
        self,
        appraisal: Appraisal,
        evidence: Evidence,
        facts: DstackFacts,
        mr_config_id: Any,
        *,
        measured_in: str = "RTMR3",
    ) -> None:
        """What the server supplied besides the quote must agree with the measured log."""
        document = evidence.endorsements.get("app_compose")
        if document is not None:
            if facts.compose_hash is None or not hmac.compare_digest(
                compose_hash(document), facts.compose_hash
            ):
                raise UntrustedChain(
                    f"the app_compose the server sent is not the one measured in {measured_in}",
                    check="dstack.app_compose",
                    expected=facts.compose_hash,
                    actual=compose_hash(document),
                )
            appraisal.claim("app_compose_sha256", compose_hash(document).hex())
        app_id = evidence.endorsements.get("app_id")
        if app_id is not None and (
            facts.app_id is None or not hmac.compare_digest(app_id, facts.app_id)
        ):
            raise UntrustedChain(
                f"the certificate's app id is not the one measured in {measured_in}",
                check="dstack.app_id",
                expected=facts.app_id,
                actual=app_id,
            )
        raw_info = evidence.endorsements.get("app_info")
        if raw_info is not None:
            info = decode_app_info(raw_info)
            appraisal.claim("app_info", info.to_claims())
            for name, claimed, measured in (
                ("app_id", info.app_id, facts.app_id),
                ("compose_hash", info.compose_hash, facts.compose_hash),
            ):
                if measured is None or not hmac.compare_digest(claimed, measured):
                    raise UntrustedChain(
                        f"the certificate's app info names another {name} than {measured_in} "
                        "measures",
                        check="dstack.app_info",
                        expected=measured,
                        actual=claimed,
                    )
        version = evidence.endorsements.get("attestation_version")
        if version is not None:
            appraisal.claim("attestation_version", version.decode("ascii", errors="replace"))
        if isinstance(mr_config_id, bytes) and any(mr_config_id):
            if mr_config_id[0] == _MR_CONFIG_ID_COMPOSE:
                measured = facts.compose_hash
                # Only a SHA-256 compose hash fits MRCONFIGID's 0x01 || hash || zeros form.
                expected = (
                    expected_mr_config_id(measured)
                    if measured is not None and len(measured) == 32
                    else None
                )
                if expected is None or not hmac.compare_digest(expected, mr_config_id):
                    raise UntrustedChain(
                        "MRCONFIGID names another compose hash than the event log",
                        check="dstack.mr_config_id",
                        expected=expected,
                        actual=mr_config_id,
                    )
            else:
                appraisal.warn(
                    "dstack.mr_config_id", "MRCONFIGID has a format atls does not interpret"
                )

    def _check_policy(
        self,
        appraisal: Appraisal,
        policy: Policy,
        facts: DstackFacts,
        *,
        boot_chain: Sequence[str] = _BOOT_CHAIN,
        measured_by: str = "the event log",
    ) -> None:
        # A check that passes records nothing: the details of a refusal are built only then.
        document = policy.option("app_compose")
        if document is not None:
            wanted = _configured_compose_hash(document)
            measured = facts.compose_hash
            if measured is None or not hmac.compare_digest(wanted, measured):
                appraisal.require(
                    "dstack.compose_hash",
                    False,
                    "the application is not the configured app_compose",
                    expected=wanted.hex(),
                    actual=measured.hex() if measured else None,
                )
        for (option, size, check), value in zip(
            _ALLOW_LISTS, (facts.compose_hash, facts.app_id, facts.os_image_hash), strict=True
        ):
            allowed = _hex_values(policy, option, size)
            if allowed is None or (value is not None and value in allowed):
                continue
            appraisal.require(
                check,
                False,
                f"not in policy.{option}"
                if value is not None
                else f"{measured_by} measures no {check.split('.')[1]}",
                expected=sorted(v.hex() for v in allowed),
                actual=value.hex() if value is not None else None,
            )
        # Whether the workload is pinned at all is the core's rule (spec.workload_identity).
        if not all(
            name in policy.reference_values and policy.reference_values[name].enforce
            for name in boot_chain
        ):
            appraisal.warn(
                "dstack.boot_chain",
                f"the boot chain is not pinned (reference values for {', '.join(boot_chain)})",
            )

    def _report_data(
        self, context: b.BindingContext, facts: DstackFacts, report_data: bytes
    ) -> ReportData:
        """RA-TLS: the report data alone binds the key.  Challenge: the nonce is in the
        report data and the key in the certificate the log measures, which the core's
        ``challenge-v1`` binding checks against this connection's certificate."""
        if not self._challenge_mode:
            return ReportData(value=report_data)
        if not context.offline:
            _check_key_is_certificates(context)
            if facts.certificate_digest is None:
                raise BindingMismatch(
                    "the event log measures no 'New TLS Certificate': nothing ties the TLS "
                    "certificate to this TD",
                    check="dstack.certificate_event",
                )
        material = (
            {"certificate_sha256": facts.certificate_digest}
            if facts.certificate_digest is not None
            else {}
        )
        return ReportData(value=report_data, material=material)

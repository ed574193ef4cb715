"""What a verified report says, recorded on the appraisal, and the SEV-SNP policy options.

Every report field lands in the result: the identity fields as measurements
(reference values can pin them), the rest as claims.  The options:

- ``max_vmpl`` (default 0): the highest VMPL the report may have been requested
  from.  Under an SVSM or a paravisor, less privileged guest code (VMPL > 0) can
  ask for reports too; its report data is only as trustworthy as that code.
- ``allow_migration_agent`` (default false): a guest whose policy allows a
  migration agent (MIGRATE_MA) can have its memory exported by that agent.
- ``allow_smt`` (default true): false refuses platforms running with SMT on
  (PLATFORM_INFO.SMT_EN), for side-channel-averse deployments.
- ``min_tcb`` / ``min_firmware``: minimum REPORTED_TCB SPLs and committed
  firmware version, flat or per product (``{Milan = {snp = 24, ...}}``).

SEV-SNP has no TCB status of its own, so the core's TCB verdict is derived:
with ``min_tcb`` or ``min_firmware`` set, ``UpToDate`` when the reported TCB
(which the VCEK/VLEK matched exactly) and the committed firmware meet every
minimum for the product, else ``OutOfDate`` (naming what is below); with
neither set there is no verdict (``no_tcb``: the default policy accepts with a
warning, a policy that lists accepted statuses refuses).  The debug bit of the
guest policy is the TEE's debug flag: the core refuses it unless
``allow_debug``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from atls_core.appraisal import Appraisal
from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_snp.chain import VerifiedChain
from atls_snp.crl import CrlCheck
from atls_snp.report import SIGNED_SIZE, FirmwareVersion, Report
from atls_snp.roots import Product

__all__ = ["SnpOptions", "record_report"]

COMPONENTS = ("fmc", "bootloader", "tee", "snp", "microcode")


def _bad(option: str, message: str, actual: Any = None) -> ConfigurationError:
    return ConfigurationError(
        f"policy.{option}: {message}", check=f"config.snp.{option}", actual=actual
    )


def _flag(policy: Policy, name: str, default: bool) -> bool:
    value = policy.options.get(name, default)
    if not isinstance(value, bool):
        raise _bad(name, "must be true or false", value)
    return value


def _spls(value: Any, option: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise _bad(option, "must be a table of SPLs", value)
    spls: dict[str, int] = {}
    for name, minimum in value.items():
        if name not in COMPONENTS:
            raise _bad(option, f"unknown TCB component {name!r}", sorted(COMPONENTS))
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not 0 <= minimum <= 255:
            raise _bad(option, f"{name} must be an integer 0..255", minimum)
        spls[name] = minimum
    return spls


def _version(value: Any, option: str) -> FirmwareVersion:
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise _bad(option, 'must be "major.minor.build"', value)
    major, minor, build = (int(p) for p in parts)
    return FirmwareVersion(major=major, minor=minor, build=build)


def _per_product(value: Any, option: str) -> Mapping[Product, Any] | None:
    """``{Milan = ..., Turin = ...}`` as a product map; None for the flat form."""
    if not isinstance(value, Mapping) or not value:
        return None
    products = {name: Product.named(str(name)) for name in value}
    if all(p is None for p in products.values()):
        return None
    if any(p is None for p in products.values()):
        raise _bad(option, "mixes product names and other keys", sorted(map(str, value)))
    return {products[name]: item for name, item in value.items()}  # type: ignore[misc]


_OPTIONS: dict[str, SnpOptions] = {}
_OPTIONS_LOCK = threading.Lock()
_MAX_OPTIONS = 64


@attrs.frozen(kw_only=True)
class SnpOptions:
    max_vmpl: int = 0
    allow_migration_agent: bool = False
    allow_smt: bool = True
    min_tcb: Any = None
    min_firmware: Any = None

    @classmethod
    def from_policy(cls, policy: Policy) -> SnpOptions:
        """The options of ``policy``, checked once per policy (policies are immutable)."""
        digest = policy.digest
        with _OPTIONS_LOCK:
            known = _OPTIONS.get(digest)
        if known is None:
            known = cls._parse(policy)
            with _OPTIONS_LOCK:
                if len(_OPTIONS) >= _MAX_OPTIONS:
                    _OPTIONS.clear()
                _OPTIONS[digest] = known
        return known

    @classmethod
    def _parse(cls, policy: Policy) -> SnpOptions:
        max_vmpl = policy.options.get("max_vmpl", 0)
        if isinstance(max_vmpl, bool) or not isinstance(max_vmpl, int) or not 0 <= max_vmpl <= 3:
            raise _bad("max_vmpl", "must be an integer 0..3", max_vmpl)
        options = cls(
            max_vmpl=max_vmpl,
            allow_migration_agent=_flag(policy, "allow_migration_agent", False),
            allow_smt=_flag(policy, "allow_smt", True),
            min_tcb=policy.options.get("min_tcb"),
            min_firmware=policy.options.get("min_firmware"),
        )
        for product in Product:  # refuse malformed minimums even for other products
            options.tcb_minimum(product)
            options.firmware_minimum(product)
        return options

    @property
    def judges_tcb(self) -> bool:
        return self.min_tcb is not None or self.min_firmware is not None

    def tcb_minimum(self, product: Product) -> dict[str, int] | None:
        """The SPL minimums for ``product`` (None: the policy names none for it)."""
        if self.min_tcb is None:
            return None
        per_product = _per_product(self.min_tcb, "min_tcb")
        if per_product is None:
            spls = _spls(self.min_tcb, "min_tcb")
            if not product.turin_layout:
                spls.pop("fmc", None)  # FMC exists from Turin on
            return spls
        if product not in per_product:
            return None
        spls = _spls(per_product[product], "min_tcb")
        if "fmc" in spls and not product.turin_layout:
            raise _bad("min_tcb", f"{product.value} has no fmc SPL", spls)
        return spls

    def firmware_minimum(self, product: Product) -> FirmwareVersion | None:
        if self.min_firmware is None:
            return None
        per_product = _per_product(self.min_firmware, "min_firmware")
        if per_product is None:
            return _version(self.min_firmware, "min_firmware")
        item = per_product.get(product)
        return None if item is None else _version(item, "min_firmware")


def _below_minimum(report: Report, product: Product, options: SnpOptions) -> list[str]:
    below: list[str] = []
    reported = report.reported_tcb(product).components()
    if options.min_tcb is not None:
        minimum = options.tcb_minimum(product)
        if minimum is None:
            below.append(f"policy sets no min_tcb for {product.value}")
        else:
            below += [
                f"{name} {reported[name]} < {value}"
                for name, value in minimum.items()
                if reported[name] < value
            ]
    if options.min_firmware is not None:
        firmware = options.firmware_minimum(product)
        committed = report.committed_version
        if firmware is None:
            below.append(f"policy sets no min_firmware for {product.value}")
        elif committed.key < firmware.key:
            below.append(f"committed firmware {committed} < {firmware}")
    return below


def _judge_tcb(appraisal: Appraisal, report: Report, product: Product, options: SnpOptions) -> None:
    if not options.judges_tcb:
        appraisal.no_tcb(
            "SEV-SNP reports carry no TCB status and policy sets neither min_tcb nor "
            "min_firmware: the reported TCB (the one the VCEK/VLEK certifies) was not judged"
        )
        return
    below = _below_minimum(report, product, options)
    appraisal.claim("tcb_below_minimum", below)
    appraisal.set_tcb("OutOfDate" if below else "UpToDate")


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def _report_facts(
    report: Report, chain: VerifiedChain
) -> tuple[Mapping[str, str], Mapping[str, Any]]:
    """(measurements, claims): every field but the report data (immutable: they are cached)."""
    product = chain.product
    facts: dict[str, Any] = {
        "report_version": report.version,
        "product": product.value,
        "signing_key": chain.signing_key.name,
        **report.field_claims(product),
        "certificates": chain.describe(),
    }
    frozen: Mapping[str, Any] = _frozen(facts)
    return MappingProxyType(report.measurements()), frozen


_FACTS: OrderedDict[tuple[Any, ...], tuple[Mapping[str, str], Mapping[str, Any]]] = OrderedDict()
_FACTS_LOCK = threading.Lock()
_MAX_FACTS = 256


def _record_fields(appraisal: Appraisal, report: Report, chain: VerifiedChain) -> None:
    """Record the report's fields: identity fields as measurements, the rest as claims.

    A guest's reports differ only in their report data (and signature), and a
    long-running client sees the same guests again and again: the rest is kept,
    keyed by every other signed byte and the chain that verified them.
    """
    key = (
        report.raw[:0x50],
        report.raw[0x90:SIGNED_SIZE],
        chain.ark.digest,
        chain.intermediate.digest,
        chain.vek.digest,
        tuple(sorted(chain.sources.items())),
    )
    with _FACTS_LOCK:
        facts = _FACTS.get(key)
        if facts is not None:
            _FACTS.move_to_end(key)
    if facts is None:
        facts = _report_facts(report, chain)
        with _FACTS_LOCK:
            _FACTS[key] = facts
            while len(_FACTS) > _MAX_FACTS:
                _FACTS.popitem(last=False)
    measurements, claims = facts
    for name, text in measurements.items():
        appraisal.measure(name, text)
    for name, value in claims.items():
        appraisal.claim(name, value)
    appraisal.claim("report_data", report.report_data.hex())


def _check_options(appraisal: Appraisal, report: Report, options: SnpOptions) -> None:
    appraisal.require(
        "snp.vmpl",
        report.vmpl <= options.max_vmpl,
        "the report was requested from a less privileged VMPL than policy allows",
        expected=f"<= {options.max_vmpl}",
        actual=report.vmpl,
    )
    if report.migrate_ma:
        appraisal.require(
            "snp.migration_agent",
            options.allow_migration_agent,
            "the guest policy allows a migration agent (MIGRATE_MA)",
            expected=False,
            actual=True,
        )
    if not options.allow_smt:
        appraisal.require(
            "snp.smt",
            not report.smt_enabled,
            "the platform runs with SMT enabled and policy sets allow_smt = false",
            expected=False,
            actual=True,
        )


def _test_root(appraisal: Appraisal, *, own_spec: bool) -> None:
    """A chain ending at a configured test root: a warning, or a refusal through a hand-over.

    The core admits ``test_ark`` only past its tests-only gate when it selects
    snp.report; a container validator builds snp.report itself, so there the
    test root counts only if the container's own selection passed that gate
    (the core then records ``test_knobs``).
    """
    if not own_spec and not appraisal.claims.get("test_knobs"):
        appraisal.fail(
            "snp.test_root",
            "the SEV-SNP chain handed over ends at a test root, and the handing validator "
            "was not selected with tests-only settings allowed",
        )
        return
    appraisal.warn(
        "snp.test_root",
        "the chain ends at a configured test root, not one of AMD's ARKs: this result "
        "proves nothing about real hardware",
    )


def record_report(
    appraisal: Appraisal,
    report: Report,
    chain: VerifiedChain,
    *,
    crl: CrlCheck,
    own_spec: bool,
) -> None:
    """Record a verified report and apply the SEV-SNP options (see the module doc).

    ``own_spec`` is False when another validator handed the report over: its
    policy's options apply when that validator declares them under the same
    names (defaults otherwise), and its pins are its own business.
    """
    appraisal.set_tee_type("sev-snp")
    appraisal.set_debug(report.debug)
    _record_fields(appraisal, report, chain)
    appraisal.claim("crl", crl.to_claim())
    options = SnpOptions.from_policy(appraisal.policy)
    _check_options(appraisal, report, options)
    _judge_tcb(appraisal, report, chain.product, options)
    appraisal.valid_until(chain.not_after, f"{chain.vek.subject_cn} certificate expiry")
    if crl.checked and not crl.stale and crl.next_update is not None:
        appraisal.valid_until(crl.next_update, "ARK CRL next update")
    if not crl.checked:
        appraisal.warn(
            "snp.crl",
            "the ASK/ASVK revocation list was not checked (offline appraisal or kds = never, "
            "and no crl file)",
        )
    elif crl.stale:
        appraisal.warn("snp.crl", "the ARK's revocation list is past its next update")
    if not chain.pinned:
        _test_root(appraisal, own_spec=own_spec)

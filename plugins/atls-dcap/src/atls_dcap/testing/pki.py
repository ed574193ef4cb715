"""A synthetic, Intel-shaped DCAP PKI for tests.

`DcapTestPki.generate()` builds, with `cryptography`, everything Intel's PCS would hand a verifier:
a self-signed root CA and its CRL, a PCK Platform (or Processor) CA and its CRL, PCK leaf certificates
carrying the SGX extension (PPID, TCB, PCE-ID, FMSPC, SGX type, ...), a TCB signing certificate, and
signed TCB info / QE identity JSON, packaged by `collateral_json()` as the ``QuoteCollateralV3`` JSON
that ``dcap_qvl.QuoteCollateralV3.from_json`` reads. `atls_dcap.testing.quotes` signs quotes under it.

Why a complete PKI: dcap-qvl checks the root against the root CRL, the PCK chain against the PCK CRL
and the TCB info / QE identity signatures against the TCB signing chain; a bare test root fails.

The platform has three TCB profiles (`TCB_PROFILES`): ``"uptodate"`` matches the newest TCB level of
the generated TCB info (whose status `collateral_json(tcb_status=...)` chooses), ``"outofdate"``
matches the older ``OutOfDate`` level, ``"unmatched"`` matches no level at all.

Nothing here is Intel's: the subjects look like Intel's, the keys are ours. Evidence made with this PKI
only verifies when the verifier is explicitly given ``root_ca_der``.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from atls_core import policy
from atls_core.testing.certs import CA_USES, key_usage
from atls_dcap.testing import _der

__all__ = [
    "DcapTestPki",
    "PlatformTcb",
    "QeProfile",
    "QE_PROFILES",
    "TCB_PROFILES",
    "TCB_STATUSES",
    "SGX_EXTENSION_OID",
    "DEFAULT_FMSPC",
    "DEFAULT_OUTOFDATE_ADVISORIES",
    "QE_MRSIGNER",
]

SGX_EXTENSION_OID: Final = "1.2.840.113741.1.13.1"
DEFAULT_FMSPC: Final = "00906ED50000"
TCB_STATUSES: Final = frozenset(policy.TCB_STATUSES) - {"TDRelaunchAdvised"}
"""The statuses a synthetic TCB level can carry (the synthetic TDX module has no relaunch)."""
DEFAULT_OUTOFDATE_ADVISORIES: Final = ("INTEL-SA-00837", "INTEL-SA-00960")
# MRSIGNER of the synthetic quoting enclaves (QE for SGX, TD_QE for TDX); the QE identity pins it.
QE_MRSIGNER: Final = hashlib.sha256(b"atls synthetic quoting enclave signer").digest()

_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_DEFAULT_NOT_BEFORE: Final = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_DEFAULT_NOT_AFTER: Final = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
_DEFAULT_TCB_DATE: Final = "2024-03-13T00:00:00Z"
_OUTOFDATE_TCB_DATE: Final = "2023-02-15T00:00:00Z"


def _svn16(*values: int) -> bytes:
    return bytes(values) + bytes(16 - len(values))


@attrs.frozen(kw_only=True)
class PlatformTcb:
    """The TCB a platform reports: SGX part in its PCK certificate, TDX part in its TD reports."""

    cpu_svn: bytes  # 16 SGX TCB component SVNs, as in the PCK certificate
    pce_svn: int
    tee_tcb_svn: bytes  # 16 bytes, TDX TEE_TCB_SVN (byte 1 = TDX module major version)


TCB_PROFILES: Final[Mapping[str, PlatformTcb]] = {
    "uptodate": PlatformTcb(
        cpu_svn=_svn16(3, 3, 2, 2, 4, 1, 0, 5), pce_svn=11, tee_tcb_svn=_svn16(6, 1, 3)
    ),
    "outofdate": PlatformTcb(
        cpu_svn=_svn16(2, 2, 2, 2, 3, 1, 0, 3), pce_svn=10, tee_tcb_svn=_svn16(3, 1, 1)
    ),
    "unmatched": PlatformTcb(
        cpu_svn=_svn16(1, 1, 1, 1, 1, 1, 0, 1), pce_svn=5, tee_tcb_svn=_svn16(4, 1, 0)
    ),
}

# TCB levels of the generated TCB info (newest first). The SGX parts equal the "uptodate" and
# "outofdate" profiles' PCK values; the TDX parts sit just below those profiles' TEE_TCB_SVNs.
_CURRENT_TDX_COMPONENTS: Final = _svn16(5, 0, 2)
_PREVIOUS_TDX_COMPONENTS: Final = _svn16(3, 0, 1)


@attrs.frozen(kw_only=True)
class QeProfile:
    """Identity of a synthetic quoting enclave, as its QE identity JSON describes it."""

    identity_id: str  # "QE" | "TD_QE"
    isv_prod_id: int
    isv_svn: int
    mr_enclave: bytes


QE_PROFILES: Final[Mapping[str, QeProfile]] = {
    "sgx": QeProfile(
        identity_id="QE",
        isv_prod_id=1,
        isv_svn=8,
        mr_enclave=hashlib.sha256(b"atls synthetic SGX QE").digest(),
    ),
    "tdx": QeProfile(
        identity_id="TD_QE",
        isv_prod_id=2,
        isv_svn=4,
        mr_enclave=hashlib.sha256(b"atls synthetic TD QE").digest(),
    ),
}
_SIGNER_USES: Final = ("digital_signature", "content_commitment")
"""Intel's PCK and signing certificates: signatures (and non-repudiation), nothing else."""
_QE_ATTRIBUTES: Final = bytes([0x11]) + bytes(15)
_QE_ATTRIBUTES_MASK: Final = bytes.fromhex("FBFFFFFFFFFFFFFF0000000000000000")


def _intel_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Intel Corporation"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return value.astimezone(datetime.UTC)


def _format_time(value: datetime.datetime) -> str:
    return _utc(value).strftime(_TIME_FORMAT)


def _raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 as Intel writes it in quotes and collateral: r || s, 32 bytes each."""
    r, s = decode_dss_signature(
        key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    )
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _Seeded:
    """Deterministic keys, serials and identifiers derived from one seed."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed

    def digest(self, label: str) -> bytes:
        return hashlib.sha256(self._seed + b"\x00" + label.encode()).digest()

    def key(self, label: str) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(self.digest("key:" + label), "big") % (_P256_ORDER - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())

    def serial(self, label: str) -> int:
        # Positive, at most 19 bytes: always a valid X.509 serial number.
        return int.from_bytes(self.digest("serial:" + label)[:19], "big") | 1


@attrs.frozen(kw_only=True)
class _Keys:
    root: ec.EllipticCurvePrivateKey
    pck_ca: ec.EllipticCurvePrivateKey
    tcb_signing: ec.EllipticCurvePrivateKey
    attestation: ec.EllipticCurvePrivateKey


@attrs.frozen(kw_only=True, eq=False, repr=False)
class DcapTestPki:
    """A generated DCAP PKI. Build with `DcapTestPki.generate()`; immutable, thread-safe."""

    fmspc: str  # upper-case hex, 6 bytes
    not_before: datetime.datetime
    not_after: datetime.datetime
    ca: Literal["platform", "processor"]
    root_ca_der: bytes
    pck_ca_der: bytes
    tcb_signing_der: bytes
    ppid: bytes
    pce_id: bytes
    platform_instance_id: bytes | None
    platform_flags: tuple[bool, bool, bool]  # dynamicPlatform, cachedKeys, smtEnabled
    _seeded: _Seeded
    _keys: _Keys
    _pck_leaves: Mapping[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]
    _cache: dict[Any, Any] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __repr__(self) -> str:
        return (
            f"DcapTestPki(fmspc={self.fmspc!r}, ca={self.ca!r}, root={self.root_ca_sha256[:16]}…)"
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(
        cls,
        fmspc: str = DEFAULT_FMSPC,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        seed: bytes | str | None = None,
        ca: Literal["platform", "processor"] = "platform",
        platform_flags: tuple[bool, bool, bool] = (True, True, True),
    ) -> DcapTestPki:
        """Generate a PKI. Certificates are valid from `not_before` to `not_after`
        (default 2020-01-01 .. 2049-12-31). With a `seed` the result is byte-for-byte deterministic
        and cached within the process; without, keys are fresh (generation takes a few ms)."""
        nb = _utc(not_before) if not_before is not None else _DEFAULT_NOT_BEFORE
        na = _utc(not_after) if not_after is not None else _DEFAULT_NOT_AFTER
        if na <= nb:
            raise ValueError("not_after must be later than not_before")
        try:
            fmspc_bytes = bytes.fromhex(fmspc)
        except ValueError:
            raise ValueError(f"fmspc must be hex, got {fmspc!r}") from None
        if len(fmspc_bytes) != 6:
            raise ValueError(f"fmspc must be 6 bytes (12 hex digits), got {fmspc!r}")
        if ca not in ("platform", "processor"):
            raise ValueError(f"ca must be 'platform' or 'processor', got {ca!r}")
        flags = (bool(platform_flags[0]), bool(platform_flags[1]), bool(platform_flags[2]))
        if seed is None:
            return _build(fmspc_bytes.hex().upper(), nb, na, os.urandom(32), ca, flags)
        seed_bytes = seed.encode() if isinstance(seed, str) else bytes(seed)
        return _build_cached(fmspc_bytes.hex().upper(), nb, na, seed_bytes, ca, flags)

    # ------------------------------------------------------------------ certificates
    @property
    def root_ca_pem(self) -> str:
        return _pem(self.root_ca_der)

    @property
    def root_ca_sha256(self) -> str:
        return hashlib.sha256(self.root_ca_der).hexdigest()

    def file_settings(self, directory: Path, tee: str = "tdx", **collateral: Any) -> dict[str, Any]:
        """Validator settings trusting this PKI: its root and its collateral (``collateral``
        as for :meth:`collateral_json`) written to ``directory``, no cache.  A custom
        root is trusted only with ``allow_custom_root``, as in production."""
        directory.mkdir(parents=True, exist_ok=True)
        root = directory / "root.pem"
        root.write_text(self.root_ca_pem)
        text = self.collateral_json(tee, **collateral)
        name = hashlib.sha256(text.encode()).hexdigest()[:16]
        collateral_file = directory / f"{tee}-collateral-{name}.json"
        collateral_file.write_text(text)
        return {
            "collateral_file": str(collateral_file),
            "root_ca": str(root),
            "allow_custom_root": True,
            "cache_dir": "none",
        }

    @property
    def pck_ca_common_name(self) -> str:
        return (
            "Intel SGX PCK Platform CA" if self.ca == "platform" else "Intel SGX PCK Processor CA"
        )

    def platform_tcb(self, tcb: str = "uptodate") -> PlatformTcb:
        """The TCB profile `tcb` ("uptodate" | "outofdate" | "unmatched")."""
        try:
            return TCB_PROFILES[tcb]
        except KeyError:
            raise ValueError(
                f"unknown TCB profile {tcb!r}; known: {sorted(TCB_PROFILES)}"
            ) from None

    def pck_certificate_der(self, tcb: str = "uptodate") -> bytes:
        """The PCK leaf certificate of TCB profile `tcb`."""
        self.platform_tcb(tcb)
        return self._pck_leaves[tcb][1].public_bytes(serialization.Encoding.DER)

    def pck_chain_pem(self, tcb: str = "uptodate") -> str:
        """PCK leaf, PCK CA and root as concatenated PEM: quote certification data type 5."""
        return _pem(self.pck_certificate_der(tcb)) + _pem(self.pck_ca_der) + _pem(self.root_ca_der)

    # ------------------------------------------------------------------ signing (for quotes.py)
    @property
    def attestation_public_key(self) -> bytes:
        """The quoting enclave's attestation key: 64 raw bytes (x || y), as in quotes."""
        point = self._keys.attestation.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return point[1:]

    def attestation_sign(self, data: bytes) -> bytes:
        """Sign quote header || body with the attestation key (r || s)."""
        return _raw_signature(self._keys.attestation, data)

    def pck_sign(self, tcb: str, data: bytes) -> bytes:
        """Sign a QE report with the PCK key of TCB profile `tcb` (r || s)."""
        self.platform_tcb(tcb)
        return _raw_signature(self._pck_leaves[tcb][0], data)

    # ------------------------------------------------------------------ collateral
    def tcb_info(
        self,
        tee: str = "tdx",
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Iterable[str] = (),
        issue_date: datetime.datetime | None = None,
        next_update: datetime.datetime | None = None,
        tcb_date: str = _DEFAULT_TCB_DATE,
        outofdate_advisory_ids: Iterable[str] = DEFAULT_OUTOFDATE_ADVISORIES,
        tcb_evaluation_data_number: int = 17,
        tdx_module_signer: bytes = bytes(48),
    ) -> dict[str, Any]:
        """The TCB info body (SGX v3 or TDX v3 format) as a dict, before signing.

        `tdx_module_signer` is the TDX module MRSIGNER it vouches for (Intel's: zero).
        """
        tee = _check_tee(tee)
        _check_status(tcb_status)
        issued, next_up = _window(issue_date, next_update)
        current = TCB_PROFILES["uptodate"]
        previous = TCB_PROFILES["outofdate"]
        levels = [
            _tcb_level(
                tee,
                current,
                _CURRENT_TDX_COMPONENTS,
                status=tcb_status,
                date=tcb_date,
                advisories=tuple(advisory_ids),
            ),
            _tcb_level(
                tee,
                previous,
                _PREVIOUS_TDX_COMPONENTS,
                status="OutOfDate",
                date=_OUTOFDATE_TCB_DATE,
                advisories=tuple(outofdate_advisory_ids),
            ),
        ]
        body: dict[str, Any] = {
            "id": "TDX" if tee == "tdx" else "SGX",
            "version": 3,
            "issueDate": _format_time(issued),
            "nextUpdate": _format_time(next_up),
            "fmspc": self.fmspc,
            "pceId": self.pce_id.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": tcb_evaluation_data_number,
        }
        if tee == "tdx":
            body["tdxModule"] = {
                "mrsigner": tdx_module_signer.hex().upper(),
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
            }
            body["tdxModuleIdentities"] = [
                {
                    "id": "TDX_01",
                    "mrsigner": tdx_module_signer.hex().upper(),
                    "attributes": "0000000000000000",
                    "attributesMask": "FFFFFFFFFFFFFFFF",
                    "tcbLevels": [
                        {"tcb": {"isvsvn": 4}, "tcbDate": tcb_date, "tcbStatus": "UpToDate"},
                        {
                            "tcb": {"isvsvn": 2},
                            "tcbDate": _OUTOFDATE_TCB_DATE,
                            "tcbStatus": "OutOfDate",
                        },
                    ],
                }
            ]
        body["tcbLevels"] = levels
        return body

    def qe_identity(
        self,
        tee: str = "tdx",
        *,
        issue_date: datetime.datetime | None = None,
        next_update: datetime.datetime | None = None,
        tcb_date: str = _DEFAULT_TCB_DATE,
        tcb_evaluation_data_number: int = 17,
    ) -> dict[str, Any]:
        """The QE identity body (QE for SGX, TD_QE for TDX; version 2) as a dict, before signing."""
        tee = _check_tee(tee)
        issued, next_up = _window(issue_date, next_update)
        qe = QE_PROFILES[tee]
        return {
            "id": qe.identity_id,
            "version": 2,
            "issueDate": _format_time(issued),
            "nextUpdate": _format_time(next_up),
            "tcbEvaluationDataNumber": tcb_evaluation_data_number,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": _QE_ATTRIBUTES.hex().upper(),
            "attributesMask": _QE_ATTRIBUTES_MASK.hex().upper(),
            "mrsigner": QE_MRSIGNER.hex().upper(),
            "isvprodid": qe.isv_prod_id,
            "tcbLevels": [
                {"tcb": {"isvsvn": qe.isv_svn}, "tcbDate": tcb_date, "tcbStatus": "UpToDate"},
                {
                    "tcb": {"isvsvn": qe.isv_svn - 2},
                    "tcbDate": _OUTOFDATE_TCB_DATE,
                    "tcbStatus": "OutOfDate",
                    "advisoryIDs": ["INTEL-SA-00615"],
                },
            ],
        }

    def collateral_json(
        self,
        tee: str = "tdx",
        *,
        tcb_status: str = "UpToDate",
        advisory_ids: Iterable[str] = (),
        issue_date: datetime.datetime | None = None,
        next_update: datetime.datetime | None = None,
        tcb_date: str = _DEFAULT_TCB_DATE,
        outofdate_advisory_ids: Iterable[str] = DEFAULT_OUTOFDATE_ADVISORIES,
        revoked: Sequence[str] = (),
        crl_next_update: datetime.datetime | None = None,
        qe_identity_next_update: datetime.datetime | None = None,
        tcb_evaluation_data_number: int = 17,
        tdx_module_signer: bytes = bytes(48),
    ) -> str:
        """QuoteCollateralV3 JSON for `tee` ("tdx" | "sgx").

        `tcb_status` / `advisory_ids` are the status of the newest TCB level (the one the
        "uptodate" platform profile matches); the "outofdate" profile always matches an
        ``OutOfDate`` level carrying `outofdate_advisory_ids`. TCB info, QE identity and both CRLs
        are issued at `issue_date` and expire at `next_update` (default: yesterday 00:00 UTC and
        30 days later); `crl_next_update` / `qe_identity_next_update` give those parts their own
        expiry. `revoked` lists TCB profiles whose PCK certificate the PCK CRL revokes.
        `tdx_module_signer`: the TDX module MRSIGNER the TCB info lists (Intel's is zero).
        Results are cached per PKI and arguments.
        """
        issued, next_up = _window(issue_date, next_update)
        _, crl_next = _window(issued, crl_next_update or next_up)
        _, qe_next = _window(issued, qe_identity_next_update or next_up)
        advisories = tuple(advisory_ids)
        old_advisories = tuple(outofdate_advisory_ids)
        revoked_profiles = tuple(sorted(set(revoked)))
        key = (
            _check_tee(tee),
            tcb_status,
            advisories,
            issued,
            next_up,
            tcb_date,
            old_advisories,
            revoked_profiles,
            crl_next,
            qe_next,
            tcb_evaluation_data_number,
            tdx_module_signer,
        )
        cached = self._cache.get(key)
        if cached is not None:
            return str(cached)
        for name in revoked_profiles:
            self.platform_tcb(name)
        tcb_info = _canonical_json(
            self.tcb_info(
                tee,
                tcb_status=tcb_status,
                advisory_ids=advisories,
                issue_date=issued,
                next_update=next_up,
                tcb_date=tcb_date,
                outofdate_advisory_ids=old_advisories,
                tcb_evaluation_data_number=tcb_evaluation_data_number,
                tdx_module_signer=tdx_module_signer,
            )
        )
        qe_identity = _canonical_json(
            self.qe_identity(
                tee,
                issue_date=issued,
                next_update=qe_next,
                tcb_date=tcb_date,
                tcb_evaluation_data_number=tcb_evaluation_data_number,
            )
        )
        signing_chain = _pem(self.tcb_signing_der) + _pem(self.root_ca_der)
        collateral = {
            "pck_crl_issuer_chain": _pem(self.pck_ca_der) + _pem(self.root_ca_der),
            "root_ca_crl": self._root_crl(issued, crl_next).hex(),
            "pck_crl": self._pck_crl(issued, crl_next, revoked_profiles).hex(),
            "tcb_info_issuer_chain": signing_chain,
            "tcb_info": tcb_info,
            "tcb_info_signature": _raw_signature(self._keys.tcb_signing, tcb_info.encode()).hex(),
            "qe_identity_issuer_chain": signing_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": _raw_signature(
                self._keys.tcb_signing, qe_identity.encode()
            ).hex(),
        }
        result = json.dumps(collateral)
        with self._lock:
            self._cache[key] = result
        return result

    def _root_crl(self, issued: datetime.datetime, next_up: datetime.datetime) -> bytes:
        return _crl(
            issuer_name=_intel_name("Intel SGX Root CA"),
            issuer_key=self._keys.root,
            this_update=issued,
            next_update=next_up,
            revoked_serials=(),
        )

    def _pck_crl(
        self, issued: datetime.datetime, next_up: datetime.datetime, revoked: Sequence[str]
    ) -> bytes:
        # A decoy entry so that a non-empty CRL is the normal case, as with Intel's.
        serials = [self._seeded.serial("decoy revoked PCK")]
        serials.extend(self._pck_leaves[name][1].serial_number for name in revoked)
        return _crl(
            issuer_name=_intel_name(self.pck_ca_common_name),
            issuer_key=self._keys.pck_ca,
            this_update=issued,
            next_update=next_up,
            revoked_serials=serials,
        )


# ---------------------------------------------------------------------- helpers


def _check_tee(tee: str) -> str:
    if tee not in ("tdx", "sgx"):
        raise ValueError(f"tee must be 'tdx' or 'sgx', got {tee!r}")
    return tee


def _check_status(status: str) -> None:
    if status not in TCB_STATUSES:
        raise ValueError(f"unknown TCB status {status!r}; known: {sorted(TCB_STATUSES)}")


def _window(
    issue_date: datetime.datetime | None, next_update: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    if issue_date is None:
        today = datetime.datetime.now(datetime.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        issued = today - datetime.timedelta(days=1)
    else:
        issued = _utc(issue_date).replace(microsecond=0)
    next_up = (
        issued + datetime.timedelta(days=30)
        if next_update is None
        else _utc(next_update).replace(microsecond=0)
    )
    if next_up <= issued:
        raise ValueError("next_update must be later than issue_date")
    return issued, next_up


def _canonical_json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _pem(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _tcb_level(
    tee: str,
    platform: PlatformTcb,
    tdx_components: bytes,
    *,
    status: str,
    date: str,
    advisories: tuple[str, ...],
) -> dict[str, Any]:
    tcb: dict[str, Any] = {
        "sgxtcbcomponents": [{"svn": svn} for svn in platform.cpu_svn],
        "pcesvn": platform.pce_svn,
    }
    if tee == "tdx":
        tcb["tdxtcbcomponents"] = [{"svn": svn} for svn in tdx_components]
    level: dict[str, Any] = {"tcb": tcb, "tcbDate": date, "tcbStatus": status}
    if advisories:
        level["advisoryIDs"] = list(advisories)
    return level


def _crl(
    *,
    issuer_name: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
    revoked_serials: Iterable[int],
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_name)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
    crl = builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    return crl.public_bytes(serialization.Encoding.DER)


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca_path_length: int | None,
    crl_url: str,
    extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    is_ca = ca_path_length is not None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(key_usage(*(CA_USES if is_ca else _SIGNER_USES)), critical=True)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
    )
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)


def _sgx_extension(
    *,
    ppid: bytes,
    platform: PlatformTcb,
    pce_id: bytes,
    fmspc: bytes,
    platform_instance_id: bytes | None,
    platform_flags: tuple[bool, bool, bool],
) -> x509.UnrecognizedExtension:
    """The Intel SGX PCK certificate extension (1.2.840.113741.1.13.1)."""
    base = SGX_EXTENSION_OID

    def pair(sub: str, value: bytes) -> bytes:
        return _der.sequence(_der.oid(f"{base}.{sub}"), value)

    tcb_items = [pair(f"2.{i + 1}", _der.integer(svn)) for i, svn in enumerate(platform.cpu_svn)]
    tcb_items.append(pair("2.17", _der.integer(platform.pce_svn)))
    tcb_items.append(pair("2.18", _der.octet_string(platform.cpu_svn)))
    items = [
        pair("1", _der.octet_string(ppid)),
        pair("2", _der.sequence(*tcb_items)),
        pair("3", _der.octet_string(pce_id)),
        pair("4", _der.octet_string(fmspc)),
        pair("5", _der.enumerated(0 if platform_instance_id is None else 1)),
    ]
    if platform_instance_id is not None:
        items.append(pair("6", _der.octet_string(platform_instance_id)))
        items.append(
            pair(
                "7",
                _der.sequence(
                    *(
                        pair(f"7.{i + 1}", _der.boolean(flag))
                        for i, flag in enumerate(platform_flags)
                    )
                ),
            )
        )
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(base), _der.sequence(*items))


_ROOT_CRL_URL: Final = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"


def _build(
    fmspc: str,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    seed: bytes,
    ca: Literal["platform", "processor"],
    platform_flags: tuple[bool, bool, bool],
) -> DcapTestPki:
    seeded = _Seeded(seed)
    keys = _Keys(
        root=seeded.key("root"),
        pck_ca=seeded.key("pck-ca"),
        tcb_signing=seeded.key("tcb-signing"),
        attestation=seeded.key("attestation"),
    )
    root_name = _intel_name("Intel SGX Root CA")
    pck_ca_cn = "Intel SGX PCK Platform CA" if ca == "platform" else "Intel SGX PCK Processor CA"
    pck_ca_name = _intel_name(pck_ca_cn)

    def issue(
        label: str,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        *,
        by: tuple[x509.Name, ec.EllipticCurvePrivateKey] = (root_name, keys.root),
        ca_path_length: int | None = None,
        crl_url: str = _ROOT_CRL_URL,
        extra: Sequence[x509.ExtensionType] = (),
    ) -> x509.Certificate:
        """A certificate of this PKI's window, its serial derived from ``label``."""
        return _certificate(
            subject=subject,
            issuer=by[0],
            public_key=key.public_key(),
            issuer_key=by[1],
            serial=seeded.serial(label),
            not_before=not_before,
            not_after=not_after,
            ca_path_length=ca_path_length,
            crl_url=crl_url,
            extra=extra,
        )

    root = issue("root", root_name, keys.root, ca_path_length=1)
    pck_ca = issue("pck-ca", pck_ca_name, keys.pck_ca, ca_path_length=0)
    tcb_signing = issue("tcb-signing", _intel_name("Intel SGX TCB Signing"), keys.tcb_signing)
    ppid = seeded.digest("ppid")[:16]
    pce_id = bytes(2)
    instance_id = seeded.digest("platform instance id")[:16] if ca == "platform" else None
    pck_crl_url = (
        "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca="
        + ca
        + "&encoding=der"
    )
    leaves: dict[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = {}
    for name, platform in TCB_PROFILES.items():
        leaf_key = seeded.key("pck:" + name)
        leaf = issue(
            "pck:" + name,
            _intel_name("Intel SGX PCK Certificate"),
            leaf_key,
            by=(pck_ca_name, keys.pck_ca),
            crl_url=pck_crl_url,
            extra=[
                _sgx_extension(
                    ppid=ppid,
                    platform=platform,
                    pce_id=pce_id,
                    fmspc=bytes.fromhex(fmspc),
                    platform_instance_id=instance_id,
                    platform_flags=platform_flags,
                )
            ],
        )
        leaves[name] = (leaf_key, leaf)
    der = serialization.Encoding.DER
    return DcapTestPki(
        fmspc=fmspc,
        not_before=not_before,
        not_after=not_after,
        ca=ca,
        root_ca_der=root.public_bytes(der),
        pck_ca_der=pck_ca.public_bytes(der),
        tcb_signing_der=tcb_signing.public_bytes(der),
        ppid=ppid,
        pce_id=pce_id,
        platform_instance_id=instance_id,
        platform_flags=platform_flags,
        seeded=seeded,
        keys=keys,
        pck_leaves=leaves,
    )


@functools.lru_cache(maxsize=64)
def _build_cached(
    fmspc: str,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    seed: bytes,
    ca: Literal["platform", "processor"],
    platform_flags: tuple[bool, bool, bool],
) -> DcapTestPki:
    return _build(fmspc, not_before, not_after, seed, ca, platform_flags)

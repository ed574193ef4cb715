"""The binding rule: how report data ties evidence to a TLS key and a nonce.

This is the one module that knows every report-data scheme.  A validator names
its scheme (``ValidatorSpec.binding_scheme``) and hands the core the report data
it found in verified evidence; the core computes what that value must be from
the server's SubjectPublicKeyInfo and the client's nonce, and compares the two
in constant time at exact length.  Nothing is padded or truncated silently: a
scheme whose wire form is a 32-byte hash followed by 32 zero bytes says so, and
the zeros are compared too.

Freshness is reported, not assumed: a value that matches with the connection's
nonce is ``nonce``-fresh; a value that only binds the key (static certificates)
is ``key-only``; offline appraisal checks no binding and says ``unbound``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

import attrs

from atls_core.errors import BindingMismatch, ConfigurationError
from atls_core.interfaces import SNI_FORMS

__all__ = [
    "NONCE_SIZE",
    "SCHEMES",
    "SNI_FORMS",
    "Binding",
    "BindingContext",
    "Freshness",
    "ReportDataScheme",
    "bind",
    "check_certificate_digest",
    "check_public_key",
    "constant_time_equal",
    "decode_sni",
    "encode_sni",
    "key_digest",
    "new_nonce",
    "nonce_in_sni",
    "report_data_for",
]

NONCE_SIZE = 32
"""Bytes of client randomness per connection (52 base32 characters in SNI)."""

_SNI_PREFIX = "atls-"
_ZERO32 = bytes(32)


class Freshness(enum.Enum):
    NONCE = "nonce"
    """The evidence was produced for this connection's nonce."""
    KEY_ONLY = "key-only"
    """The evidence binds the TLS key but no nonce (a static certificate)."""
    UNBOUND = "unbound"
    """Offline appraisal: no TLS key or nonce was checked."""


@attrs.frozen(kw_only=True)
class BindingContext:
    """What the client knows about the connection being appraised."""

    spki_der: bytes | None
    """The server's SubjectPublicKeyInfo, DER; ``None`` only when offline."""
    nonce: bytes | None = None
    """This connection's client nonce, if one was sent."""
    certificate_der: bytes | None = None
    """The server's leaf certificate, DER."""
    offline: bool = False
    """Offline appraisal: everything but the binding is checked."""

    @classmethod
    def offline_context(cls) -> BindingContext:
        return cls(spki_der=None, nonce=None, certificate_der=None, offline=True)

    @property
    def key_digest(self) -> str | None:
        return key_digest(self.spki_der) if self.spki_der is not None else None


@attrs.frozen(kw_only=True)
class Binding:
    """The binding part of an attestation result."""

    scheme: str
    freshness: Freshness
    verified: bool
    nonce: str | None = None
    """Hex of the nonce the evidence was bound to, if any."""
    key_digest: str | None = None
    """SHA-256 of the bound SubjectPublicKeyInfo, hex."""

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "freshness": self.freshness.value,
            "verified": self.verified,
            "nonce": self.nonce,
            "key_digest": self.key_digest,
        }


Material = Mapping[str, bytes]
_Compute = Callable[[bytes, bytes | None, Material], bytes]


@attrs.frozen(kw_only=True)
class ReportDataScheme:
    """One named way to compute report data."""

    name: str
    length: int
    uses_nonce: bool
    compute: _Compute = attrs.field(repr=False)
    """``compute(spki_der, nonce_or_None, material) -> report data``."""
    description: str = ""
    material: tuple[str, ...] = ()
    """Names of extra inputs the validator must supply from verified evidence."""
    certificate_digest: str | None = None
    """Name of the material holding the SHA-256 of the TLS certificate, for schemes
    whose report data does not cover the key: :func:`bind` then checks it against
    the connection's certificate, so a validator cannot forget the key binding."""


def key_digest(spki_der: bytes) -> str:
    return hashlib.sha256(spki_der).hexdigest()


def constant_time_equal(expected: bytes, actual: bytes) -> bool:
    """Exact-length, constant-time comparison (length is not secret)."""
    return len(expected) == len(actual) and hmac.compare_digest(expected, actual)


def new_nonce() -> bytes:
    """Fresh client randomness (the kernel's CSPRNG, as ``secrets.token_bytes``)."""
    return os.urandom(NONCE_SIZE)


# --- schemes -----------------------------------------------------------------


def _atls_v1(spki: bytes, nonce: bytes | None, _m: Material) -> bytes:
    nonce = nonce or b""
    if len(nonce) > 255:
        raise BindingMismatch("nonce longer than 255 bytes", check="binding.nonce")
    return hashlib.sha512(b"atls-v1\x00" + bytes([len(nonce)]) + nonce + spki).digest()


def _challenge_v1(_spki: bytes, nonce: bytes | None, _m: Material) -> bytes:
    if nonce is None:
        raise BindingMismatch("challenge evidence needs a nonce", check="binding.nonce")
    return hashlib.sha512(b"atls-challenge-v1\x00" + nonce).digest()


def _dstack_ratls(spki: bytes, _n: bytes | None, _m: Material) -> bytes:
    return hashlib.sha512(b"ratls-cert:" + spki).digest()


def _gramine_legacy(spki: bytes, _n: bytes | None, _m: Material) -> bytes:
    return hashlib.sha256(spki).digest() + _ZERO32


_PUBKEY_HASHES = {b"sha256": hashlib.sha256, b"sha384": hashlib.sha384, b"sha512": hashlib.sha512}


def _gramine_tcg(spki: bytes, _n: bytes | None, material: Material) -> bytes:
    claims = material["claims"]
    algorithm = material["pubkey_hash_alg"]
    claimed = material["pubkey_hash"]
    hasher = _PUBKEY_HASHES.get(algorithm)
    if hasher is None:
        raise BindingMismatch(
            "unsupported pubkey-hash algorithm",
            check="binding.pubkey_hash_alg",
            expected=sorted(a.decode() for a in _PUBKEY_HASHES),
            actual=algorithm.decode(errors="replace"),
        )
    if not constant_time_equal(hasher(spki).digest(), claimed):
        raise BindingMismatch(
            "pubkey-hash claim does not match the TLS key",
            check="binding.pubkey_hash",
            expected=hasher(spki).digest(),
            actual=claimed,
        )
    return hashlib.sha256(claims).digest() + _ZERO32


def _azure_aci(spki: bytes, nonce: bytes | None, _m: Material) -> bytes:
    if nonce is None:
        raise BindingMismatch("azure.aci evidence needs a nonce", check="binding.nonce")
    document = json.dumps(
        {
            "publicKey": base64.b64encode(spki).decode(),
            "nonce": base64.b64encode(nonce).decode(),
        },
        separators=(",", ":"),
    ).encode()
    return hashlib.sha256(document).digest() + _ZERO32


def _maa_held_data(spki: bytes, _n: bytes | None, material: Material) -> bytes:
    held_key = material["held_key_spki"]
    if not constant_time_equal(spki, held_key):
        raise BindingMismatch(
            "the key in the enclave-held data is not the TLS key",
            check="binding.held_key",
            expected=key_digest(spki),
            actual=key_digest(held_key),
        )
    return hashlib.sha256(material["held_data"]).digest() + _ZERO32


SCHEMES: Mapping[str, ReportDataScheme] = MappingProxyType(
    {
        s.name: s
        for s in (
            ReportDataScheme(
                name="atls-v1",
                length=64,
                uses_nonce=True,
                compute=_atls_v1,
                description="SHA-512('atls-v1' 0x00 || len(nonce) || nonce || SPKI); "
                "an empty nonce means a static, key-only certificate",
            ),
            ReportDataScheme(
                name="challenge-v1",
                length=64,
                uses_nonce=True,
                compute=_challenge_v1,
                certificate_digest="certificate_sha256",
                description="SHA-512('atls-challenge-v1' 0x00 || nonce); the key is "
                "bound by the SHA-256 of the TLS certificate the evidence names "
                "(material certificate_sha256, e.g. a measured certificate event)",
            ),
            ReportDataScheme(
                name="dstack-ratls-cert",
                length=64,
                uses_nonce=False,
                compute=_dstack_ratls,
                description="SHA-512('ratls-cert:' || SPKI) (dstack RA-TLS)",
            ),
            ReportDataScheme(
                name="gramine-legacy",
                length=64,
                uses_nonce=False,
                compute=_gramine_legacy,
                description="SHA-256(SPKI) || 32 zero bytes (Gramine legacy extension)",
            ),
            ReportDataScheme(
                name="gramine-tcg",
                length=64,
                uses_nonce=False,
                compute=_gramine_tcg,
                material=("claims", "pubkey_hash_alg", "pubkey_hash"),
                description="SHA-256(CBOR claims) || 32 zero bytes, claims' pubkey-hash "
                "= H(SPKI) (Gramine TCG DICE extension)",
            ),
            ReportDataScheme(
                name="azure-aci",
                length=64,
                uses_nonce=True,
                compute=_azure_aci,
                description="SHA-256(compact JSON {publicKey: b64(SPKI), nonce: b64(nonce)}) "
                "|| 32 zero bytes (opaque-systems atls-python)",
            ),
            ReportDataScheme(
                name="maa-held-data",
                length=64,
                uses_nonce=False,
                compute=_maa_held_data,
                material=("held_data", "held_key_spki"),
                description="SHA-256(enclave-held data) || 32 zero bytes, where the held "
                "data carries the TLS key (Azure Attestation SGX/TDX runtime data)",
            ),
        )
    }
)


def report_data_for(
    scheme: str,
    *,
    spki_der: bytes,
    nonce: bytes | None = None,
    material: Material | None = None,
) -> bytes:
    """Report data a server must put in its evidence (issuers use this)."""
    return _scheme(scheme).compute(spki_der, nonce, _material(_scheme(scheme), material))


def _scheme(name: str) -> ReportDataScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ConfigurationError(
            "unknown binding scheme", check="binding.scheme", expected=sorted(SCHEMES), actual=name
        ) from None


def _material(scheme: ReportDataScheme, material: Material | None) -> Material:
    material = material or {}
    missing = [name for name in scheme.material if name not in material]
    if missing:
        raise BindingMismatch(
            f"binding scheme {scheme.name} needs {', '.join(missing)} from the evidence",
            check="binding.material",
        )
    return material


def bind(
    scheme_name: str,
    context: BindingContext,
    actual: bytes,
    *,
    material: Material | None = None,
) -> Binding:
    """Check that ``actual`` report data binds the context's key (and nonce).

    Returns the :class:`Binding` for the result or raises :class:`BindingMismatch`.
    A nonce scheme is first tried with the connection's nonce; if the value was
    made without a nonce (a static certificate) it is accepted as key-only and
    policy decides whether key-only freshness is enough.
    """
    scheme = _scheme(scheme_name)
    if context.offline:
        return Binding(scheme=scheme.name, freshness=Freshness.UNBOUND, verified=False)
    if context.spki_der is None:
        raise BindingMismatch("no TLS key to bind to", check="binding.key")
    if len(actual) != scheme.length:
        raise BindingMismatch(
            f"report data has the wrong length for scheme {scheme.name}",
            check="binding.report_data_length",
            expected=scheme.length,
            actual=len(actual),
        )
    inputs = _material(scheme, material)
    if scheme.certificate_digest is not None:
        claimed = inputs.get(scheme.certificate_digest)
        if claimed is None:
            raise BindingMismatch(
                f"binding scheme {scheme.name} needs {scheme.certificate_digest} from the "
                "evidence: nothing else ties the TLS key to it",
                check="binding.material",
            )
        check_certificate_digest(context, claimed, check="binding.certificate")
    digest = key_digest(context.spki_der)
    candidates: list[tuple[bytes | None, Freshness]] = []
    if scheme.uses_nonce and context.nonce is not None:
        candidates.append((context.nonce, Freshness.NONCE))
    if not scheme.uses_nonce:
        candidates.append((None, Freshness.KEY_ONLY))
    elif scheme.name == "atls-v1":
        candidates.append((b"", Freshness.KEY_ONLY))
    if not candidates:
        raise BindingMismatch(
            f"scheme {scheme.name} needs a nonce and the connection has none",
            check="binding.nonce",
        )
    first_expected = b""
    for nonce, freshness in candidates:
        expected = scheme.compute(context.spki_der, nonce, inputs)
        first_expected = first_expected or expected
        if constant_time_equal(expected, actual):
            return Binding(
                scheme=scheme.name,
                freshness=freshness,
                verified=True,
                nonce=nonce.hex() if nonce else None,
                key_digest=digest,
            )
    raise BindingMismatch(
        "report data does not bind this connection's key and nonce",
        check="binding.report_data",
        expected=first_expected,
        actual=actual,
    )


def check_public_key(context: BindingContext, claimed_spki_der: bytes, *, check: str) -> None:
    """The evidence names a public key: it must be the TLS key, byte for byte."""
    if context.offline:
        return
    if context.spki_der is None or not constant_time_equal(context.spki_der, claimed_spki_der):
        raise BindingMismatch(
            "the attested public key is not the TLS key",
            check=check,
            expected=key_digest(context.spki_der) if context.spki_der else None,
            actual=key_digest(claimed_spki_der),
        )


def check_certificate_digest(
    context: BindingContext, claimed: bytes, *, algorithm: str = "sha256", check: str
) -> None:
    """The evidence names a certificate digest: it must be this connection's certificate."""
    if context.offline:
        return
    if context.certificate_der is None:
        raise BindingMismatch("no TLS certificate to bind to", check=check)
    expected = hashlib.new(algorithm, context.certificate_der).digest()
    if not constant_time_equal(expected, claimed):
        raise BindingMismatch(
            "the attested certificate is not the TLS certificate",
            check=check,
            expected=expected,
            actual=claimed,
        )


# --- the nonce in SNI (the forms: atls_core.interfaces.SNI_FORMS) ------------


def encode_sni(nonce: bytes, host: str, *, form: str = "atls-label") -> str:
    """Server name carrying the nonce.

    ``atls-label``: one lowercase base32 DNS label, ``atls-<52 base32
    chars>.<host>``: 57 characters, under the 63 limit, and the real host name
    stays as the suffix for SNI routing.  ``base64-line``: the whole name is
    ``base64.encodebytes(nonce)``, standard base64 with its trailing newline,
    as atls-python clients sent it; the host name is not sent, so a proxy that
    routes by SNI cannot route it.
    """
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    if form == "base64-line":
        return base64.encodebytes(nonce).decode()
    if form != "atls-label":
        raise ConfigurationError(
            "unknown SNI form", check="binding.sni_form", expected=list(SNI_FORMS), actual=form
        )
    label = _SNI_PREFIX + _base32_label(nonce)
    return f"{label}.{host}" if host else label


_B32 = bytes(range(256)).translate(
    bytes.maketrans(bytes(range(32)), b"abcdefghijklmnopqrstuvwxyz234567")
)
"""Byte value 0..31 -> its lowercase base32 digit (bytes.translate table)."""


def _spread_steps() -> tuple[tuple[int, int], ...]:
    """Shifts and masks that move 64 packed 5-bit groups to one byte each (512 bits)."""
    steps = []
    for half in (32, 16, 8, 4, 2, 1):  # split blocks of 2*half groups, move the top half up
        low = 0
        for start in range(0, 512, 16 * half):
            low |= ((1 << (5 * half)) - 1) << start
        steps.append((3 * half, low))
    return tuple(steps)


_SPREAD = _spread_steps()


def _base32_label(nonce: bytes) -> str:
    """``base64.b32encode(nonce)`` lowercased without padding, for a 32-byte nonce.

    Every connection pays for this, and b32encode loops in Python per 5 bytes: here six
    big-integer steps put each 5-bit digit in a byte of its own, then one translate.
    """
    value = int.from_bytes(nonce, "big") << 4  # 256 bits + 4 zero bits = 52 digits
    for shift, low in _SPREAD:
        kept = value & low
        value = kept | ((value ^ kept) << shift)
    return value.to_bytes(64, "big")[64 - 52 :].translate(_B32).decode("ascii")


def decode_sni(server_name: str | None) -> tuple[bytes | None, str | None]:
    """Split a server name into (nonce, real host); no nonce label gives (None, name)."""
    if not server_name:
        return None, None
    first, _, rest = server_name.partition(".")
    if not first.lower().startswith(_SNI_PREFIX):
        return None, server_name
    text = first[len(_SNI_PREFIX) :].upper()
    try:
        nonce = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:  # binascii.Error is a ValueError
        return None, server_name
    if len(nonce) != NONCE_SIZE:
        return None, server_name
    return nonce, rest or None


def nonce_in_sni(server_name: str | None, forms: Iterable[str] = SNI_FORMS) -> bytes | None:
    """The client's nonce in ``server_name``, written in any of ``forms`` (the reverse of
    :func:`encode_sni`); ``None`` when the name carries none.

    A server that must also serve atls-python clients reads ``base64-line`` too: the
    whole name is ``base64.encodebytes(nonce)``.
    """
    if "atls-label" in forms:
        nonce, _host = decode_sni(server_name)
        if nonce is not None:
            return nonce
    if "base64-line" in forms and server_name:
        try:
            raw = base64.b64decode(server_name.strip(), validate=True)
        except ValueError:  # binascii.Error is a ValueError
            return None
        return raw if len(raw) == NONCE_SIZE else None
    return None

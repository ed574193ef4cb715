"""The client side of attested TLS: an ``ssl.SSLContext`` that appraises.

The standard ``ssl`` module has no verification callback, so
:class:`ATLSContext` lets OpenSSL finish the handshake with certificate
verification off and then, *before the socket or SSLObject is handed back*,
appraises the peer: evidence from the certificate (the connection's nonce
travels in SNI) or fetched by challenge over the same connection, checked by
the validator that configuration selects for the host.  A failure closes the
connection and raises :class:`ATLSVerificationError`, which is an
``ssl.SSLCertVerificationError`` so requests, urllib3 and httpx report it as
a certificate failure.

Fail-closed details:

* every read/write path of the socket or SSLObject first completes the
  handshake *and* the appraisal, so a deferred handshake
  (``do_handshake_on_connect=False``) or an implicit one inside ``send``
  cannot leak an application byte to an unappraised server;
* TLS renegotiation is disabled, so the certificate appraised is the
  certificate in use for the whole connection; TLS 1.2 is the minimum;
* callers (urllib3, http.client) that set ``verify_mode``/``check_hostname``
  cannot turn appraisal off: the properties report what atls enforces.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from atls_core import challenge as _challenge
from atls_core.appraisal_cache import AppraisalCache
from atls_core.binding import BindingContext, encode_sni, new_nonce
from atls_core.certificate import PeerCertificate
from atls_core.clock import Clock, SystemClock
from atls_core.config import ATLSConfig
from atls_core.errors import ATLSError, ATLSVerificationError, ConfigurationError, UntrustedChain
from atls_core.evidence import Transport
from atls_core.hostnames import canonical_host
from atls_core.pki import load_roots, verify_pki
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike, validator_for_rule

if TYPE_CHECKING:  # the registry (importlib.metadata, packaging) loads with a validator
    from atls_core.registry import PluginManager

__all__ = [
    "ATLSContext",
    "ATLSObject",
    "ATLSSocket",
    "AppraisalCache",
    "appraisal_deferred",
    "result_of",
]

log = logging.getLogger("atls.tls")
_appraisal_log = logging.getLogger("atls.appraisal")
if not logging.getLogger("atls").handlers:
    # a library stays silent until the application configures logging (see the README)
    logging.getLogger("atls").addHandler(logging.NullHandler())

_BASE: Any = getattr(ssl, "_SSLContext")  # noqa: B009 - the C-level descriptors
_ENCODING_DER: int = getattr(__import__("_ssl"), "ENCODING_DER", 1)
_DEFAULT_CHALLENGE_TIMEOUT = 30.0
_SINGLE = "<single validator>"
_SSLCONTEXT_OPTIONS: Any = ssl.SSLContext.__dict__["options"]
_DEFERRED: contextvars.ContextVar[bool] = contextvars.ContextVar("atls_deferred", default=False)


@contextlib.contextmanager
def appraisal_deferred() -> Iterator[None]:
    """``SSLObject``s wrapped inside this block stop before appraising (event loops).

    Appraisal may fetch collateral or keys, seconds of blocking I/O; inside an event
    loop's handshake that stalls every other task.  Such an :class:`ATLSObject`
    completes the TLS handshake (and a challenge) and then refuses every read and
    write until :meth:`ATLSObject.finish_appraisal`, which the caller runs on a
    worker thread, has accepted the server.
    """
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


# --- per-connection plan -------------------------------------------------------


class _Plan(NamedTuple):
    """What one connection will be appraised against (a tuple: built on every connection)."""

    host: str | None
    rule: str
    selected: AppraiserLike
    nonce: bytes
    sni: str | None
    transport: Transport


class _State:
    """Mutable per-connection appraisal state (one per socket/SSLObject)."""

    PENDING = "pending"
    CHALLENGE = "challenge"
    APPRAISING = "appraising"
    DONE = "done"
    FAILED = "failed"

    def __init__(self, context: ATLSContext, plan: _Plan, *, deferred: bool = False) -> None:
        self.context = context
        self.plan = plan
        self.phase = self.PENDING
        self.result: AttestationResult | None = None
        self.error: ATLSVerificationError | None = None
        self.reader: _challenge.ResponseReader | None = None
        self.deferred = deferred
        """Stop at APPRAISING for :meth:`ATLSObject.finish_appraisal` (see appraisal_deferred)."""
        self.gathered: list[tuple[bytes, list[bytes], Any]] = []
        """What a deferred handshake hands to :meth:`ATLSObject.finish_appraisal`: at most one
        entry, taken with ``list.pop`` (atomic), so two concurrent callers never both appraise."""


# --- the socket and the SSLObject ----------------------------------------------


def _unverified_chain(connection: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
    """The chain the server sent, DER, for PKI validation after the handshake."""
    sslobj: Any = cast(Any, connection)._sslobj
    return [c.public_bytes(_ENCODING_DER) for c in sslobj.get_unverified_chain() or []]


def _guard_error(state: _State | None) -> None:
    if state is not None and state.phase == _State.FAILED and state.error is not None:
        raise state.error


class ATLSSocket(ssl.SSLSocket):
    """An ``SSLSocket`` that is appraised before it carries a single byte."""

    _atls: _State | None = None

    @property
    def attestation_result(self) -> AttestationResult | None:
        state = self._atls
        return state.result if state is not None else None

    def do_handshake(self, block: bool = False) -> None:
        state = self._atls
        if state is None or state.phase == _State.DONE:
            super().do_handshake(block)
            return
        _guard_error(state)
        if state.phase == _State.PENDING:
            super().do_handshake(block)
        try:
            self._atls_appraise(state)
        except ATLSVerificationError:
            self.close()
            raise

    def _atls_appraise(self, state: _State) -> None:
        plan = state.plan
        response = None
        if plan.transport is Transport.CHALLENGE:
            state.phase = _State.CHALLENGE
            response = state.context._run(state, lambda: self._atls_challenge(state))
        der = self.getpeercert(binary_form=True) or b""
        chain = _unverified_chain(self) if plan.selected.pki else []
        state.context._finish(state, der, chain, response)

    def _atls_challenge(self, state: _State) -> Any:
        """The challenge exchange, straight on the TLS object (not the guarded methods).

        ``challenge_timeout`` bounds the whole exchange, not each read: a server
        answering a byte at a time must not hold the client past it.
        """
        plan = state.plan
        request = plan.selected.validator.challenge(plan.nonce)
        sslobj: Any = cast(Any, self)._sslobj
        previous = self.gettimeout()
        limit = state.context.challenge_timeout
        if previous is not None and previous > 0:
            limit = min(previous, limit)
        deadline = time.monotonic() + limit

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left

        def send_all(data: bytes) -> None:
            view = memoryview(data)
            while view:
                self.settimeout(remaining())
                view = view[sslobj.write(view) :]

        def receive() -> bytes:
            self.settimeout(remaining())
            try:
                data: bytes = sslobj.read(65536)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            return data

        try:
            return _challenge.exchange(request, host=plan.host, send_all=send_all, receive=receive)
        except TimeoutError:
            raise ATLSError(
                "the challenge response did not arrive in time", check="challenge.timeout"
            ) from None
        finally:
            if self.fileno() != -1:
                self.settimeout(previous)

    def _atls_ready(self) -> None:
        state = self._atls
        if state is None or state.phase == _State.DONE:
            return
        _guard_error(state)
        if state.phase == _State.CHALLENGE:
            raise ssl.SSLError("atls: the connection is still being appraised")
        self.do_handshake()

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._atls_ready()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._atls_ready()
        return super().write(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._atls_ready()
        return super().send(data, flags)


class ATLSObject(ssl.SSLObject):
    """A memory-BIO ``SSLObject`` (asyncio, anyio) appraised inside ``do_handshake``.

    A challenge runs as a small state machine: the request is written to the
    outgoing BIO and ``SSLWantReadError`` is raised, which makes asyncio and
    anyio flush it and feed the answer before calling ``do_handshake`` again.
    Wrapped under :func:`appraisal_deferred`, ``do_handshake`` ends before the
    appraisal and :meth:`finish_appraisal` runs it.
    """

    _atls: _State | None = None

    @property
    def attestation_result(self) -> AttestationResult | None:
        state = self._atls
        return state.result if state is not None else None

    def do_handshake(self) -> None:
        state = self._atls
        if state is None or state.phase == _State.DONE:
            super().do_handshake()
            return
        _guard_error(state)
        if state.phase == _State.APPRAISING:
            return  # the TLS part is done; finish_appraisal() decides
        if state.phase == _State.PENDING:
            super().do_handshake()
            if state.plan.transport is Transport.CHALLENGE:
                state.context._run(state, lambda: self._atls_send_challenge(state))
                state.phase = _State.CHALLENGE
        response = None
        if state.phase == _State.CHALLENGE:
            response = state.context._run(state, lambda: self._atls_read_challenge(state))
            if response is None:
                # The errno is how urllib3's TLS-in-TLS (HTTPS proxies) recognises the wait.
                raise ssl.SSLWantReadError(
                    ssl.SSL_ERROR_WANT_READ, "atls: waiting for the challenge response"
                )
        der = self.getpeercert(binary_form=True) or b""
        chain = _unverified_chain(self) if state.plan.selected.pki else []
        if state.deferred:
            state.gathered.append((der, chain, response))
            state.phase = _State.APPRAISING
            return
        state.context._finish(state, der, chain, response)

    def finish_appraisal(self) -> None:
        """Appraise what a deferred handshake gathered (blocking: run it on a worker thread).

        Raises :class:`ATLSVerificationError` on refusal, and ``ssl.SSLError`` if the
        handshake has not reached this point; no byte is read or written before success.
        """
        state = self._atls
        if state is None or state.phase == _State.DONE:
            return
        _guard_error(state)
        try:
            gathered = state.gathered.pop() if state.phase == _State.APPRAISING else None
        except IndexError:  # another caller took it: only one appraisal decides
            gathered = None
        if gathered is None:
            raise ssl.SSLError("atls: the handshake has not finished, or is being appraised")
        state.context._finish(state, *gathered)

    def _atls_send_challenge(self, state: _State) -> None:
        plan = state.plan
        request = plan.selected.validator.challenge(plan.nonce)
        state.reader = _challenge.ResponseReader(
            max_body_bytes=request.max_response_bytes, request_method=request.method
        )
        sslobj: Any = cast(Any, self)._sslobj
        sslobj.write(_challenge.encode_request(request, plan.host))

    def _atls_read_challenge(self, state: _State) -> Any:
        assert state.reader is not None
        sslobj: Any = cast(Any, self)._sslobj
        while True:
            try:
                data = sslobj.read(65536)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                state.reader.eof()
            response = state.reader.feed(data)
            if response is not None:
                return response

    def _atls_ready(self) -> None:
        state = self._atls
        if state is None or state.phase == _State.DONE:
            return
        _guard_error(state)
        if state.phase == _State.APPRAISING:
            raise ssl.SSLError("atls: the connection is still being appraised")
        self.do_handshake()
        if state.phase != _State.DONE:
            raise ssl.SSLError("atls: the connection is still being appraised")

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._atls_ready()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._atls_ready()
        return super().write(data)


# --- the context ---------------------------------------------------------------


class ATLSContext(ssl.SSLContext):
    """A client ``SSLContext`` whose peer verification is attestation appraisal.

    Build it from an :class:`ATLSConfig` (a validator per host) or, with
    :meth:`for_validator`, from one validator (a :class:`SelectedValidator` or any
    :class:`~atls_core.selection.AppraiserLike`) for every host.
    Host rules with ``pki = true`` additionally require a certificate chain
    valid for the host under ``pki_cafile``/``pki_cadata`` (default: the
    system roots).  ``challenge_timeout`` (seconds) bounds a challenge exchange
    as a whole on blocking sockets; on asyncio's memory BIOs the exchange is
    part of the handshake, bounded by the loop's ``ssl_handshake_timeout``.

    Given straight to asyncio (``open_connection(ssl=context)``) the appraisal
    runs inside the handshake, on the event loop, which waits while it fetches
    collateral or keys; the httpx transports appraise on a worker thread
    instead (:func:`appraisal_deferred`), and so can other integrations.
    """

    sslsocket_class = ATLSSocket
    sslobject_class = ATLSObject

    def __new__(cls, *args: Any, **kwargs: Any) -> ATLSContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: AppraiserLike | None = None,
        manager: PluginManager | None = None,
        clock: Clock | None = None,
        cache: AppraisalCache | None = None,
        pki_cafile: str | None = None,
        pki_cadata: str | bytes | None = None,
        challenge_timeout: float = _DEFAULT_CHALLENGE_TIMEOUT,
    ) -> None:
        if isinstance(config, (list, tuple)):
            raise ConfigurationError(
                "ATLSContext takes one ATLSConfig (or validator=); for pyatls's "
                "ATLSContext([validators]) use `from atls import ATLSContext` "
                "(pip install atls-pyatls)",
                check="tls.context",
                actual=type(config).__name__,
            )
        if (config is None) == (validator is None):
            raise ConfigurationError(
                "ATLSContext needs exactly one of config= or validator=", check="tls.context"
            )
        self._config = config
        self._single = validator
        self._manager = manager
        self._clock: Clock = clock or SystemClock()
        self.cache = cache if cache is not None else AppraisalCache()
        self._pki_cafile = pki_cafile
        self._pki_cadata = pki_cadata
        self._pki_roots: list[Any] | None = None
        if (
            isinstance(challenge_timeout, bool)
            or not isinstance(challenge_timeout, (int, float))
            or not 0 < challenge_timeout < math.inf
        ):
            raise ConfigurationError(
                "challenge_timeout is a positive, finite number of seconds",
                check="tls.context",
                actual=repr(challenge_timeout),
            )
        self.challenge_timeout = float(challenge_timeout)
        # Keyed by the rule object (config holds every rule): the rule config.rule_for()
        # names is the rule whose validator and policy the connection is appraised under.
        self._selected: dict[int, AppraiserLike] = {}
        self._lock = threading.Lock()
        if config is not None:
            # Every rule's validator is built now: a mistake in settings or policy
            # is a ConfigurationError here, not a refusal at the first connection.
            for rule in config.hosts:
                self._selected[id(rule)] = validator_for_rule(config, rule, manager=manager)
        # OpenSSL itself verifies nothing: appraisal (and PKI when asked) run after it.
        _BASE.check_hostname.__set__(self, False)
        _BASE.verify_mode.__set__(self, ssl.CERT_NONE)
        self.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
        self.minimum_version = ssl.TLSVersion.TLSv1_2

    @classmethod
    def for_validator(cls, selected: AppraiserLike, **kwargs: Any) -> ATLSContext:
        """One validator and policy for every host this context connects to."""
        return cls(validator=selected, **kwargs)

    def expired(self, result: AttestationResult) -> bool:
        """Whether ``result`` is past its ``expires_at`` by this context's clock.

        A connection carries its handshake's result for as long as it lives; the HTTP
        integrations ask this before reusing a pooled connection, so that after expiry
        the next request goes over a new connection, appraised afresh.
        """
        expires = result.expires_at
        return expires is not None and self._clock.now() >= expires

    # -- settings callers may try to change ----------------------------------

    @property  # type: ignore[override]
    def verify_mode(self) -> ssl.VerifyMode:
        """Always ``CERT_REQUIRED``: every connection is appraised; setting it is ignored."""
        return ssl.CERT_REQUIRED

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode) -> None:
        return  # appraisal cannot be switched off through verify_mode

    @property
    def check_hostname(self) -> bool:
        """Reported as ``True``: the host's identity is its appraised evidence."""
        return True

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        return

    @property  # type: ignore[override]
    def options(self) -> ssl.Options:
        value: ssl.Options = _SSLCONTEXT_OPTIONS.__get__(self)
        return value

    @options.setter
    def options(self, value: ssl.Options) -> None:
        # Renegotiation could swap the certificate after appraisal: it stays off.
        _SSLCONTEXT_OPTIONS.__set__(self, value | ssl.OP_NO_RENEGOTIATION)

    # -- wrapping --------------------------------------------------------------

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ATLSSocket:
        if server_side:
            raise ValueError("ATLSContext is for clients; use atls_core.server for servers")
        plan = self._plan(server_hostname)
        wrapped = cast(
            "ATLSSocket",
            super().wrap_socket(
                sock,
                server_side=False,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=suppress_ragged_eofs,
                server_hostname=plan.sni,
                session=session,
            ),
        )
        wrapped._atls = _State(self, plan)
        cast(Any, wrapped).do_handshake_on_connect = do_handshake_on_connect
        if do_handshake_on_connect and _connected(wrapped):
            wrapped.do_handshake()
        return wrapped

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ATLSObject:
        if server_side:
            raise ValueError("ATLSContext is for clients; use atls_core.server for servers")
        plan = self._plan(server_hostname)
        obj = cast(
            "ATLSObject",
            super().wrap_bio(
                incoming, outgoing, server_side=False, server_hostname=plan.sni, session=session
            ),
        )
        obj._atls = _State(self, plan, deferred=_DEFERRED.get())
        return obj

    # -- appraisal -----------------------------------------------------------

    def _select(self, host: str | None) -> tuple[str, AppraiserLike]:
        if self._single is not None:
            return _SINGLE, self._single
        assert self._config is not None
        if not host:
            raise ConfigurationError(
                "a host name is needed to choose a validator", check="config.hosts"
            )
        rule = self._config.rule_for(host)
        return rule.pattern, self._selected[id(rule)]

    def _plan(self, server_hostname: str | bytes | None) -> _Plan:
        # The host in its canonical form (atls_core.hostnames), the form rules are
        # written in: http.client and asyncio pass Unicode names and IP shorthand as
        # given, and a rule missed here would let another rule ("*") take the host.
        given = server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
        host = given
        try:
            if given is not None:
                host = canonical_host(given) or None
            rule, selected = self._select(host)
            nonce = new_nonce()
            sni: str | None = host
            transport = selected.spec.transport
            if transport is Transport.CERTIFICATE:
                # The nonce rides in SNI, in the form the validator's servers read;
                # an IP literal cannot be a DNS suffix.
                suffix = "" if host is None or _is_ip(host) else host
                sni = encode_sni(nonce, suffix, form=selected.spec.sni_form)
        except ATLSError as error:
            raise ATLSVerificationError(error, host=host) from error
        return _Plan(host, rule, selected, nonce, sni, transport)

    def _run(self, state: _State, step: Callable[..., Any], *args: Any) -> Any:
        """Run one appraisal step; any failure becomes a recorded verification error."""
        try:
            return step(*args)
        except ssl.SSLWantReadError:
            raise
        except ATLSVerificationError as error:
            state.phase, state.error = _State.FAILED, error
            raise
        except ATLSError as error:
            failure = ATLSVerificationError(error, host=state.plan.host)
            state.phase, state.error = _State.FAILED, failure
            raise failure from error
        except OSError as exc:
            cause = ATLSError(
                f"the connection failed during appraisal: {exc}", check="tls.appraisal.io"
            )
            failure = ATLSVerificationError(cause, host=state.plan.host)
            state.phase, state.error = _State.FAILED, failure
            raise failure from exc
        except Exception as exc:
            failure = ATLSVerificationError(_defect(state.plan, exc), host=state.plan.host)
            state.phase, state.error = _State.FAILED, failure
            raise failure from exc

    def _finish(self, state: _State, der: bytes, chain: list[bytes], response: Any) -> None:
        state.result = self._run(state, self._appraise, state.plan, der, chain, response)
        state.phase = _State.DONE

    def _roots(self) -> list[Any]:
        with self._lock:
            if self._pki_roots is None:
                self._pki_roots = load_roots(self._pki_cafile, self._pki_cadata)
            return self._pki_roots

    def _appraise(
        self, plan: _Plan, der: bytes, chain: list[bytes], response: Any
    ) -> AttestationResult:
        if not der:
            raise UntrustedChain("the server presented no certificate", check="tls.certificate")
        if plan.selected.pki:
            verify_pki(chain, plan.host, self._roots(), self._clock)
        validator = plan.selected.validator
        # A cache that stores nothing needs no key: SHA-256 of a certificate of some KiB.
        cached_transport = plan.transport is Transport.CERTIFICATE and self.cache.enabled
        cache_key = hashlib.sha256(der).hexdigest() if cached_transport else ""
        if cached_transport:
            # Before parsing: a hit is a byte-identical certificate, parsed when it was stored.
            cached = self.cache.get(plan.rule, cache_key, self._clock, selected=plan.selected)
            if cached is not None:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "cache hit host=%s validator=%s status=%s certificate=%s",
                        plan.host,
                        plan.selected.spec.id,
                        cached.status.value,
                        cache_key[:16],
                    )
                return cached
        certificate = PeerCertificate.from_der(der)
        if plan.transport is Transport.CERTIFICATE:
            evidence = validator.evidence_from_certificate(certificate)
        elif plan.transport is Transport.CHALLENGE:
            evidence = validator.evidence_from_challenge(response)
        else:
            raise ConfigurationError(
                f"{plan.selected.spec.id} has no live transport", check="tls.transport"
            )
        binding = BindingContext(
            spki_der=certificate.spki_der, nonce=plan.nonce, certificate_der=der
        )
        result = plan.selected.appraise(
            evidence, binding=binding, clock=self._clock, host=plan.host
        )
        result.raise_for_status()
        if not result.binding.verified or result.binding.key_digest != binding.key_digest:
            raise ATLSError(
                "the validator did not bind its result to this connection's key",
                check="binding.key",
                expected=binding.key_digest,
                actual=result.binding.key_digest,
            )
        if cached_transport:
            self.cache.put(plan.rule, cache_key, result, plan.selected)
        return result


def _defect(plan: _Plan, exc: Exception) -> ATLSError:
    """A validator's bare exception: refused (fail closed), named and logged as a defect.

    Not a verdict on the server, so it is logged on ``atls.appraisal`` beside the
    verdicts (with the traceback at DEBUG) and names the plugin's distribution.
    """
    spec_id = plan.selected.spec.id
    plugin = getattr(plan.selected, "plugin", None)
    origin = f" (plugin {plugin.distribution} {plugin.version})" if plugin is not None else ""
    _appraisal_log.warning(
        "internal error host=%s validator=%s%s: %s: %s",
        plan.host,
        spec_id,
        origin,
        type(exc).__name__,
        exc,
        exc_info=exc if _appraisal_log.isEnabledFor(logging.DEBUG) else None,
    )
    return ATLSError(
        f"{spec_id}{origin} raised {type(exc).__name__}: {exc} (a defect in the validator, "
        "not a verdict on the server)",
        check="tls.appraisal.internal",
    )


def _is_ip(host: str) -> bool:
    if ":" not in host and not host.replace(".", "").isdigit():
        return False  # a DNS name (has a letter or a hyphen): skip ipaddress's raising path
    from ipaddress import ip_address

    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _connected(sock: socket.socket) -> bool:
    known = getattr(sock, "_connected", None)  # SSLSocket._create has asked the kernel already
    if isinstance(known, bool):
        return known
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def result_of(connection: Any) -> AttestationResult | None:
    """The attestation result of a connection, or ``None`` if it has none.

    Accepts an :class:`ATLSSocket`, an :class:`ATLSObject`, the private
    ``_ssl`` object some libraries expose as ``ssl_object``, an asyncio
    ``StreamWriter``/transport or an httpcore network stream.
    """
    seen = 0
    while connection is not None and seen < 4:
        seen += 1
        result = getattr(connection, "attestation_result", None)
        if isinstance(result, AttestationResult):
            return result
        if isinstance(connection, (ATLSSocket, ATLSObject)):
            return None
        owner = getattr(connection, "owner", None)
        if owner is not None and owner is not connection:
            connection = owner
            continue
        get_extra_info = getattr(connection, "get_extra_info", None)
        if callable(get_extra_info):
            connection = get_extra_info("ssl_object")
            continue
        return None
    return None

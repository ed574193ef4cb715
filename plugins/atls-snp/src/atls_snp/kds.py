"""AMD's key distribution service (KDS): VCEKs, intermediate chains and CRLs, cached.

The KDS (``https://kdsintf.amd.com``, AMD specification 57230) serves, per
product family: ``/vcek/v1/<Product>/<hwID>?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..``
(``&fmcSPL=..`` from Turin on) -- the VCEK of one chip at one TCB, DER;
``/vcek/v1/<Product>/cert_chain`` and ``/vlek/v1/<Product>/cert_chain`` -- the
ASK or ASVK and the ARK, PEM; ``/vcek/v1/<Product>/crl`` and
``/vlek/v1/<Product>/crl`` -- the ARK's CRL, DER.  VLEKs themselves are not
public: they come with the evidence.

Everything fetched is verified like anything else (the pinned ARK decides), so
the service is trusted for availability only.  Answers are cached per URL in
the process, but only once they have verified (:meth:`KdsCache.keep`): a wrong
answer costs the appraisal that fetched it, not a cache lifetime of refusals.
Certificates stay for ``cache_seconds``, a CRL until its next update (at most
``cache_seconds``); concurrent appraisals share one fetch.  The cache
is shared by validators with different ``cache_seconds``: each is served only
answers younger than its own, so one configured to see a revocation within a
minute is never handed a CRL that another, configured for a day, fetched.  A CRL
older than one that verified before (a replay from before a revocation) is refused
(:attr:`KdsCache.crl_issued`).  Every
request goes through :func:`atls_core.fetch.fetch`: one deadline for the whole
exchange, a size cap, TLS verified, no redirects.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

import attrs

from atls_core.errors import ConfigurationError, UntrustedChain
from atls_core.fetch import SingleFlight, fetch
from atls_core.rollback import NewestSeen
from atls_snp.report import TcbVersion
from atls_snp.roots import Product, SigningKey

__all__ = ["AMD_KDS_URL", "Answer", "KdsCache", "KdsClient", "check_kds_url"]

AMD_KDS_URL = "https://kdsintf.amd.com"
_MAX_BYTES = 64 * 1024
_MAX_ENTRIES = 256


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_kds_url(url: str, *, where: str) -> str:
    """https, or http on loopback only (a local mirror, tests); no trailing slash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and _loopback(host):
        return url.rstrip("/")
    raise ConfigurationError(
        f"{where}: the key distribution service URL must be https (http only on loopback)",
        check="config.snp.kds_url",
        actual=url,
    )


@attrs.define
class _Entry:
    body: bytes
    fetched: float
    expires: float
    """When the document itself stops being good (a CRL's next update)."""


@attrs.frozen
class Answer:
    """One answer for ``url``: from the cache (verified before), or fetched and not yet verified."""

    url: str
    body: bytes
    fetched: float
    expires: float
    cached: bool


class KdsCache:
    """Verified answers by URL until they expire (monotonic clock); one fetch per URL at a time.

    :meth:`get` never stores what it fetched: the caller verifies the answer and
    hands it to :meth:`keep`, so an answer that does not verify is fetched again
    by the next appraisal instead of being served to every appraisal until it expires.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: SingleFlight[str, Answer] = SingleFlight()
        self._clock = clock
        self.fetches = 0
        self.crl_issued: NewestSeen[tuple[bytes, int], dt.datetime] = NewestSeen(
            what="revocation list", check="snp.crl.rollback", max_keys=_MAX_ENTRIES
        )
        """The newest ``thisUpdate`` of a CRL that verified, per ARK and key kind: whoever
        answers a fetch (a mirror at ``kds_url``) could replay an older genuine CRL, still
        before its next update, from before a revocation."""

    def get(
        self,
        url: str,
        load: Callable[[], bytes],
        lifetime: Callable[[bytes], float],
        *,
        max_age: float = math.inf,
    ) -> Answer:
        """The answer for ``url``: cached if under ``max_age`` seconds old and unexpired.

        ``lifetime(body)`` is how long an answer stays good at all; ``max_age`` is the
        caller's own bound, so callers with different bounds can share the cache.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None and entry.expires > now and now - entry.fetched < max_age:
                self._entries.move_to_end(url)
                return Answer(url, entry.body, entry.fetched, entry.expires, cached=True)
        return self._flights.run(url, lambda: self._load(url, load, lifetime))

    def _load(
        self, url: str, load: Callable[[], bytes], lifetime: Callable[[bytes], float]
    ) -> Answer:
        body = load()
        seconds = max(0.0, lifetime(body))
        with self._lock:
            self.fetches += 1
        now = self._clock()
        return Answer(url, body, now, now + seconds, cached=False)

    def keep(self, answer: Answer) -> None:
        """Cache a fetched ``answer`` that verified; its age counts from when it was fetched."""
        if answer.cached:
            return
        with self._lock:
            entry = self._entries.get(answer.url)
            if entry is not None and entry.fetched > answer.fetched:
                return  # a newer verified answer is already here
            self._entries[answer.url] = _Entry(
                body=answer.body, fetched=answer.fetched, expires=answer.expires
            )
            self._entries.move_to_end(answer.url)
            while len(self._entries) > _MAX_ENTRIES:
                self._entries.popitem(last=False)

    def forget(self, answer: Answer) -> None:
        """Drop ``answer`` if it is still the one cached for its URL (found out of date)."""
        with self._lock:
            entry = self._entries.get(answer.url)
            if entry is not None and entry.fetched == answer.fetched:
                del self._entries[answer.url]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


DEFAULT_CACHE = KdsCache()
"""Shared by every validator in the process: AMD rate-limits its service."""


def _kind(signing: SigningKey) -> str:
    return "vcek" if signing is SigningKey.VCEK else "vlek"


class KdsClient:
    """Fetches from one KDS base URL through the bounded fetch helper and a cache."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        cache_seconds: float,
        cache: KdsCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.cache = cache or DEFAULT_CACHE

    def _get(self, path: str, lifetime: Callable[[bytes], float] | None = None) -> Answer:
        url = self.base_url + path

        def load() -> bytes:
            response = fetch(
                url,
                timeout=self.timeout,
                expect={200},
                max_bytes=_MAX_BYTES,
                name="AMD key distribution service",
                check="snp.kds",
            )
            return response.body

        return self.cache.get(
            url, load, lifetime or (lambda _body: math.inf), max_age=self.cache_seconds
        )

    def keep(self, answer: Answer) -> None:
        """``answer`` verified: share it with later appraisals (see :meth:`KdsCache.keep`)."""
        self.cache.keep(answer)

    def keep_crl(
        self, answer: Answer, *, ark: bytes, signing: SigningKey, issued: dt.datetime
    ) -> None:
        """``answer``, a CRL the ARK (digest ``ark``) signed, issued at ``issued``: refused if
        older than one that verified before (:attr:`KdsCache.crl_issued`), else kept.

        A refused answer from the cache (another mirror's, fetched before a newer one was
        seen) is dropped, so the next appraisal fetches again instead of being refused until
        it expires.
        """
        try:
            self.cache.crl_issued.note((ark, signing.value), issued)
        except UntrustedChain:
            self.cache.forget(answer)
            raise
        self.cache.keep(answer)  # signed by the ARK: good to share, even if it revokes

    def cert_chain(self, product: Product, signing: SigningKey) -> Answer:
        """The ASK (or ASVK) and ARK of ``product``, PEM."""
        return self._get(f"/{_kind(signing)}/v1/{product.value}/cert_chain")

    def vcek(self, product: Product, chip_id: bytes, tcb: TcbVersion) -> Answer:
        """The VCEK of one chip at the report's REPORTED_TCB, DER."""
        hw_id = chip_id[:8] if product.turin_layout else chip_id
        spls = tcb.components()
        query = (
            f"blSPL={spls['bootloader']:02d}&teeSPL={spls['tee']:02d}"
            f"&snpSPL={spls['snp']:02d}&ucodeSPL={spls['microcode']:02d}"
        )
        if "fmc" in spls:
            query += f"&fmcSPL={spls['fmc']:02d}"
        return self._get(f"/vcek/v1/{product.value}/{hw_id.hex()}?{query}")

    def crl(
        self, product: Product, signing: SigningKey, lifetime: Callable[[bytes], float]
    ) -> Answer:
        """The ARK's CRL for the ASK (or ASVK), DER; cached for ``lifetime(body)`` seconds."""
        return self._get(
            f"/{_kind(signing)}/v1/{product.value}/crl",
            lifetime,
        )

"""A small reader for SCALE, the Parity codec dstack's V0 attestations are written in.

Hand-written on purpose: no library atls depends on reads SCALE, and the
Python SCALE packages are built around Substrate type registries, far more
than the handful of shapes dstack uses (fixed little-endian integers, compact
integers, byte vectors, vectors, ``Option``, enums).  Keeping it small keeps it
reviewable: every read is bounds-checked against the input, lengths are capped
by the caller, compact integers must be canonical (as parity-scale-codec
insists), nesting is limited, and :meth:`ScaleReader.finish` refuses trailing
bytes.  Every failure is a :class:`~atls_core.errors.MalformedEvidence` whose
``check`` names what went wrong under the reader's prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from atls_core.errors import MalformedEvidence

__all__ = ["DEFAULT_MAX_DEPTH", "ScaleReader"]

T = TypeVar("T")

DEFAULT_MAX_DEPTH = 16
"""dstack's deepest V0 shape nests five levels; anything deeper is not dstack's."""

_U32_MAX = (1 << 32) - 1


class ScaleReader:
    """Reads SCALE values from ``data``, front to back.

    ``prefix`` starts every error's check name (``<prefix>.truncated``,
    ``.compact``, ``.length``, ``.utf8``, ``.option``, ``.variant``, ``.depth``,
    ``.trailing_bytes``) so callers can say whose format was malformed.
    """

    def __init__(
        self, data: bytes, *, prefix: str = "scale", max_depth: int = DEFAULT_MAX_DEPTH
    ) -> None:
        self._data = memoryview(bytes(data))
        self._offset = 0
        self._prefix = prefix
        self._depth = 0
        self._max_depth = max_depth

    # -- plumbing --------------------------------------------------------------

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def error(self, what: str, message: str, **kw: object) -> MalformedEvidence:
        """A named error at the current offset (also for callers' own checks)."""
        return MalformedEvidence(
            f"{message} (at byte {self._offset})", check=f"{self._prefix}.{what}", **kw
        )

    def _take(self, size: int) -> bytes:
        if size > self.remaining:
            raise self.error(
                "truncated",
                "the input ends inside a value",
                expected=f"{size} more bytes",
                actual=self.remaining,
            )
        start = self._offset
        self._offset += size
        return bytes(self._data[start : self._offset])

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        """Count one level of nesting; refuse inputs nested deeper than ``max_depth``."""
        if self._depth >= self._max_depth:
            raise self.error("depth", "values are nested too deeply", expected=self._max_depth)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def finish(self) -> None:
        """A top-level value must use the whole input."""
        if self.remaining:
            raise self.error(
                "trailing_bytes", "bytes follow the value", expected=0, actual=self.remaining
            )

    # -- fixed-size values -------------------------------------------------------

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def fixed(self, size: int) -> bytes:
        """``[u8; size]``: raw bytes, no length prefix."""
        return self._take(size)

    def boolean(self) -> bool:
        value = self.u8()
        if value > 1:
            raise self.error("bool", "a boolean must be 0 or 1", actual=value)
        return value == 1

    # -- compact integers ----------------------------------------------------------

    def compact(self, *, max_value: int = _U32_MAX) -> int:
        """A compact (variable-length) unsigned integer, canonically encoded.

        The two low bits of the first byte pick the mode: one byte (6 bits),
        two bytes (14 bits), four bytes (30 bits), or a length-prefixed
        big integer (4 to 67 bytes) for values of 2**30 and more.  A value that
        fits a shorter mode must use it, as parity-scale-codec requires.
        """
        first = self.u8()
        mode = first & 0b11
        if mode == 0b00:
            value = first >> 2
            low = 0
        elif mode == 0b01:
            value = (first | self.u8() << 8) >> 2
            low = 1 << 6
        elif mode == 0b10:
            value = (first | int.from_bytes(self._take(3), "little") << 8) >> 2
            low = 1 << 14
        else:
            size = (first >> 2) + 4
            if size > 16:
                raise self.error("compact", "compact integer wider than 128 bits", actual=size)
            raw = self._take(size)
            value = int.from_bytes(raw, "little")
            # Canonical: no shorter big-integer form, and not small enough for mode 0b10.
            low = 1 << 30 if size == 4 else 1 << (8 * (size - 1))
        if value < low:
            raise self.error("compact", "compact integer is not canonically encoded", actual=value)
        if value > max_value:
            raise self.error(
                "compact", "compact integer out of range", expected=max_value, actual=value
            )
        return value

    def length(self, *, max_items: int, min_item_size: int = 1) -> int:
        """A collection length (``Compact<u32>``), capped and checked against the input left."""
        count = self.compact()
        if count > max_items:
            raise self.error(
                "length", "collection too long", expected=f"<= {max_items}", actual=count
            )
        if count * min_item_size > self.remaining:
            raise self.error(
                "truncated",
                "the collection is longer than the input left",
                expected=count * min_item_size,
                actual=self.remaining,
            )
        return count

    # -- collections -----------------------------------------------------------------

    def byte_vec(self, *, max_len: int) -> bytes:
        """``Vec<u8>``: a compact length, then the bytes."""
        return self._take(self.length(max_items=max_len))

    def string(self, *, max_len: int) -> str:
        """``String``: a byte vector that must be UTF-8."""
        raw = self.byte_vec(max_len=max_len)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("utf8", "a string is not valid UTF-8") from None

    def vec(
        self, item: Callable[[ScaleReader], T], *, max_items: int, min_item_size: int = 1
    ) -> list[T]:
        """``Vec<T>``: a compact count, then the items read by ``item``."""
        count = self.length(max_items=max_items, min_item_size=min_item_size)
        with self.nested():
            return [item(self) for _ in range(count)]

    def option(self, item: Callable[[ScaleReader], T]) -> T | None:
        """``Option<T>``: 0 for None, 1 then the value for Some."""
        tag = self.u8()
        if tag == 0:
            return None
        if tag != 1:
            raise self.error("option", "an Option tag must be 0 or 1", actual=tag)
        with self.nested():
            return item(self)

    def variant(self, count: int, *, what: str = "enum") -> int:
        """An enum's variant index (one byte), which must name one of ``count`` variants."""
        index = self.u8()
        if index >= count:
            raise self.error(
                "variant", f"unknown {what} variant", expected=f"< {count}", actual=index
            )
        return index

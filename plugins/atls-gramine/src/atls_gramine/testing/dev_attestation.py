"""A fake Gramine ``/dev/attestation`` for tests: real files, a real FIFO, synthetic quotes.

Gramine's pseudo-filesystem answers a read of ``quote`` with a fresh quote over
whatever was last written to ``user_report_data``.  The fake reproduces that
with a named pipe: a thread waits for a reader to open ``quote``, reads the
current ``user_report_data`` and writes ``make_quote(report_data)``.  The
issuer under test therefore does exactly the file I/O it does in an enclave.
Before writing, the thread replaces the FIFO with a fresh one, so the reader
being served sees end-of-file after its quote and the next reader (who opens
the new FIFO) can never receive a second quote in the same stream.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["FakeDevAttestation"]


class FakeDevAttestation:
    """Context manager: ``with FakeDevAttestation(tmp_path / "attestation", make_quote) as dev:``."""

    def __init__(
        self,
        root: Path,
        make_quote: Callable[[bytes], bytes],
        *,
        attestation_type: str = "dcap",
    ) -> None:
        self.root = Path(root)
        self._make_quote = make_quote
        self._attestation_type = attestation_type
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.report_data_seen: list[bytes] = []
        """Report data of every quote served, in order."""
        self.errors: list[BaseException] = []

    @property
    def quote_path(self) -> Path:
        return self.root / "quote"

    def __enter__(self) -> FakeDevAttestation:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "attestation_type").write_text(self._attestation_type + "\n")
        (self.root / "user_report_data").write_bytes(bytes(64))
        if not self.quote_path.exists():
            os.mkfifo(self.quote_path, 0o600)
        elif not stat.S_ISFIFO(self.quote_path.stat().st_mode):
            raise FileExistsError(f"{self.quote_path} exists and is not a FIFO")
        self._thread = threading.Thread(
            target=self._serve, name="fake-dev-attestation", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        # Unblock the server's open() of the FIFO with throw-away readers until it exits
        # (it may not have reached open() yet when the first one comes and goes).
        for _ in range(500):
            if thread is None or not thread.is_alive():
                return
            with contextlib.suppress(OSError):
                os.close(os.open(self.quote_path, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(timeout=0.01)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                with open(self.quote_path, "wb", buffering=0) as pipe:
                    if self._stop.is_set():
                        return
                    self.quote_path.unlink()
                    os.mkfifo(self.quote_path, 0o600)
                    report_data = (self.root / "user_report_data").read_bytes()[:64]
                    quote = self._make_quote(report_data)
                    self.report_data_seen.append(report_data)
                    view = memoryview(quote)
                    while view:
                        view = view[pipe.write(view) or 0 :]
            except BrokenPipeError:
                continue
            except Exception as exc:  # recorded for the test to assert on
                self.errors.append(exc)
                return

"""An emulated configfs-tsm (provider ``sev_guest``) and the host's certificate tables.

Pass a :class:`FakeConfigfsTsm` as ``fs=`` to :class:`atls_snp.issuer.ConfigfsSnpIssuer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from atls_core.testing.tsm import EmulatedConfigfsTsm

__all__ = ["GUIDS", "FakeConfigfsTsm", "certificate_table"]

GUIDS = {
    "ark": "c0b406a4-a803-4952-9743-3fb6014cd0ae",
    "ask": "4ab7b379-bbac-4fe4-a02f-05aef327c782",
    "vcek": "63da758d-e664-4564-adc5-f4b93be8accd",
    "vlek": "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
    "crl": "92f81bc3-5811-4d3d-97ff-d19f88dc67ea",
}


def certificate_table(
    entries: Sequence[tuple[str, bytes]], *, little_endian: bool = False
) -> bytes:
    """A GHCB certificate table: (role, blob) entries, then the all-zero terminator."""
    header = bytearray()
    payload = bytearray()
    start = 24 * (len(entries) + 1)
    for role, blob in entries:
        guid = uuid.UUID(GUIDS[role])
        header += guid.bytes_le if little_endian else guid.bytes
        header += (start + len(payload)).to_bytes(4, "little") + len(blob).to_bytes(4, "little")
        payload += blob
    header += bytes(24)
    return bytes(header + payload)


class FakeConfigfsTsm(EmulatedConfigfsTsm):
    """configfs-tsm emulated with the ``sev_guest`` provider (see the core's emulator).

    ``maker(report_data, privlevel)`` makes the report; ``auxblob`` is the host's
    certificate table (``None``: the kernel has no auxblob file).
    """

    default_provider = "sev_guest"

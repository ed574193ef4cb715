"""Soak: many sequential aTLS connections; client and server memory and file descriptors.

    python benchmarks/bench_soak.py [--connections 10000] [--rss-pairs 3]

Server and clients are separate processes on loopback.  The server (simulated TEE, INSECURE,
tests only) mints a certificate for every client nonce (per-connection freshness, issuance
rate limits off); each aTLS client process pins the simulated workload, so every
connection is a full appraisal (no cache can answer a nonce).  Each connection: handshake
(+ appraisal), one byte each way, close.

1. Client memory after 1,000 connections: fresh aTLS and plain-TLS client processes in
   alternating pairs, resident set size (VmRSS) of each at the end; the plain client has the
   same set-up minus attestation (same SSLContext options, same server, same exchange).
   Also measured: a "floor" client, the plain one plus the two libraries an aTLS client of the
   simulated TEE cannot do without (attrs, which atls' records are made of, and
   cryptography's Ed25519, which checks the evidence signature), and the top-level packages
   the aTLS client loads beyond the plain one.
   Then, as detail only (no ratio): the RSS a floor client process gains importing, in turn,
   what the aTLS client loads beyond it (hashlib, datetime, logging, pluggy, atls' modules)
   and building its context, so the gap to the floor can be read off by part.
2. Soak: one aTLS client makes ``--connections`` connections; both processes' RSS and open
   file descriptors (/proc/<pid>/fd) are sampled every 1/20 of the run; then a plain client
   makes as many, for the RSS ratio.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any

from plain_tls import plain_context

# A client process imports only the lines above (and, for aTLS, atls): the plain client's
# memory must not include what only the parent needs (argparse, subprocess, the harness).

HOST = "localhost"
RSS_CONNECTIONS = 1000


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as file:
        status = file.read()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- the client process (a fresh interpreter: its memory is a client's own) ------------


def atls_context(settings: dict[str, Any]) -> ssl.SSLContext:
    import logging

    from atls_core.policy import Policy
    from atls_core.selection import select_validator
    from atls_core.tls import ATLSContext

    logging.getLogger("atls").setLevel(logging.CRITICAL + 1)
    selected = select_validator(
        "insecure.simulated",
        settings={"hardware_key": settings["hardware_key"]},
        policy=Policy(reference_values={"image": settings["image"]}),
        allow_insecure=True,  # the simulated TEE: tests and benchmarks only
    )
    return ATLSContext.for_validator(selected)


def floor_context() -> ssl.SSLContext:
    """The plain context, in a process that has loaded what any aTLS client here must."""
    import attrs  # noqa: F401 - loaded for its memory: atls' records are attrs classes
    from cryptography.exceptions import InvalidSignature  # noqa: F401 - likewise
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(bytes(32))  # the key class in use, as a validator has it
    return plain_context()


def client(kind: str, port: int, connections: int, every: int, settings: dict[str, Any]) -> None:
    """Connect ``connections`` times; print a JSON sample every ``every`` connections."""
    contexts = {"atls": lambda: atls_context(settings), "floor": floor_context}
    context = contexts.get(kind, plain_context)()
    for done in range(1, connections + 1):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with context.wrap_socket(raw, server_hostname=HOST) as tls:
                tls.sendall(b"x")
                if tls.recv(1) != b"y":
                    raise SystemExit("the server did not answer")
        if done % every == 0 or done == connections:
            sample: dict[str, Any] = {"done": done, "rss_kib": rss_kib(), "fds": open_fds()}
            if done == connections:
                sample["packages"] = sorted({name.partition(".")[0] for name in sys.modules})
            print(json.dumps(sample), flush=True)


def _importing(*modules: str) -> Callable[[dict[str, Any]], object]:
    return lambda _settings: [__import__(module) for module in modules]


IMPORT_STEPS: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
    ("hashlib", _importing("hashlib")),
    ("datetime", _importing("datetime")),
    ("logging", _importing("logging")),
    ("pluggy", _importing("pluggy")),
    (
        "atls modules",
        _importing(
            "atls_core.tls", "atls_core.selection", "atls_core.policy", "atls_core.registry"
        ),
    ),
    ("the context (plugin loaded)", atls_context),
)
"""What the aTLS client process has beyond the floor, in the order a part is charged."""


def import_costs(settings: dict[str, Any]) -> None:
    """In a floor client process: the RSS each of IMPORT_STEPS adds (KiB), as JSON."""
    floor_context()
    costs = []
    for label, step in IMPORT_STEPS:
        before = rss_kib()
        step(settings)
        costs.append([label, rss_kib() - before])
    print(json.dumps(costs), flush=True)


# --- the server process -----------------------------------------------------------------


def serve(ready: Any) -> None:
    """Per-connection certificates for the simulated TEE; one connection at a time."""
    from atls_core.server import AttestedCertificates
    from atls_core.testing.loopback import SimulatedTEE

    tee = SimulatedTEE()
    certificates = AttestedCertificates(
        tee.issuer, hostnames=(HOST,), issuance_rate=None, per_client_rate=None
    )
    context = certificates.server_context(per_connection=True)
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    settings = {"hardware_key": tee.hardware.public_key_hex, "image": tee.image}
    ready.send((int(listener.getsockname()[1]), settings))
    while True:
        raw, _ = listener.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            with context.wrap_socket(raw, server_side=True) as tls:
                if tls.recv(1):
                    tls.sendall(b"y")
                tls.recv(1)
        except OSError:
            pass


def start_server() -> tuple[int, int, dict[str, Any], Callable[[], None]]:
    """(pid, port, client settings, stop) of a server in a forked process."""
    import multiprocessing

    parent_end, child_end = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=serve, args=(child_end,), daemon=True
    )
    process.start()
    if not parent_end.poll(120):
        process.terminate()
        raise SystemExit(f"the server process did not start (exit code {process.exitcode})")
    port, settings = parent_end.recv()
    assert process.pid is not None

    def stop() -> None:
        process.terminate()
        process.join(5)

    return process.pid, port, settings, stop


def run_client(
    kind: str, port: int, connections: int, every: int, settings: dict[str, Any]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Start a client process; yield (its pid, each sample) as it reports."""
    import subprocess

    arguments = [kind, str(port), str(connections), str(every), json.dumps(settings)]
    command = [sys.executable, os.path.abspath(__file__), "--client", *arguments]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        for line in process.stdout:
            yield process.pid, json.loads(line)
    if process.returncode:
        raise SystemExit(f"the {kind} client failed (exit {process.returncode})")


def final_sample(
    kind: str, port: int, connections: int, settings: dict[str, Any]
) -> dict[str, Any]:
    samples = [sample for _, sample in run_client(kind, port, connections, connections, settings)]
    return samples[-1]


def final_rss(kind: str, port: int, connections: int, settings: dict[str, Any]) -> int:
    rss: int = final_sample(kind, port, connections, settings)["rss_kib"]
    return rss


# --- the report -------------------------------------------------------------------------


def client_memory(port: int, settings: dict[str, Any], pairs: int) -> None:
    import harness

    ratios: list[float] = []
    floor_ratios: list[float] = []
    sizes: dict[str, list[float]] = {"atls": [], "plain": [], "floor": []}
    packages: dict[str, list[str]] = {}
    for index in range(pairs):
        order = ("atls", "plain", "floor") if index % 2 == 0 else ("floor", "plain", "atls")
        samples = {kind: final_sample(kind, port, RSS_CONNECTIONS, settings) for kind in order}
        for kind, sample in samples.items():
            sizes[kind].append(sample["rss_kib"])
            packages[kind] = sample["packages"]
        ratios.append(samples["atls"]["rss_kib"] / samples["plain"]["rss_kib"])
        floor_ratios.append(samples["floor"]["rss_kib"] / samples["plain"]["rss_kib"])
    print(f"client RSS after {RSS_CONNECTIONS} connections, {pairs} process triples:")
    for kind, values in sizes.items():
        median, low, high = harness.spread(values)
        print(f"  {kind:<6} {median / 1024:7.1f} MiB ({low / 1024:.1f}-{high / 1024:.1f})")
    extra = sorted(set(packages["atls"]) - set(packages["plain"]) - {"bench_soak"})
    print(f"  packages the aTLS client loads beyond the plain one: {' '.join(extra)}")
    costs = _import_costs(settings)
    shown = ", ".join(f"{label} +{kib / 1024:.2f}" for label, kib in costs)
    print(f"  RSS a floor client process gains (MiB, before any connection): {shown}")
    harness.report("soak.client_rss_after_1000_vs_plain", ratios, "<=1.5")
    harness.report("soak.client_rss_floor_vs_plain", floor_ratios, "none")


def _import_costs(settings: dict[str, Any]) -> list[tuple[str, int]]:
    import subprocess

    command = [sys.executable, os.path.abspath(__file__), "--import-costs", json.dumps(settings)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return [(str(label), int(kib)) for label, kib in json.loads(done.stdout)]


def soak(server_pid: int, port: int, settings: dict[str, Any], connections: int) -> None:
    import time

    import harness

    every = max(1, connections // 20)
    started = time.perf_counter()
    client_samples: list[dict[str, int]] = []
    server_samples: list[dict[str, int]] = []
    for _, sample in run_client("atls", port, connections, every, settings):
        client_samples.append(sample)
        server_samples.append(
            {"done": sample["done"], "rss_kib": rss_kib(server_pid), "fds": open_fds(server_pid)}
        )
    elapsed = time.perf_counter() - started
    plain_end = final_rss("plain", port, connections, settings)
    print(f"soak: {connections} sequential aTLS connections in {elapsed:.0f} s")
    print("  connections   client RSS MiB  fds   server RSS MiB  fds")
    for mine, theirs in zip(client_samples, server_samples, strict=True):
        print(
            f"  {mine['done']:>11}   {mine['rss_kib'] / 1024:14.1f} {mine['fds']:>4}"
            f"   {theirs['rss_kib'] / 1024:14.1f} {theirs['fds']:>4}"
        )
    for who, samples in (("client", client_samples), ("server", server_samples)):
        warm, end = samples[0], samples[-1]
        growth = (end["rss_kib"] - warm["rss_kib"]) / 1024
        per_thousand = growth / max(1, end["done"] - warm["done"]) * 1000
        print(
            f"  {who}: RSS {warm['rss_kib'] / 1024:.1f} MiB after warm-up ({warm['done']}) -> "
            f"{end['rss_kib'] / 1024:.1f} MiB at the end ({growth:+.1f} MiB, "
            f"{per_thousand:+.2f} MiB per 1000); fds {warm['fds']} -> {end['fds']}"
        )
    print(f"  plain client after {connections} connections: {plain_end / 1024:.1f} MiB")
    end_ratio = client_samples[-1]["rss_kib"] / plain_end
    harness.report("soak.client_rss_at_end_vs_plain", [end_ratio], "none")  # one pair: no spread


def main() -> None:
    import argparse

    import harness

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rss-pairs", type=int, default=3)
    args = parser.parse_args()
    harness.header("soak: sequential aTLS connections, client and server processes")
    server_pid, port, settings, stop = start_server()
    try:
        client_memory(port, settings, args.rss_pairs)
        soak(server_pid, port, settings, args.connections)
    finally:
        stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--import-costs"]:  # SETTINGS (_import_costs)
        import_costs(json.loads(sys.argv[2]))
    elif sys.argv[1:2] == ["--client"]:  # KIND PORT CONNECTIONS EVERY SETTINGS (run_client)
        kind, port, count, every, settings = sys.argv[2:7]
        client(kind, int(port), int(count), int(every), json.loads(settings))
    else:
        main()

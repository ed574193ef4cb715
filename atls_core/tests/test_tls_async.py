"""The SSLObject path (asyncio) and many concurrent connections."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ssl

import pytest

from atls_core.binding import decode_sni
from atls_core.connection import HTTPAConnection
from atls_core.errors import ATLSVerificationError
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.tls import ATLSContext, ATLSObject, result_of

CONNECTIONS = 100


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    line = await reader.readline()
    writer.write(b"echo " + line)
    await writer.drain()
    writer.close()


def test_open_connection_with_atls_context(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    context = ATLSContext.for_validator(tee.selected())

    async def main() -> None:
        server = await asyncio.start_server(
            _echo, "127.0.0.1", 0, ssl=certificates.server_context()
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
            ssl_object = writer.get_extra_info("ssl_object")
            assert isinstance(ssl_object, ATLSObject)
            result = result_of(writer)
            assert result is not None
            assert result.accepted
            nonce, host = decode_sni(ssl_object.server_hostname)
            assert host == "localhost"
            assert nonce is not None
            assert result.binding.nonce == nonce.hex()
            writer.write(b"hello\n")
            assert await reader.readline() == b"echo hello\n"
            writer.close()

    asyncio.run(main())


def test_asyncio_rejection_sends_nothing(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    context = ATLSContext.for_validator(tee.selected())

    async def main(port: int) -> None:
        with pytest.raises(ATLSVerificationError) as caught:
            await asyncio.open_connection("127.0.0.1", port, ssl=context)
        assert caught.value.check == "binding.report_data"

    with HTTPSServer(liar.server_context()) as server:
        asyncio.run(main(server.port))
        assert server.wait_finished(1)
        assert server.received == 0
        assert server.requests == []


def test_hundred_concurrent_asyncio_connections(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    context = ATLSContext.for_validator(tee.selected())

    async def client(port: int, index: int) -> tuple[str | None, str | None, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        nonce, _ = decode_sni(writer.get_extra_info("ssl_object").server_hostname)
        result = result_of(writer)
        writer.write(f"{index}\n".encode())
        answer = await reader.readline()
        writer.close()
        return (
            nonce.hex() if nonce else None,
            result.binding.nonce if result else None,
            answer,
        )

    async def main() -> list[tuple[str | None, str | None, bytes]]:
        server = await asyncio.start_server(
            _echo, "127.0.0.1", 0, ssl=certificates.server_context(), backlog=256
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await asyncio.gather(*(client(port, i) for i in range(CONNECTIONS)))

    outcomes = asyncio.run(main())
    assert [answer for _, _, answer in outcomes] == [
        f"echo {i}\n".encode() for i in range(CONNECTIONS)
    ]
    assert all(sent == bound and sent is not None for sent, bound, _ in outcomes)
    assert len({sent for sent, _, _ in outcomes}) == CONNECTIONS
    assert certificates.minted == CONNECTIONS


def test_hundred_concurrent_threaded_connections(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    context = ATLSContext.for_validator(tee.selected())

    def fetch(port: int, index: int) -> tuple[bytes, str | None]:
        connection = HTTPAConnection("127.0.0.1", port, context=context, timeout=30)
        try:
            connection.request("GET", f"/n/{index}")
            body = connection.getresponse().read()
            result = connection.attestation_result
            return body, result.binding.nonce if result else None
        finally:
            connection.close()

    with (
        HTTPSServer(certificates.server_context()) as server,
        concurrent.futures.ThreadPoolExecutor(32) as pool,
    ):
        outcomes = list(pool.map(lambda i: fetch(server.port, i), range(CONNECTIONS)))
    assert [body for body, _ in outcomes] == [
        f'{{"path": "/n/{i}"}}'.encode() for i in range(CONNECTIONS)
    ]
    nonces = [nonce for _, nonce in outcomes]
    assert None not in nonces
    assert len(set(nonces)) == CONNECTIONS
    assert certificates.minted == CONNECTIONS


def test_anyio_tls_stream(tee: SimulatedTEE) -> None:
    import anyio
    from anyio.streams.tls import TLSAttribute

    context = ATLSContext.for_validator(tee.selected())

    async def main(port: int) -> bytes:
        stream = await anyio.connect_tcp(
            "127.0.0.1", port, tls=True, ssl_context=context, tls_hostname="localhost"
        )
        ssl_object = stream.extra(TLSAttribute.ssl_object)
        result = result_of(ssl_object)
        assert result is not None
        assert result.accepted
        await stream.send(b"GET /anyio HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
        # http.server closes without close_notify, so skip the TLS shutdown.
        await stream.transport_stream.aclose()
        return data

    with HTTPSServer(tee.certificates().server_context()) as server:
        assert b'"/anyio"' in anyio.run(main, server.port)


def _pump(source: ssl.MemoryBIO, target: ssl.MemoryBIO) -> int:
    data = source.read()
    target.write(data)
    return len(data)


def test_sslobject_never_emits_application_data_before_appraisal(tee: SimulatedTEE) -> None:
    """Drive client and server SSLObjects by hand: a write before/after a failed appraisal
    produces no application record for the server to read."""
    liar = mint_certificate(
        tee.issuer, hostnames=("localhost",), evidence=tee.certificates().static().evidence
    )
    server_context = liar.server_context()
    client_context = ATLSContext.for_validator(tee.selected())
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    # An early write starts the handshake instead of sending data.
    with pytest.raises(ssl.SSLWantReadError):
        client.write(b"secret")
    failure: ATLSVerificationError | None = None
    for _ in range(10):
        _pump(c_out, s_in)
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
        _pump(s_out, c_in)
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            continue
        except ATLSVerificationError as error:
            failure = error
            break
    assert failure is not None
    assert failure.check == "binding.report_data"
    with pytest.raises(ATLSVerificationError):
        client.write(b"secret")
    _pump(c_out, s_in)
    server.do_handshake()  # the client's Finished arrives; nothing else
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)

"""A TCP forwarder on loopback that a test can cut: a broker node that goes away.

``await proxy.start()`` listens on ``proxy.port`` and forwards every connection to
``target``; ``await proxy.stop()`` closes the listener and aborts every forwarded
connection (as a node that dies: clients see their socket close, new connections are
refused); ``start()`` again listens on the same port. With ``mute_replies`` set, what
the target sends back is dropped (the client's frames still arrive): a link that dies
with answers on the way.
"""

from __future__ import annotations

import asyncio
import contextlib

from yarl import URL

from tests.support.ports import LOOPBACK, free_port


class TcpProxy:
    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.mute_replies = False

    def url_for(self, url: str) -> str:
        """``url`` (an AMQP URL of the target) going through this proxy."""
        return str(URL(url).with_port(self.port))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer),
                             self._pipe(up_reader, writer, back=True))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    back: bool = False) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if back and self.mute_replies:
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)

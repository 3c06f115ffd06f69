"""A raw asyncio line client for talking to legacy actors in tests (bytes in, lines out)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LOOPBACK = "127.0.0.1"
TERMINAL = frozenset(":fF!")


def code_of(line: str) -> str:
    """The code field of an actor reply line (``cid mid code ...``)."""
    parts = line.split(None, 3)
    return parts[2] if len(parts) >= 3 else ""


def mid_of(line: str, mid_first: bool = False) -> int:
    parts = line.split(None, 3)
    return int(parts[0] if mid_first else parts[1])


class LineClient:
    """``await LineClient.connect(port)``; ``send`` lines, ``read_line``/``read_until`` replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[str] = []

    @classmethod
    async def connect(cls, port: int, host: str = LOOPBACK) -> LineClient:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, line: str | bytes) -> None:
        """Send ``line`` plus ``\\n`` (bytes are sent exactly as given, no newline added)."""
        data = line if isinstance(line, bytes) else line.encode() + b"\n"
        self.writer.write(data)
        await self.writer.drain()

    async def read_line(self, timeout: float = 10.0) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise ConnectionError(f"connection closed; lines so far: {self.lines[-10:]}")
        assert raw.endswith(b"\n"), raw
        line = raw[:-1].decode()
        self.lines.append(line)
        return line

    async def read_until(self, done: Callable[[str], bool], timeout: float = 10.0) -> list[str]:
        """Lines up to and including the first one for which ``done(line)`` is true."""
        got: list[str] = []

        async def collect() -> None:
            while True:
                got.append(await self.read_line(timeout))
                if done(got[-1]):
                    return

        try:
            await asyncio.wait_for(collect(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"condition not met; got {got}") from None
        return got

    async def read_reply(self, mid: int, timeout: float = 10.0,
                         mid_first: bool = False) -> list[str]:
        """Lines up to the terminal reply of ``mid`` (all lines, including others')."""
        return await self.read_until(
            lambda ln: mid_of(ln, mid_first) == mid and code_of(ln) in TERMINAL, timeout)

    async def command(self, text: str, mid: int, timeout: float = 10.0) -> list[str]:
        """Send ``<mid> <text>``; return the lines with that mid up to the terminal one."""
        await self.send(f"{mid} {text}")
        lines = await self.read_reply(mid, timeout)
        return [ln for ln in lines if mid_of(ln) == mid]

    async def read_greeting(self, timeout: float = 10.0) -> list[str]:
        """Lines up to and including the ``version=`` line of the greeting."""
        return await self.read_until(lambda ln: " i version=" in ln, timeout)

    async def expect_closed(self, timeout: float = 10.0) -> bytes:
        """Read until EOF; return what came before it."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

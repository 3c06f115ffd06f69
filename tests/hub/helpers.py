"""Helpers for the hub tests: a router over real actor links, our hub, a raw commander."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from bridge.core import KeywordCache, Route, Router, RoutingTable
from bridge.hub import HubServer
from bridge.legacy.actor_link import ActorLink

WAIT = 15.0
TERMINAL = frozenset(":fF!")
_cids = itertools.count(1)


def link_factory(route: Route) -> ActorLink:
    """The target of a ``legacy`` route: an actor link that retries quickly."""
    return ActorLink(route.actor, route.host or "127.0.0.1", route.port or 0,
                     mid_first=route.mid_first, max_delay=0.5)


def legacy_route(actor: str, port: int, **kw: Any) -> Route:
    return Route(actor, "legacy", "127.0.0.1", port, **kw)


@asynccontextmanager
async def running_hub(routes: Iterable[Route] = (), factories: dict[str, Callable] | None = None,
                      **kw: Any) -> AsyncIterator[HubServer]:
    """A started router (legacy routes -> ActorLink) and our hub in front of it."""
    router = Router(factories or {"legacy": link_factory}, RoutingTable(routes))
    await router.start()
    hub = HubServer(router, cache=kw.pop("cache", None) or KeywordCache(), **kw)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
        await router.stop()


class RawCommander:
    """A plain TCP commander: writes lines, keeps every line it reads in :attr:`lines`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 cid: str) -> None:
        self.reader, self.writer, self.cid = reader, writer, cid
        self.lines: list[str] = []
        self._mids = itertools.count(1)

    @classmethod
    async def connect(cls, port: int, cid: str | None = None) -> "RawCommander":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer, cid or f"tests.c{next(_cids)}")

    def send_raw(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)

    def send(self, actor: str, text: str, mid: int | None = None, eol: str = "\n") -> int:
        mid = next(self._mids) if mid is None else mid
        self.send_raw(f"{self.cid} {mid} {actor} {text}{eol}")
        return mid

    async def read_line(self, timeout: float = WAIT) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise ConnectionError("hub closed the connection")
        assert raw.endswith(b"\n") and not raw.endswith(b"\r\n"), raw
        line = raw[:-1].decode()
        self.lines.append(line)
        return line

    async def read_until(self, done: Callable[[str], bool], timeout: float = WAIT) -> list[str]:
        got: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got.append(await self.read_line(max(0.01, deadline - loop.time())))
            if done(got[-1]):
                return got

    async def wait_for(self, mid: int, cid: str | None = None,
                       timeout: float = WAIT) -> list[str]:
        """This commander's lines for ``mid`` up to the terminal one."""
        cid = cid or self.cid
        got = await self.read_until(lambda l: is_terminal_for(l, cid, mid), timeout)
        return [l for l in got if header(l)[:2] == (cid, str(mid))]

    async def call(self, actor: str, text: str, timeout: float = WAIT) -> list[str]:
        return await self.wait_for(self.send(actor, text), timeout=timeout)

    async def quiet(self, seconds: float = 0.3) -> list[str]:
        """Read until nothing arrives for ``seconds``."""
        got = []
        while True:
            try:
                got.append(await self.read_line(seconds))
            except asyncio.TimeoutError:
                return got

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def header(line: str) -> tuple[str, ...]:
    """``(cmdr, mid, actor, code)`` of a hub reply line."""
    return tuple(line.split(" ", 4)[:4])


def is_terminal_for(line: str, cid: str, mid: int) -> bool:
    h = header(line)
    return len(h) == 4 and h[0] == cid and h[1] == str(mid) and h[3] in TERMINAL


def code(line: str) -> str:
    return header(line)[3]


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def shutter_behind_hub(start_clu_shutter: Callable[..., Any], **kw: Any
                             ) -> AsyncIterator[tuple[HubServer, Any]]:
    """A real clu LegacyActor ``shutter`` (subprocess) behind our hub, connected."""
    shutter = start_clu_shutter()
    async with running_hub([legacy_route("shutter", shutter.port)], **kw) as hub:
        await until(lambda: "shutter" in hub.actor_names(), "the hub's link to the shutter")
        # The link's init commands (ping, status, version) have ended.
        await until(lambda: not hub.commands_in_flight, "the init commands")
        yield hub, shutter


class EchoHandler:
    """An in-process legacy actor's commands: ``>`` then ``: echo="<text>"``; ``slow S``
    sleeps S seconds first; ``bcast`` also broadcasts ``i bcast=1``."""

    def __init__(self) -> None:
        self.server: Any = None

    def handle(self, command: Any) -> Any:
        command.reply(">")
        words = command.text.split()
        if words[:1] == ["slow"]:
            return self._slow(command, float(words[1]) if len(words) > 1 else 1.0)
        if words[:1] == ["bcast"]:
            self.server.broadcast("i", {"bcast": 1})
        command.finish({"echo": command.text})
        return None

    async def _slow(self, command: Any, seconds: float) -> None:
        await asyncio.sleep(seconds)
        command.finish({"slept": seconds})


@asynccontextmanager
async def echo_actor(name: str = "echo") -> AsyncIterator[Any]:
    """A real in-process legacy actor (our LegacyServer) answering with :class:`EchoHandler`."""
    from bridge.legacy.server import LegacyServer

    handler = EchoHandler()
    server = LegacyServer(handler, name=name, version="1.0")
    handler.server = server
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def tui_line(mid: int, actor: str, text: str) -> str:
    """A command line of the authenticated port (no commander; CRLF as TUI/STUI send)."""
    return f"{mid} {actor} {text}\r\n"

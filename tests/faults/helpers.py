"""Helpers of the fault tests: what is in flight in a bridge, raw clients that count
terminal replies, a legacy actor whose commands the test releases, recorded figures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bridge.legacy.server import IncomingLegacyCommand, LegacyServer
from bridge.protocol import parse_actor_reply
from bridge.protocol.clu_messages import EXCHANGE_NAME
from bridge.service.bridge import Bridge

WAIT = 30.0  # generous bound for what should take (milli)seconds
TERMINAL = frozenset(":fF!")
#: Environment variable naming a JSON-lines file that collects measured figures.
FIGURES_ENV = "BRIDGE_FIGURES"


def record_figure(name: str, value: Any, **details: Any) -> None:
    """Append one measured figure to ``$BRIDGE_FIGURES`` (if set) for the report."""
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": name, "value": value, **details}) + "\n")


def in_flight(bridge: Bridge) -> dict[str, int]:
    """Every table of commands in flight in ``bridge`` that is not empty."""
    tables: dict[str, int] = {}
    if bridge.commander is not None:
        tables["amqp commander"] = len(bridge.commander.running)
    if bridge.amqp_target is not None:
        tables["amqp target"] = bridge.amqp_target.in_flight
    if bridge.hub_server is not None:
        tables["hub port"] = len(bridge.hub_server.commands_in_flight)
    if bridge.tron is not None:
        tables["tron connection"] = bridge.tron.commands_in_flight
    if bridge.control is not None:
        tables["control actor"] = len(bridge.control.endpoint.in_flight)
    for name, rt in bridge.actors.items():
        if rt.amqp_face is not None:
            tables[f"{name} amqp face"] = rt.amqp_face.in_flight
        if rt.legacy_face is not None:
            tables[f"{name} legacy face"] = rt.legacy_face.in_flight
        if rt.local is not None:
            tables[f"{name} local actor"] = len(rt.local.server.commands_in_flight)
        target = bridge.router.target(name) if bridge.router is not None else None
        if target is not None:
            tables[f"{name} target"] = getattr(target, "in_flight", 0)
    return {k: v for k, v in tables.items() if v}


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> float:
    """Wait until ``predicate()``; return the seconds it took (AssertionError on timeout)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return loop.time() - start


async def no_leaks(bridge: Bridge, timeout: float = WAIT) -> None:
    """Every in-flight table of the bridge returns to empty."""
    try:
        await until(lambda: not in_flight(bridge), "empty in-flight tables", timeout)
    except AssertionError:
        raise AssertionError(f"commands still in flight: {in_flight(bridge)}") from None


def logged_errors(records: list[logging.LogRecord]) -> list[str]:
    """ERROR records and records with a traceback from the bridge's loggers, and asyncio's
    (an exception nobody retrieved, a failing callback)."""
    return [f"{r.name}: {r.getMessage()}" for r in records
            if r.name.split(".")[0] in ("bridge", "asyncio")
            and (r.levelno >= logging.ERROR or r.exc_info)]


# -- legacy clients -------------------------------------------------------------------------

class LineClient:
    """A raw legacy socket (a legacy face or an actor): ``[cmdr] mid text`` out, every
    reply line kept; terminal lines are counted per mid."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []
        self.terminals: Counter[int] = Counter()
        self.replies: dict[int, list[str]] = defaultdict(list)
        self.user_id: int | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int) -> "LineClient":
        return cls(*await asyncio.open_connection("127.0.0.1", port, limit=1 << 22))

    async def _read(self) -> None:
        while True:
            raw = await self.reader.readline()
            if not raw:
                self._changed.set()
                return
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            try:
                reply = parse_actor_reply(line)
            except Exception:
                self._changed.set()
                continue
            if reply.mid == 0 and self.user_id is None and line.split(" ", 3)[3:4] \
                    and line.split(" ", 3)[3].startswith("yourUserID="):
                self.user_id = reply.cid
            if reply.cid != 0 and reply.mid != 0:
                self.replies[reply.mid].append(line)
                if reply.code in TERMINAL:
                    self.terminals[reply.mid] += 1
            self._changed.set()

    @property
    def closed(self) -> bool:
        return self._task.done()

    def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def wait_terminal(self, mid: int, timeout: float = WAIT) -> list[str]:
        """The reply lines of ``mid`` once it has a terminal one."""
        async with asyncio.timeout(timeout):
            while not self.terminals[mid]:
                if self.closed:
                    raise ConnectionError(f"connection closed; lines: {self.lines[-5:]}")
                self._changed.clear()
                await self._changed.wait()
        return self.replies[mid]

    async def command(self, line: str, mid: int, timeout: float = WAIT) -> list[str]:
        self.send(line)
        return await self.wait_terminal(mid, timeout)

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def code_of(line: str) -> str:
    return line.split(" ", 3)[2]


# -- a legacy actor whose commands end when the test says so --------------------------------

class HeldActor:
    """A real legacy actor (our LegacyServer on a TCP port): ``hold KEY`` answers ``>`` and
    ends with ``: released=KEY`` when :meth:`release` is called; ``ping`` ends at once."""

    def __init__(self) -> None:
        self.server = LegacyServer(self, name="held", version="1.0")
        self.held: dict[str, asyncio.Event] = {}
        self.started: Counter[str] = Counter()

    @property
    def port(self) -> int:
        return self.server.port

    def handle(self, command: IncomingLegacyCommand) -> Any:
        command.reply(">")
        verb, _, key = command.text.partition(" ")
        if verb == "hold":
            return self._hold(command, key)
        command.finish({"text": "Pong."} if verb == "ping" else {"echo": command.text})
        return None

    async def _hold(self, command: IncomingLegacyCommand, key: str) -> None:
        event = self.held.setdefault(key, asyncio.Event())
        self.started[key] += 1
        await event.wait()
        command.finish({"released": key})

    def release(self, key: str) -> None:
        self.held.setdefault(key, asyncio.Event()).set()


@asynccontextmanager
async def held_actor() -> AsyncIterator[HeldActor]:
    actor = HeldActor()
    await actor.server.start()
    try:
        yield actor
    finally:
        await actor.server.stop()


# -- AMQP: a client that survives broker restarts and counts every reply it gets ------------

class RobustClient:
    """A raw aio-pika client on a robust connection (re-declares its queue after a broker
    restart): publishes clu commands, keeps every reply routed to ``reply.<name>.#``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connection: Any = None
        self.exchange: Any = None
        self.replies: dict[str, list[AbstractIncomingMessage]] = defaultdict(list)
        self.reconnected = asyncio.Event()
        self._changed = asyncio.Event()

    async def start(self, url: str) -> "RobustClient":
        self.connection = await aio_pika.connect_robust(url, reconnect_interval=0.5)
        self.connection.reconnect_callbacks.add(lambda *_: self.reconnected.set())
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(EXCHANGE_NAME, type="topic",
                                                       auto_delete=True, durable=False)
        queue = await channel.declare_queue(f"{self.name}_replies", exclusive=True)
        await queue.bind(self.exchange, routing_key=f"reply.{self.name}.#")
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.replies[message.correlation_id or ""].append(message)
        self._changed.set()

    async def send(self, actor: str, text: str) -> str:
        """Publish ``text`` to ``actor`` (clu's command format); return the command id."""
        command_id = str(uuid.uuid4())
        await self.exchange.publish(aio_pika.Message(
            json.dumps({"command_string": text}).encode(), content_type="text/json",
            correlation_id=command_id, reply_to=f"{self.name}_replies",
            headers={"command_id": command_id, "commander_id": f"{self.name}.{actor}",
                     "internal": False}), f"command.{actor}")
        return command_id

    def terminals(self, command_id: str) -> list[AbstractIncomingMessage]:
        return [m for m in self.replies.get(command_id, [])
                if (m.headers or {}).get("message_code") in TERMINAL]

    async def wait_terminal(self, command_id: str,
                            timeout: float = WAIT) -> AbstractIncomingMessage:
        async with asyncio.timeout(timeout):
            while not self.terminals(command_id):
                self._changed.clear()
                await self._changed.wait()
        return self.terminals(command_id)[0]

    async def call(self, actor: str, text: str, timeout: float = WAIT) -> AbstractIncomingMessage:
        return await self.wait_terminal(await self.send(actor, text), timeout)


def body(message: AbstractIncomingMessage) -> dict[str, Any]:
    return json.loads(message.body)


def code(message: AbstractIncomingMessage) -> str:
    return str((message.headers or {}).get("message_code"))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

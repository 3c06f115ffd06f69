"""Helpers for the AMQP tests: in-process clu actors/clients, a wire spy, raw publishing.

clu is asyncio, so its ``AMQPActor``/``AMQPClient`` run on the test's own event loop.
Their loggers are silenced (console handler above CRITICAL) and the loop exception
handler that ``AMQPActor.start`` installs is put back afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import click
from aio_pika.abc import AbstractIncomingMessage
from clu import AMQPActor, AMQPClient
from clu.parsers.click import CluGroup, ping

from bridge.amqp import ActorEndpoint, AmqpCommander, AmqpConnection, IncomingCommand
from bridge.protocol.clu_messages import EXCHANGE_NAME

WAIT = 10.0  # generous upper bound for anything that should take milliseconds


# -- a clu actor with its own small command set -------------------------------------------


@click.group(cls=CluGroup)
def test_parser(*args: Any) -> None:
    """Commands of the in-process clu test actor (separate from clu's global parser)."""


test_parser.add_command(ping)


@test_parser.command(name="fail_me")
async def fail_me(command: Any) -> Any:
    """> i f."""
    command.info(text="About to fail")
    return command.fail(error="fail_me always fails")


@test_parser.command()
async def levels(command: Any) -> Any:
    """> d i w e :, each with a text keyword."""
    for code in "diwe":
        command.write(code, text=f"level {code}")
    return command.finish()


@test_parser.command()
async def values(command: Any) -> Any:
    """> i : with typed keywords (float, NaN, int, bool, list, null, unicode)."""
    command.info(temp=-1.5, bad=float("nan"), n=3, ok=True, lst=[1, "a"], none=None, name="Zoë")
    return command.finish(text="values done")


@test_parser.command()
async def hang(command: Any) -> None:
    """Never finishes (until cancelled)."""
    await asyncio.Event().wait()


class CluTestActor(AMQPActor):
    parser = test_parser


def _quiet(obj: Any) -> Any:
    log = getattr(obj, "log", None)
    if log is not None and getattr(log, "sh", None) is not None:
        log.sh.setLevel(logging.CRITICAL + 1)
    return obj


@asynccontextmanager
async def clu_actor(url: str, name: str) -> AsyncIterator[CluTestActor]:
    """A running clu ``AMQPActor`` (any keyword allowed in replies)."""
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    actor = _quiet(CluTestActor(name, url=url, version="0.1.0", additional_properties=True))
    try:
        await actor.start()
        yield actor
    finally:
        try:
            await actor.stop()
        finally:
            loop.set_exception_handler(handler)


@asynccontextmanager
async def clu_client(url: str, name: str) -> AsyncIterator[AMQPClient]:
    """A running clu ``AMQPClient``."""
    client = _quiet(AMQPClient(name, url=url))
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def clu_command(client: AMQPClient, actor: str, command: str, **kwargs: Any) -> Any:
    """Send with clu's client and wait (bounded) for the command to finish."""
    cmd = await client.send_command(actor, command, await_command=False, **kwargs)
    return await asyncio.wait_for(cmd, WAIT)


# -- our side -------------------------------------------------------------------------


async def simple_handler(cmd: IncomingCommand) -> None:
    """Answers like :class:`CluTestActor` does for ping/fail_me/levels/values."""
    verb = cmd.command_string.split()[0]
    await cmd.reply(">")
    if verb == "ping":
        await cmd.reply(":", {"text": "Pong."})
    elif verb == "fail_me":
        await cmd.reply("i", {"text": "About to fail"})
        await cmd.reply("f", {"error": "fail_me always fails"})
    elif verb == "levels":
        for code in "diwe":
            await cmd.reply(code, {"text": f"level {code}"})
        await cmd.reply(":", {})
    elif verb == "values":
        await cmd.reply(
            "i",
            {"temp": -1.5, "bad": float("nan"), "n": 3, "ok": True, "lst": [1, "a"],
             "none": None, "name": "Zoë"},
        )
        await cmd.reply(":", {"text": "values done"})
    else:
        await cmd.reply("f", {"error": f"Command {cmd.command_string!r} does not exist"})


@asynccontextmanager
async def amqp_connection(url: str, **kwargs: Any) -> AsyncIterator[AmqpConnection]:
    kwargs.setdefault("connection_name", "bridge-test")
    conn = AmqpConnection(url, **kwargs)
    await conn.start()
    try:
        yield conn
    finally:
        await conn.stop()


@asynccontextmanager
async def endpoint(
    url: str, name: str, handler: Callable[[IncomingCommand], Any] = simple_handler
) -> AsyncIterator[ActorEndpoint]:
    """Our endpoint on its own connection."""
    async with amqp_connection(url) as conn:
        ep = ActorEndpoint(conn, name, handler)
        await ep.start()
        try:
            yield ep
        finally:
            await ep.stop()


@asynccontextmanager
async def commander(url: str, name: str) -> AsyncIterator[AmqpCommander]:
    """Our commander on its own connection."""
    async with amqp_connection(url) as conn:
        cmdr = AmqpCommander(conn, name)
        await cmdr.start()
        try:
            yield cmdr
        finally:
            await cmdr.stop()


# -- raw wire access ------------------------------------------------------------------


class WireSpy:
    """Every message routed to ``reply.#`` (or other keys) on the clu exchange, raw."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []
        self._changed = asyncio.Event()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[AbstractIncomingMessage], bool], count: int = 1,
        timeout: float = WAIT,
    ) -> list[AbstractIncomingMessage]:
        """Wait until ``count`` messages match ``predicate``; return them."""
        async with asyncio.timeout(timeout):
            while True:
                found = [m for m in self.messages if predicate(m)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

    def for_command(self, command_id: str) -> list[AbstractIncomingMessage]:
        return [m for m in self.messages if m.correlation_id == command_id]

    async def wait_terminal(self, command_id: str, timeout: float = WAIT) -> list[AbstractIncomingMessage]:
        """All messages of ``command_id`` up to its terminal reply."""
        await self.wait_for(
            lambda m: m.correlation_id == command_id
            and (m.headers or {}).get("message_code") in (":", "f", "!"),
            timeout=timeout,
        )
        return self.for_command(command_id)


@asynccontextmanager
async def wire_spy(url: str, binding: str = "reply.#") -> AsyncIterator[WireSpy]:
    """A raw aio-pika consumer bound to ``binding`` (own connection, no ack needed)."""
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE_NAME, type="topic", auto_delete=True, durable=False
        )
        queue = await channel.declare_queue(f"spy_{uuid.uuid4().hex[:8]}", exclusive=True)
        await queue.bind(exchange, routing_key=binding)
        spy = WireSpy()
        await queue.consume(spy._on_message, no_ack=True)
        yield spy
    finally:
        await conn.close()


@asynccontextmanager
async def raw_publisher(url: str) -> AsyncIterator[aio_pika.abc.AbstractExchange]:
    """The clu exchange on a plain connection, for publishing hand-made messages."""
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        yield await channel.declare_exchange(
            EXCHANGE_NAME, type="topic", auto_delete=True, durable=False
        )
    finally:
        await conn.close()


def wire_shape(message: AbstractIncomingMessage, names: dict[str, str]) -> dict[str, Any]:
    """What a receiver can observe of a reply, with names/ids replaced by placeholders.

    ``names`` maps real names (actor, client) to placeholders; the command id is
    replaced by ``<id>``; the timestamp is reduced to "present". (Header order is not
    observable: the broker delivers table fields sorted.)
    """

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            if message.correlation_id and value == message.correlation_id:
                return "<id>"
            for real, placeholder in names.items():
                value = value.replace(real, placeholder)
        return value

    headers = dict(message.headers or {})
    return {
        "exchange": message.exchange,
        "routing_key": norm(message.routing_key),
        "header_order": list(headers),
        "headers": {k: norm(v) for k, v in headers.items()},
        "header_types": {k: type(v).__name__ for k, v in headers.items()},
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "delivery_mode": message.delivery_mode,
        "priority": message.priority,
        "expiration": message.expiration,
        # aio-pika gives every message a random uuid4-hex message_id, clu's too.
        "message_id": "<uuid hex>" if len(message.message_id or "") == 32 else message.message_id,
        "type": message.type,
        "user_id": message.user_id,
        "app_id": message.app_id,
        "reply_to": norm(message.reply_to),
        "correlation_id": norm(message.correlation_id),
        "correlation_is_command_id": message.correlation_id == headers.get("command_id"),
        "has_timestamp": message.timestamp is not None,
        "body": message.body,
    }

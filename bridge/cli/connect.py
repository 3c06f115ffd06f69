"""Connecting the client commands (`send`, `tail`, `status`) to AMQP or to a hub port."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from ..core import CommandHandle, Reply

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def run_client(main: Callable[[], Any]) -> int:
    """Run a client command's coroutine; connection problems are one line on stderr, exit 2."""
    import logging
    import sys

    from ..amqp.connection import AmqpError
    from ..runtime import run_sync

    logging.basicConfig(level=logging.WARNING, format="bridge: %(levelname)s %(message)s")
    for noisy in ("aiormq", "aio_pika", "pamqp", "bridge.amqp", "bridge.legacy.tron"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        return int(run_sync(main) or 0)
    except (OSError, TimeoutError, ConnectionError, AmqpError) as exc:
        print(f"bridge: cannot connect: {exc}", file=sys.stderr)
        return 2


def add_transport_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--amqp", metavar="URL", default=None,
                       help="AMQP broker URL (default: $BRIDGE_AMQP_URL, else "
                            f"{DEFAULT_AMQP_URL})")
    group.add_argument("--hub", metavar="HOST:PORT", default=None,
                       help="a hub port (the bridge's or a Tron hub) instead of AMQP")


class Session:
    """What the client commands need: send commands, hear every reply."""

    def __init__(self, send: Callable[..., CommandHandle],
                 listen: Callable[[Callable[[Reply], Any]], None]) -> None:
        self.send_command = send
        self.listen = listen


@asynccontextmanager
async def session(args: argparse.Namespace) -> AsyncIterator[Session]:
    """A connected session over the hub port (``--hub``) or AMQP."""
    if args.hub:
        async with _hub_session(args.hub) as s:
            yield s
    else:
        url = args.amqp or os.environ.get("BRIDGE_AMQP_URL") or DEFAULT_AMQP_URL
        async with _amqp_session(url) as s:
            yield s


@asynccontextmanager
async def _amqp_session(url: str) -> AsyncIterator[Session]:
    from ..amqp import AmqpCommander, AmqpConnection
    from ..relay.amqp_target import AmqpTarget

    connection = AmqpConnection([u.strip() for u in url.split(",")], connect_timeout=10)
    await connection.start()
    commander = AmqpCommander(connection, f"bridge_cli_{uuid.uuid4().hex[:8]}")
    try:
        await commander.start()
        target = AmqpTarget(commander)
        yield Session(lambda actor, text, **kw: target.send_command(
            actor, text, commander=commander.name, **kw),
            lambda cb: target.add_reply_listener(cb))
    finally:
        await commander.stop()
        await connection.stop()


@asynccontextmanager
async def _hub_session(where: str) -> AsyncIterator[Session]:
    from ..legacy.tron import TronConnection
    from ..protocol import HubReply

    host, _, port = where.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"bridge: --hub expects HOST:PORT, got {where!r}")
    tron = TronConnection(host or "127.0.0.1", int(port),
                          commander=f"cli.u{uuid.uuid4().hex[:8]}")
    await tron.start(wait=True, timeout=10)

    def listen(cb: Callable[[Reply], Any]) -> None:
        def on_line(reply: HubReply, values: dict[str, Any]) -> None:
            cb(Reply(reply.code, reply.actor, reply.keywords, reply.commander, reply.mid,
                     values))

        tron.add_reply_listener(on_line, typed=True)

    try:
        yield Session(tron.send_command, listen)
    finally:
        await tron.stop()

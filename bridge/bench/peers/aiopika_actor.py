"""The relay benchmark's floor: a minimal AMQP actor written with aio-pika alone.

``python -m bridge.bench.peers.aiopika_actor --url amqp://... [--name rawactor]``
prints ``READY <name> <url>`` once it consumes its command queue. It answers clu
commands as a clu actor would on the wire (same exchange, queue, headers, JSON
bodies): ``ping`` -> ``>`` then ``: {"text": "Pong."}``; ``spam N`` -> N
``i {"spam_index": k}`` then ``: {"spam_count": N}``; anything else ``f``. Replies
are published exactly as the bridge's AMQP face publishes them (publisher confirms, in
order, up to the bridge's window of unconfirmed replies; frames encoded by
:class:`bridge.amqp.frames.ReplyFrames` and written by :mod:`bridge.amqp.writer` onto
aiormq's write queue, several per socket write) and commands are consumed as the bridge
consumes them (without acknowledgements), with no validation, logging or translation at
all: what one process publishing the bridge's way gets through this machine's broker is
the floor of the relay.

``blast N`` answers like ``spam N`` but publishes on a second channel *without*
publisher confirms, never waiting for anything: the most replies per second aio-pika
can put on the wire here at all (a publisher that cannot tell whether the broker got
its messages, so not how the bridge may publish; the absolute ceiling).

``publish_only N`` / ``publish_only_aiopika N`` / ``publish_only_unconfirmed N`` publish
N reply-sized messages to a queue of the actor's own that nobody reads (purged
afterwards) -- the bridge's way with confirms / aio-pika's own channel
``basic_publish(wait=False)`` with confirms (how the bridge published before) / aio-pika
without confirms -- with the same window, and answer ``: {"per_second": R}``: what this
process alone publishes per second, with no consumer anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import deque
from datetime import datetime, timezone
from typing import Any

from ._common import announce_ready, wait_for_stop_signal

from ...relay.amqp_face import PUBLISH_WINDOW as WINDOW  # the bridge's


async def _within_window(pending: deque[asyncio.Future[Any]]) -> None:
    """Wait for the oldest publishes until at most WINDOW are unconfirmed; drop done ones."""
    while len(pending) > WINDOW or (pending and pending[0].done()):
        await pending.popleft()


def _frames_publisher(exchange: Any, sender: str) -> Any:
    """``publish(code, body, commander_id, command_id, key)`` as the bridge's AMQP face
    does it: :class:`~bridge.amqp.frames.ReplyFrames` through :mod:`bridge.amqp.writer`
    (returns the confirm future; nothing else waits)."""
    from ...amqp import writer
    from ...amqp.frames import ReplyFrames

    cache: dict[tuple[str, str], Any] = {}

    def publish(code: str, body: dict[str, Any], commander_id: str, command_id: str,
                key: str) -> Any:
        frames = cache.get((key, command_id))
        if frames is None:
            if len(cache) > 1000:
                cache.clear()
            frames = cache[key, command_id] = ReplyFrames(exchange.name, key, commander_id,
                                                          command_id, sender)
        channel = writer.usable_channel(exchange.channel)
        data = json.dumps(body).encode()
        return writer.publish(channel, lambda n: frames.encode(n, code, code == ">", data))
    return publish


def _publisher(exchange: Any) -> Any:
    """``publish(message, key)`` on ``exchange`` as the bridge's ``AmqpChannel`` does it:
    aiormq's ``basic_publish(wait=False)`` (the channel lock covers only queueing the
    frames; with confirms, the confirm is awaited after it)."""
    async def publish(message: Any, key: str) -> Any:
        channel = await exchange.channel.get_underlay_channel()
        return await channel.basic_publish(message.body, exchange=exchange.name,
                                           routing_key=key, properties=message.properties,
                                           wait=False)
    return publish


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="rawactor")
    args = ap.parse_args(argv)
    import aio_pika

    from ...protocol.clu_messages import (
        EXCHANGE_AUTO_DELETE,
        EXCHANGE_DURABLE,
        EXCHANGE_NAME,
        EXCHANGE_TYPE,
    )

    name = args.name
    connection = await aio_pika.connect(args.url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=1)
    exchange = await channel.declare_exchange(EXCHANGE_NAME, type=EXCHANGE_TYPE,
                                              auto_delete=EXCHANGE_AUTO_DELETE,
                                              durable=EXCHANGE_DURABLE)
    unconfirmed = await connection.channel(publisher_confirms=False)
    blast_exchange = await unconfirmed.get_exchange(EXCHANGE_NAME, ensure=False)
    queue = await channel.declare_queue(f"{name}_commands", exclusive=True)
    await queue.bind(exchange, routing_key=f"command.{name}.#")
    sink = await channel.declare_queue(f"{name}_sink", exclusive=True)
    await sink.bind(exchange, routing_key=f"sink.{name}")
    aiopika_confirmed, unconfirmed_publish = _publisher(exchange), _publisher(blast_exchange)
    framed = _frames_publisher(exchange, name)
    sinks = {"publish_only": None, "publish_only_aiopika": aiopika_confirmed,
             "publish_only_unconfirmed": unconfirmed_publish}

    def reply_message(code: str, body: dict[str, Any], commander_id: str,
                      command_id: str) -> Any:
        """A reply as clu's actor publishes it."""
        return aio_pika.Message(
            json.dumps(body).encode(), content_type="text/json", correlation_id=command_id,
            timestamp=datetime.now(timezone.utc),
            headers={"message_code": code, "commander_id": commander_id,
                     "command_id": command_id, "sender": name, "internal": code == ">"})

    async def publish_only(publish: Any, n: int) -> float:
        """Messages per second of ``n`` publishes into the sink (at most WINDOW pending)."""
        loop = asyncio.get_running_loop()
        pending: deque[asyncio.Future[Any]] = deque()
        started = loop.time()
        for index in range(n):
            if publish is None:  # the bridge's way
                pending.append(framed("i", {"spam_index": index}, "sink", "sink",
                                      f"sink.{name}"))
            else:
                message = reply_message("i", {"spam_index": index}, "sink", "sink")
                pending.append(asyncio.ensure_future(publish(message, f"sink.{name}")))
            await _within_window(pending)
        while pending:
            await pending.popleft()
        rate = n / (loop.time() - started)
        await sink.purge()
        return rate

    async def run(headers: dict[str, Any], correlation_id: str, text: str) -> None:
        commander_id = str(headers.get("commander_id"))
        key = f"reply.{commander_id}"
        pending: deque[asyncio.Future[Any]] = deque()

        verb, _, rest = text.strip().partition(" ")

        def reply(code: str, body: dict[str, Any]) -> None:
            if verb == "blast":
                message = reply_message(code, body, commander_id, correlation_id)
                pending.append(asyncio.ensure_future(unconfirmed_publish(message, key)))
            else:
                pending.append(framed(code, body, commander_id, correlation_id, key))

        reply(">", {})
        if verb == "ping":
            reply(":", {"text": "Pong."})
        elif verb == "spam" and rest.strip().isdigit():
            n = int(rest)
            for index in range(n):
                reply("i", {"spam_index": index})
                await _within_window(pending)
            reply(":", {"spam_count": n})
        elif verb == "blast" and rest.strip().isdigit():
            n = int(rest)
            for index in range(n):  # no confirms: each publish returns once written
                reply("i", {"spam_index": index})
                await pending.popleft()
            reply(":", {"spam_count": n})
        elif verb in sinks and rest.strip().isdigit():
            reply(":", {"per_second": await publish_only(sinks[verb], int(rest))})
        else:
            reply("f", {"error": f"unknown command {text!r}"})
        while pending:
            await pending.popleft()

    tasks: set[asyncio.Task[None]] = set()

    async def on_message(message: Any) -> None:
        try:
            text = json.loads(message.body)["command_string"]
        except (ValueError, KeyError, TypeError):
            return
        task = asyncio.ensure_future(run(dict(message.headers or {}),
                                         message.correlation_id or "", str(text)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await queue.consume(on_message, no_ack=True)  # as the bridge consumes its commands
    announce_ready(name, args.url)
    try:
        await wait_for_stop_signal()
    finally:
        await connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

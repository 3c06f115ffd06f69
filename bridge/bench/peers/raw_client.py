"""A plain aio-pika client in its own process: the relay benchmark's raw stream consumer.

``python -m bridge.bench.peers.raw_client --url amqp://... [--name relaybench_raw]``
prints ``READY <name> <url>`` once connected, then reads one JSON request per line on
stdin and answers each with one JSON line on stdout:

* ``{"op": "stream", "actor": A, "n": N, "verb": "spam"}`` -> ``{"ok": true, "replies": R,
  "seconds": S}``: one ``spam N`` (or ``blast N``) published as a clu command message
  and timed from the publish to its ``:``, R = replies received for it. The replies
  come to a queue bound to this client's replies only, consumed ``no_ack`` with no
  prefetch limit, so the client is not the bottleneck: the rate is what the actor or
  the relay delivers. It also checks that ``spam_index`` arrives in order;
* ``{"op": "quit"}`` (or end of input): disconnect and exit.

A failed command or a timeout answers ``{"ok": false, "error": "..."}``.

It runs apart from clu's client (:mod:`bridge.bench.peers.clu_client`): that client
hears every reply on the exchange and parses each, and in one process its work on a
stream's replies would share this consumer's event loop, so the stream's rate would
depend on how the loop happened to interleave the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from ._common import answers_on_stdout, serve_requests

TIMEOUT = 60.0
TERMINAL_CODES = (":", "f", "F", "!")


class RawConsumer:
    """A minimal AMQP client: publishes clu command messages, consumes only its replies."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.connection: Any = None
        self.waiting: dict[str, tuple[asyncio.Future[None], list[tuple[Any, bytes]]]] = {}

    async def start(self) -> None:
        """Connect, declare the exchange and this client's reply queue, and consume it."""
        import aio_pika

        from ...protocol.clu_messages import (
            EXCHANGE_AUTO_DELETE,
            EXCHANGE_DURABLE,
            EXCHANGE_NAME,
            EXCHANGE_TYPE,
        )

        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        self.exchange = await self.channel.declare_exchange(
            EXCHANGE_NAME, type=EXCHANGE_TYPE, auto_delete=EXCHANGE_AUTO_DELETE,
            durable=EXCHANGE_DURABLE)
        self.queue = await self.channel.declare_queue(f"{self.name}_replies", exclusive=True)
        await self.queue.bind(self.exchange, routing_key=f"reply.{self.name}.#")
        await self.queue.consume(self._on_message, no_ack=True)

    async def stop(self) -> None:
        """Disconnect (nothing to do if never connected)."""
        if self.connection is not None:
            await self.connection.close()

    async def _on_message(self, message: Any) -> None:
        entry = self.waiting.get(message.correlation_id)
        if entry is None:
            return
        done, replies = entry
        code = (message.headers or {}).get("message_code")
        replies.append((code, message.body))
        if code in TERMINAL_CODES and not done.done():
            done.set_result(None)

    async def stream(self, actor: str, n: int, verb: str = "spam") -> dict[str, Any]:
        """One ``<verb> n`` to ``actor``: replies received and seconds to its ``:``."""
        import aio_pika

        command_id = str(uuid.uuid4())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        replies: list[tuple[Any, bytes]] = []
        self.waiting[command_id] = (done, replies)
        headers = {"command_id": command_id, "commander_id": f"{self.name}.{actor}",
                   "internal": False, "write_to_log": True}
        message = aio_pika.Message(json.dumps({"command_string": f"{verb} {n}"}).encode(),
                                   headers=headers, correlation_id=command_id,
                                   content_type="text/json")
        t0 = time.perf_counter()
        try:
            await self.exchange.publish(message, routing_key=f"command.{actor}")
            await asyncio.wait_for(done, TIMEOUT)
        finally:
            del self.waiting[command_id]
        seconds = time.perf_counter() - t0
        if replies[-1][0] != ":":
            raise RuntimeError(f"{actor} {verb} {n} -> {replies[-1]}")
        indexes = [json.loads(body)["spam_index"] for code, body in replies if code == "i"]
        if indexes != list(range(n)):
            raise RuntimeError(f"{actor} {verb} {n}: replies out of order or missing "
                               f"({len(indexes)} received)")
        return {"replies": len(replies), "seconds": seconds}


async def answer(consumer: RawConsumer, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request (see the module's docstring)."""
    if request.get("op") != "stream":
        raise ValueError(f"unknown op {request.get('op')!r}")
    return await consumer.stream(request["actor"], int(request["n"]),
                                 str(request.get("verb", "spam")))


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="relaybench_raw")
    args = ap.parse_args(argv)
    answers = answers_on_stdout()
    consumer = RawConsumer(args.url, args.name)
    await asyncio.wait_for(consumer.start(), 30)
    answers.write(f"READY {args.name} {args.url}\n")
    answers.flush()
    try:
        await serve_requests(lambda request: answer(consumer, request), sys.stdin, answers)
    finally:
        await consumer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

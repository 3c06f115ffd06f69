"""A channel that aio-pika reopens by itself keeps its queues' consumers.

aio-pika reopens a robust channel the broker closed (a channel-level error) or whose
close it noticed late (after a fast failover the old channel's close callback can run
once the connection is already back): the new channel has none of the consumers the
connection restored on the old one. Seen as a failed-over bridge that no longer heard
a clu actor's replies (issue 15). These tests close a channel from the broker's side
and check that its queues are consumed again.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq

from bridge.amqp import AmqpConnection
from tests.support.aio import aio_test

WAIT = 10.0


async def _broker_closes(amqp_channel) -> None:
    """Make the broker close ``amqp_channel``'s underlying channel (404 on a passive
    declare), as a channel-level error does."""
    underlay = await amqp_channel.channel.get_underlay_channel()
    try:
        await underlay.queue_declare("no-such-queue-for-this-test", passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        pass
    else:
        raise AssertionError("the broker did not refuse the passive declare")


async def _received(amqp_url: str, routing_key: str, queue: asyncio.Queue, n: int) -> list:
    async with await aio_pika.connect(amqp_url) as conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange("sdss_exchange", "topic", auto_delete=True)
        got = []
        for i in range(n):
            await ex.publish(aio_pika.Message(f"m{i}".encode()), routing_key)
            got.append(await asyncio.wait_for(queue.get(), WAIT))
        return got


@aio_test
async def test_consumer_restored_after_the_broker_closes_the_channel(amqp_url: str) -> None:
    conn = await AmqpConnection(amqp_url).start()
    try:
        channel = await conn.open_channel()
        inbox: asyncio.Queue = asyncio.Queue()

        async def on_message(message) -> None:
            inbox.put_nowait(message.body)

        await channel.declare_exclusive_queue("reopen_test_replies", ["reply.reopen_test"],
                                              on_message, no_ack=True)
        assert await _received(amqp_url, "reply.reopen_test", inbox, 1) == [b"m0"]
        for round_ in range(2):  # and again: each reopen is noticed
            await _broker_closes(channel)
            got = await _received(amqp_url, "reply.reopen_test", inbox, 2)
            assert got == [b"m0", b"m1"], round_
        assert conn.connected and not conn.queue_problems
    finally:
        await conn.stop()

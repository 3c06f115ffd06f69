"""Many publishes on one channel go out together, in order, each with its confirm.

A busy bridge publishes the replies of many commands on one endpoint's channel at
once. aio-pika's ``Exchange.publish`` keeps the channel's lock until aiormq's writer
task has sent the message: two event-loop turns or more per message, one message after
the other, so on a loop whose turns are slow a few hundred replies queued for seconds
and hit their confirm timeout (the load test saw it in CI). ``AmqpChannel.publish`` only
queues the frames under the lock and waits for the confirm after releasing it. The test
counts loop turns, not seconds: every turn of the loop is made slow by a callback that
runs in each of them.
"""

from __future__ import annotations

import asyncio
import time

import aio_pika
from aiormq.abc import DeliveredMessage

from tests.amqp.helpers import WAIT, amqp_connection
from tests.support.aio import aio_test

MESSAGES = 300


@aio_test
async def test_concurrent_publishes_on_one_channel_do_not_wait_for_each_others_writes(
    amqp_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    received: list[bytes] = []
    all_in = loop.create_future()

    async def on_message(message: DeliveredMessage) -> None:
        received.append(message.body)
        if len(received) == MESSAGES and not all_in.done():
            all_in.set_result(None)

    async with amqp_connection(amqp_url) as conn:
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("publish_test", ["test.publish"], on_message,
                                              no_ack=True)
        turns = 0
        ticking = True

        def tick() -> None:  # runs once in every turn of the loop, and makes it slow
            nonlocal turns
            turns += 1
            time.sleep(0.001)
            if ticking:
                loop.call_soon(tick)

        loop.call_soon(tick)
        try:
            await asyncio.wait_for(asyncio.gather(*(
                channel.publish(aio_pika.Message(str(i).encode()), "test.publish", timeout=WAIT)
                for i in range(MESSAGES))), WAIT)
        finally:
            ticking = False
        await asyncio.wait_for(all_in, WAIT)
        await conn.release_channel(channel)

    assert received == [str(i).encode() for i in range(MESSAGES)]  # in order, each once
    # Publishing one after the other, each holding the lock until its message is
    # written, takes at least two turns per message (three in practice: ~900 here).
    # Queued together they take about one turn per message at worst, while aiormq's
    # write queue (ten frames, shared by the connection) is full: ~300 here.
    assert turns < 2 * MESSAGES, f"{MESSAGES} publishes took {turns} loop turns"

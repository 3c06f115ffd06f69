"""A channel the broker closed (a refused presence probe) must not have its number given to
another channel before its Close-Ok is written: the broker would take the new channel's
Channel.Open for a second open and close the whole shared connection (``CHANNEL_ERROR -
second 'channel.open' seen``; seen as a rare failure of test_presence_cancel). Without
the fix this test failed in three runs out of three."""

from __future__ import annotations

import asyncio

import aio_pika

from bridge.amqp.presence import amqp_actor_present
from tests.amqp.helpers import amqp_connection, clu_actor
from tests.support.aio import aio_test


@aio_test
async def test_concurrent_refused_probes_and_channel_opens_leave_the_connection_up(amqp_url):
    async with clu_actor(amqp_url, "camera"), amqp_connection(amqp_url) as conn:
        lost: list[BaseException | None] = []
        conn.on_disconnect(lost.append)

        async def probes() -> None:  # "camera" is locked, "nobody" missing: both refused
            for _ in range(40):
                assert await amqp_actor_present(conn, "camera") is True
                assert await amqp_actor_present(conn, "nobody") is False

        async def opens() -> None:
            for _ in range(80):
                channel = aio_pika.Channel(conn.robust_connection, publisher_confirms=False)
                await channel.initialize(timeout=5)
                await channel.close()

        await asyncio.gather(*(probes() for _ in range(20)), *(opens() for _ in range(6)))
        await asyncio.sleep(0.3)
        assert lost == [] and conn.connected

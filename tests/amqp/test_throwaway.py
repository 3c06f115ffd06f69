"""bridge.amqp.throwaway: a refusable RPC's channel keeps other channels from a number."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq
import pytest

from bridge.amqp.throwaway import throwaway_channel
from tests.amqp.helpers import amqp_connection
from tests.support.aio import aio_test


async def _open_channel(conn) -> aio_pika.Channel:  # noqa: ANN001
    channel = aio_pika.Channel(conn.robust_connection, publisher_confirms=False)
    await channel.initialize(timeout=5)
    return channel


@aio_test
async def test_no_channel_gets_a_number_while_a_throwaway_channel_is_in_use(amqp_url):
    async with amqp_connection(amqp_url) as conn:
        async with throwaway_channel(conn.robust_connection, 5) as probe:
            other = asyncio.ensure_future(_open_channel(conn))
            await asyncio.sleep(0.2)
            assert not other.done()  # waits for the number lock
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await probe.declare_queue("no-such-queue-anywhere", passive=True)
            assert probe.is_closed  # the broker refused by closing the channel
            await asyncio.sleep(0.1)
            assert not other.done()
        channel = await asyncio.wait_for(other, 5)
        assert not channel.is_closed
        await channel.close()
        assert conn.connected


@aio_test
async def test_a_throwaway_channel_is_closed_on_the_way_out(amqp_url):
    async with amqp_connection(amqp_url) as conn:
        async with throwaway_channel(conn.robust_connection, 5) as probe:
            await probe.declare_queue("", exclusive=True, auto_delete=True)
        assert probe.is_closed
        with pytest.raises(RuntimeError):
            async with throwaway_channel(conn.robust_connection, 5):
                raise RuntimeError("the body failed")
        channel = await _open_channel(conn)  # the lock was let go after the failure
        await channel.close()

"""Presence checks cancelled half-way (a prefer-AMQP route replaced by a reload, a commander
stopping) must not take the shared broker connection down with them: commands in flight on
that connection would all fail (found by the migration test under load)."""

from __future__ import annotations

import asyncio

from bridge.amqp.presence import amqp_actor_present
from tests.amqp.helpers import amqp_connection, clu_actor
from tests.support.aio import aio_test


@aio_test
async def test_cancelled_presence_checks_leave_the_connection_up(amqp_url):
    async with clu_actor(amqp_url, "camera"), amqp_connection(amqp_url) as conn:
        lost: list[BaseException | None] = []
        conn.on_disconnect(lost.append)
        for step in range(60):  # cancel at many different points of the probe
            task = asyncio.ensure_future(amqp_actor_present(conn, "camera"))
            for _ in range(step % 12):
                await asyncio.sleep(0)
            await asyncio.sleep(0.0005 * (step // 12))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.5)  # the broker's reaction to a broken channel would be here
        assert lost == [] and conn.connected
        assert await amqp_actor_present(conn, "camera") is True
        assert await amqp_actor_present(conn, "nobody") is False

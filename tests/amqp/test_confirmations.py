"""Publisher confirm futures (``bridge.amqp.writer.confirmation_future``), real broker.

The bridge makes the future of each publish's confirm itself instead of through
aiormq's ``channel.create_future()``, which files every future in two future stores so
that a closing channel rejects it. These tests hold the replacement to what the stores
did: a confirmed publish resolves with the broker's ``Basic.Ack``; when the channel
closes, or the connection under it is lost, a confirmation still pending is rejected
with the same error as a future of aiormq's own, and none is left waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pamqp import commands as spec

from bridge.amqp import receiver, writer
from tests.amqp.helpers import WAIT, amqp_connection
from tests.support.aio import aio_test

#: A delivery tag no publish of these tests reaches (a confirmation nobody will ack).
NEVER = 10**9


def _stores(channel: object) -> set[object]:
    """Every future filed in the channel's future store and in its connection's."""
    store = channel._Base__future_store  # type: ignore[attr-defined]
    return set(store.futures) | set(store.parent.futures)


@aio_test
async def test_a_confirmed_publish_resolves_with_the_brokers_ack(amqp_url: str) -> None:
    async with amqp_connection(amqp_url) as conn:
        wrapped = await conn.open_channel()
        channel = writer.usable_channel(wrapped.channel)
        assert channel is not None
        confirm = writer.publish_message(channel, conn.exchange_name, "test.confirmations",
                                         b"x", spec.Basic.Properties())
        assert confirm not in _stores(channel)  # no bookkeeping per publish
        result = await asyncio.wait_for(confirm, WAIT)
        assert isinstance(result, spec.Basic.Ack)
        await conn.release_channel(wrapped)


async def _pending_pair(channel: object) -> tuple[asyncio.Future, asyncio.Future]:
    ours = writer.confirmation_future(channel)  # type: ignore[arg-type]
    channel.confirmations[NEVER] = ours  # type: ignore[attr-defined]
    theirs = channel.create_future()  # type: ignore[attr-defined]
    return ours, theirs


def _same_rejection(ours: asyncio.Future, theirs: asyncio.Future) -> None:
    assert ours.done() and theirs.done()
    assert not ours.cancelled() and not theirs.cancelled()
    assert ours.exception() is not None
    assert type(ours.exception()) is type(theirs.exception())
    assert str(ours.exception()) == str(theirs.exception())


async def _close_the_channel(conn: Any, wrapped: Any, channel: Any) -> None:
    await conn.release_channel(wrapped)


async def _lose_the_connection(conn: Any, wrapped: Any, channel: Any) -> None:
    reader = receiver._bound[channel.write_queue]
    reader.stream_writer.transport.abort()  # the socket goes, as when a broker dies


@pytest.mark.parametrize("end", [_close_the_channel, _lose_the_connection],
                         ids=["channel closed", "connection lost"])
@aio_test
async def test_the_end_of_the_channel_rejects_pending_confirmations(
        amqp_url: str, end: Callable[..., Awaitable[None]]) -> None:
    async with amqp_connection(amqp_url) as conn:
        wrapped = await conn.open_channel()
        channel = writer.usable_channel(wrapped.channel)
        ours, theirs = await _pending_pair(channel)
        await end(conn, wrapped, channel)
        await asyncio.wait([ours, theirs], timeout=WAIT)
        _same_rejection(ours, theirs)


@aio_test
async def test_a_channel_is_watched_once(amqp_url: str) -> None:
    async with amqp_connection(amqp_url) as conn:
        wrapped = await conn.open_channel()
        channel = writer.usable_channel(wrapped.channel)
        assert channel is not None
        before = len(channel._closing._callbacks)  # type: ignore[attr-defined]
        futures = [writer.confirmation_future(channel) for _ in range(5)]
        after = len(channel._closing._callbacks)  # type: ignore[attr-defined]
        assert after - before <= 1
        for future in futures:
            future.cancel()
        await conn.release_channel(wrapped)

"""Throw-away channels: where an RPC that the broker may refuse is sent.

The broker refuses some RPCs by closing the channel they came on: a passive declare of
a queue that does not exist (404) or that another connection holds exclusively (405),
a declare with other arguments than the queue has, a delete whose ``if_empty`` does not
hold (406). Such RPCs go on a channel of their own, so that the refusal closes nothing
else.

One more thing has to hold for the refusal to stay on that channel. aiormq frees the
channel's number as soon as the broker's ``Channel.Close`` arrives, and the channel's
own task writes the ``Close-Ok`` a moment later. A channel opened on the same
connection in between can be given the same number. If its ``Channel.Open`` reaches
the broker before that ``Close-Ok``, RabbitMQ takes it for a second open of a channel
that is still open and closes the whole connection (``CHANNEL_ERROR - second
'channel.open' seen``). Every command in flight on it would fail.

:func:`throwaway_channel` therefore holds the connection's channel-number lock (the
lock aiormq's ``Connection.channel`` takes to pick a number) while the channel is in
use. The ``Close-Ok`` is queued before the refused RPC raises, so once the lock is
released, every later ``Channel.Open`` follows the ``Close-Ok`` on the socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika

__all__ = ["throwaway_channel"]


@asynccontextmanager
async def throwaway_channel(connection: aio_pika.abc.AbstractConnection,
                            timeout: float | None) -> AsyncIterator[aio_pika.Channel]:
    """A plain channel (not robust, no publisher confirms) on ``connection``, opened
    within ``timeout`` seconds and closed on the way out. While it is in use, no
    other channel of the same connection is given a number (see the module doc).
    Keep the work in it short: opening any other channel on the connection waits for
    it, and opening one from inside it would wait forever.
    """
    channel = aio_pika.Channel(connection, publisher_confirms=False)
    await channel.initialize(timeout=timeout)
    try:
        underlay = await channel.get_underlay_channel()
        async with underlay.connection.last_channel_lock:
            yield channel
    finally:
        if not channel.is_closed:
            await channel.close()

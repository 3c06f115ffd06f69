"""Is an AMQP (clu) actor running? Its exclusive ``<actor>_commands`` queue tells."""

from __future__ import annotations

import asyncio
import logging

import aiormq

from ..protocol.clu_messages import commands_queue_name
from .connection import AmqpConnection

log = logging.getLogger(__name__)


async def amqp_actor_present(connection: AmqpConnection, actor: str) -> bool:
    """True if a clu actor named ``actor`` holds its commands queue right now.

    A passive declaration on a throw-away channel (:mod:`~bridge.amqp.throwaway`: the
    broker closes the channel when the answer is "no such queue" or "locked"): a queue
    that does not exist means no actor; one that is locked is the exclusive queue of
    another connection, i.e. a live clu actor; one we can see is ours, present if it
    has a consumer.

    Cancelling the caller does not cancel the probe: a channel RPC abandoned half-way
    (channel open, declare) makes the broker close the whole shared connection
    (``CHANNEL_ERROR``), failing every command in flight on it. The probe runs to its
    end in its own task.
    """
    if not connection.connected:
        return False
    probe = asyncio.ensure_future(_probe(connection, actor))
    probe.add_done_callback(_retrieve)
    return await asyncio.shield(probe)


def _retrieve(task: "asyncio.Future[bool]") -> None:
    """Consume the outcome of a probe whose caller was cancelled (no "never retrieved")."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("presence probe failed: %r", task.exception())


async def _probe(connection: AmqpConnection, actor: str) -> bool:
    try:
        async with connection.throwaway_channel() as probe:
            queue = await probe.declare_queue(commands_queue_name(actor), passive=True)
            return bool(queue.declaration_result.consumer_count)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    except aiormq.exceptions.ChannelLockedResource:
        return True

"""Is an AMQP actor running? (Does ``<actor>_commands`` exist with a consumer?)"""

from __future__ import annotations

import logging

import aiormq

from .connection import AmqpConnection
from ..protocol.clu_messages import commands_queue_name

log = logging.getLogger(__name__)


async def amqp_actor_present(connection: AmqpConnection, actor: str) -> bool:
    """True if a clu actor named ``actor`` consumes its commands queue right now.

    Uses a passive queue declaration on a short-lived channel (a missing queue closes
    that channel, which is why it is not one of the long-lived ones).
    """
    if not connection.connected:
        return False
    channel = await connection.robust_connection.channel()
    try:
        queue = await channel.declare_queue(commands_queue_name(actor), passive=True)
        return bool(queue.declaration_result.consumer_count)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()

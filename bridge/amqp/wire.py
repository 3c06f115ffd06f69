"""Conversions between :mod:`bridge.protocol.clu_messages` values, aio-pika messages
(outgoing), aiormq deliveries (incoming) and the bridge's transport-agnostic
:class:`~bridge.core.Reply`."""

from __future__ import annotations

from datetime import datetime

import aio_pika
from aiormq.abc import DeliveredMessage

from bridge.core.replies import Reply
from bridge.protocol.clu_messages import (
    CommandMessage,
    ReplyMessage,
    decode_command,
    decode_reply,
)


def command_to_message(command: CommandMessage) -> aio_pika.Message:
    """An aio-pika message carrying ``command`` exactly as clu's client sends it."""
    return aio_pika.Message(command.body(), headers=command.headers(), **command.properties())


def reply_to_message(reply: ReplyMessage, now: datetime | None = None) -> aio_pika.Message:
    """An aio-pika message carrying ``reply`` exactly as clu's actor sends it."""
    return aio_pika.Message(reply.body_bytes(), headers=reply.headers(), **reply.properties(now))


def incoming_command(message: DeliveredMessage) -> CommandMessage:
    """Decode a delivery (or a basic.get result) from a commands queue (raises
    ``MessageError``)."""
    properties = message.header.properties
    return decode_command(
        properties.headers, message.body, properties.correlation_id,
        reply_to=properties.reply_to,
    )


def incoming_reply(message: DeliveredMessage) -> ReplyMessage:
    """Decode a delivery from a replies queue (raises ``MessageError``)."""
    properties = message.header.properties
    return decode_reply(
        properties.headers,
        message.body,
        properties.correlation_id,
        routing_key=message.delivery.routing_key,  # type: ignore[union-attr]
        timestamp=properties.timestamp,
    )


def reply_from_message(message: ReplyMessage) -> Reply:
    """A clu reply as a bridge :class:`~bridge.core.Reply` (its JSON body is the JSON form;
    keywords are derived only when a legacy side asks for them)."""
    return Reply(
        code=message.message_code,
        sender=message.sender or "",
        keywords=None,
        commander=message.commander_id,
        command_id=message.command_id,
        values=message.body or {},
        internal=bool(message.internal),
    )

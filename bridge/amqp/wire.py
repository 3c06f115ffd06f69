"""Conversions between :mod:`bridge.protocol.clu_messages` values and aio-pika messages."""

from __future__ import annotations

from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

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


def incoming_command(message: AbstractIncomingMessage) -> CommandMessage:
    """Decode a delivery from a commands queue (raises ``MessageError``)."""
    return decode_command(
        message.headers, message.body, message.correlation_id, reply_to=message.reply_to
    )


def incoming_reply(message: AbstractIncomingMessage) -> ReplyMessage:
    """Decode a delivery from a replies queue (raises ``MessageError``)."""
    return decode_reply(
        message.headers,
        message.body,
        message.correlation_id,
        routing_key=message.routing_key,
        timestamp=message.timestamp,
    )

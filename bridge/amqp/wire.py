"""Conversions between :mod:`bridge.protocol.clu_messages` values, aio-pika messages
and the bridge's transport-agnostic :class:`~bridge.core.Reply`."""

from __future__ import annotations

from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

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

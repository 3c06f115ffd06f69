"""Command AMQP (clu) actors with the same handles and replies as every other target.

:class:`AmqpTarget` wraps an :class:`~bridge.amqp.commander.AmqpCommander`: commands
return a :class:`~bridge.core.CommandHandle` at once, each clu reply becomes a
:class:`~bridge.core.Reply` (JSON body kept as is, keywords derived when a legacy side
needs them). Failures the commander detects locally (no such actor, broker gone, time
limit) arrive as ``f`` replies like any other.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from ..amqp.commander import AmqpCommander
from ..core import CommandHandle, Reply, ReplyCallback
from ..protocol.clu_messages import ReplyMessage

log = logging.getLogger(__name__)

#: Seconds after a command ended during which its late replies are still known as ours.
LATE_REPLY_GRACE = 10.0


def to_reply(message: ReplyMessage) -> Reply:
    """A clu reply message as a bridge :class:`Reply` (the body is the JSON form)."""
    return Reply(message.message_code, message.sender or "", None, message.commander_id,
                 message.command_id, message.body or {}, bool(message.internal))


class AmqpTarget:
    """Send commands to AMQP actors; hear the traffic of the actors we front.

    ``add_reply_listener(cb, sender=...)`` delivers every reply of that sender that is
    not an answer to one of our own commands (broadcasts and other commanders'
    replies), so a legacy face can mirror them as unsolicited lines.
    """

    def __init__(self, commander: AmqpCommander) -> None:
        self.commander = commander
        self._ours: set[str] = set()
        self._listeners: list[tuple[str | None, Callable[[Reply], Any]]] = []
        self._handles: set[CommandHandle] = set()
        commander.add_reply_listener(self._on_any_reply)

    @property
    def in_flight(self) -> int:
        return len(self._handles)

    @property
    def connected(self) -> bool:
        return bool(self.commander.connection.connected)

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send ``text`` to AMQP actor ``actor``; the handle is returned at once.

        ``commander`` is who sends (``APO.john``, ``APO.john.camera``): the AMQP commander
        id becomes ``<commander>.<actor>`` as clu chains it (default ``<our name>.<actor>``).
        """
        handle = CommandHandle(actor, text, commander=commander, callback=callback)
        self._handles.add(handle)
        loop = asyncio.get_event_loop()

        def ended(_f: object) -> None:
            self._handles.discard(handle)
            # Keep recognising late replies of a command that ended locally for a while.
            loop.call_later(LATE_REPLY_GRACE, self._ours.discard, handle.command_id)

        handle._finished.add_done_callback(ended)

        def deliver(message: ReplyMessage) -> None:
            handle.add_reply(to_reply(message))

        command_id = str(uuid.uuid4())
        handle.command_id = command_id
        self._ours.add(command_id)  # before publishing: a fast reply must not look foreign

        async def publish() -> None:
            try:
                sent = await self.commander.send_command(
                    actor, text, commander_id=f"{commander}.{actor}" if commander else None,
                    command_id=command_id,
                    callback=deliver, time_limit=time_limit)
            except Exception as exc:  # bad names, commander stopped...
                self._ours.discard(command_id)
                handle.fail(f"Could not send the command to {actor!r}: {exc}")
                return
            if sent.done():
                self._ours.discard(command_id)

        asyncio.ensure_future(publish())
        return handle

    def add_reply_listener(self, listener: Callable[[Reply], Any],
                           sender: str | None = None) -> None:
        """``listener(reply)`` for replies of ``sender`` (any if None) not answering our commands."""
        self._listeners.append((sender, listener))

    def _on_any_reply(self, message: ReplyMessage) -> None:
        command_id = message.command_id
        if command_id is not None and command_id in self._ours:
            if message.message_code in (":", "f", "!"):
                self._ours.discard(command_id)
            return
        if not self._listeners:
            return
        reply = to_reply(message)
        for sender, listener in list(self._listeners):
            if sender is None or sender == reply.sender:
                try:
                    listener(reply)
                except Exception:
                    log.exception("AMQP reply listener failed")

"""Command AMQP (clu) actors with the same handles and replies as every other target.

:class:`AmqpTarget` is a thin layer over :class:`~bridge.amqp.commander.AmqpCommander`,
which already tracks commands with :class:`~bridge.core.CommandHandle` and delivers
:class:`~bridge.core.Reply` objects. The target adds what a face needs: the handle is
returned at once (publishing happens in a task, and even a refused command fails
later, never inside ``send_command``), the handle's ``commander`` is the caller's
commander as with every target, and listeners of one sender hear only the traffic
that does not answer our own commands, and ``add_command_reply_listener`` the replies
to the commands sent through it (with their handles, so that each sender can skip its
own). Failures the commander detects locally (no
such actor, broker gone, time limit) arrive as ``f`` replies like any other.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from random import getrandbits
from collections.abc import Callable
from typing import Any

from ..amqp.commander import AmqpCommander
from ..core import CommandHandle, CommandReplyListener, Reply, ReplyCallback
from ..core.expiring import ExpiringSet

log = logging.getLogger(__name__)

#: Seconds after a command ended during which its late replies are still known as ours.
LATE_REPLY_GRACE = 10.0
#: Seconds between two checks for ids to forget (an id is kept up to this much longer).
FORGET_BATCH = 0.5
# Both are read when a target is made (tests shorten them).


class AmqpTarget:
    """Send commands to AMQP actors; hear the traffic of the actors we front.

    ``add_reply_listener(cb, sender=...)`` delivers every reply of that sender that is
    not an answer to one of our own commands (broadcasts and other commanders'
    replies), so a legacy face can mirror them as unsolicited lines.
    """

    def __init__(self, commander: AmqpCommander) -> None:
        self.commander = commander
        #: The ids of our commands, kept LATE_REPLY_GRACE after each ended.
        self._ours: ExpiringSet[str] = ExpiringSet(LATE_REPLY_GRACE, batch=FORGET_BATCH)
        self._listeners: list[tuple[str | None, Callable[[Reply], Any]]] = []
        self._command_listeners: list[tuple[str | None, CommandReplyListener]] = []
        self._handles: dict[str, CommandHandle] = {}  # in flight, by command id
        #: Others' commands that ended lately (sender, command id): their terminal reply
        #: is passed on once.
        self._ended_foreign: ExpiringSet[tuple[str | None, str]] = ExpiringSet(
            LATE_REPLY_GRACE, batch=FORGET_BATCH)
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once
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
        # A version-4 UUID as clu's, from Python's PRNG (uuid4() reads os.urandom: a system
        # call per command; a command id is no secret).
        command_id = str(uuid.UUID(int=getrandbits(128), version=4))
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_event_loop()
        handle = CommandHandle(actor, text, commander=commander, command_id=command_id,
                               callback=callback, loop=loop)
        try:
            self.commander.submit_command(
                actor, text, commander_id=f"{commander}.{actor}" if commander else None,
                command_id=command_id, time_limit=time_limit, handle=handle)
        except Exception as exc:  # bad names, commander stopped...
            loop.call_soon(handle.fail, f"Could not send the command to {actor!r}: {exc}")
            return handle
        self._ours.add(command_id)  # before any reply can arrive: it must not look foreign
        self._handles[command_id] = handle
        handle.add_done_callback(self._ended)
        return handle

    def _ended(self, handle: CommandHandle) -> None:
        """One of our commands ended: keep recognising its late replies for a while
        (LATE_REPLY_GRACE; one timer for all of them, not one per command)."""
        command_id: str = handle.command_id  # type: ignore[assignment]
        self._handles.pop(command_id, None)
        self._ours.expire(command_id)

    def add_reply_listener(self, listener: Callable[[Reply], Any],
                           sender: str | None = None) -> None:
        """``listener(reply)`` for replies of ``sender`` (any if None) not answering our
        commands. The commander's queue is bound to hear that sender's traffic."""
        self._listeners.append((sender, listener))
        self.commander.listen_to(sender)

    async def hearing(self, sender: str | None) -> None:
        """Return once the commander's queue is bound to hear ``sender``'s traffic (any
        sender's if None), as :meth:`add_reply_listener` asks in the background; raises
        what the bind raised (e.g. :class:`~bridge.amqp.commander.AmqpError`)."""
        await self.commander.hear_actor(sender)

    def add_command_reply_listener(self, listener: CommandReplyListener,
                                   sender: str | None = None) -> None:
        """``listener(reply, handle)`` for every reply of ``sender`` (any if None) to a
        command sent through this target while it runs (after the command's own
        callback). Whoever sent the command knows its handle and can skip its own. No
        binding is added: the commander already hears the replies of every command it
        sends."""
        self._command_listeners.append((sender, listener))

    def _on_any_reply(self, reply: Reply) -> None:
        command_id = reply.command_id
        if command_id is not None and command_id in self._ours:
            handle = self._handles.get(str(command_id))
            if handle is not None:
                for sender, command_listener in list(self._command_listeners):
                    if sender is None or sender == reply.sender:
                        try:
                            command_listener(reply, handle)
                        except Exception:
                            log.exception("AMQP command reply listener failed")
            # Its id stays ours for LATE_REPLY_GRACE after the end (``ended``): a copy
            # of the terminal reply arriving later is dropped, not mirrored as foreign.
            return
        if command_id is not None and reply.is_terminal:
            key = (reply.sender, str(command_id))
            if key in self._ended_foreign:
                log.warning("dropping a second terminal reply %r of %s's command %s",
                            reply.code, reply.sender, command_id)
                return
            self._ended_foreign.add_expiring(key)
        for sender, listener in list(self._listeners):
            if sender is None or sender == reply.sender:
                try:
                    listener(reply)
                except Exception:
                    log.exception("AMQP reply listener failed")

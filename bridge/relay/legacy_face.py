"""Serve an AMQP actor as a legacy TCP actor: Tron and legacy clients command it unchanged.

The face is a :class:`~bridge.legacy.server.LegacyServer` on its own port whose commands
go to the AMQP actor of the same name through an :class:`AmqpTarget`. The AMQP commander
id keeps the legacy commander (``APO.john`` -> ``APO.john.camera``); clu's JSON replies
come back as canonical keyword lines to the issuing connection, and the AMQP actor's
other traffic (broadcasts, replies to other commanders, also to those of the bridge's
hub port) becomes cid-0 lines for every connected legacy client. With a Tron connection,
the face asks the hub to connect to it (``hub startNubs <name>``), now and after every
reconnect.

Given ``commands`` (the bridge's router), the face sends each command by the actor's
*current* route instead of straight to AMQP: a reload that moves the actor keeps the
face, its port and its clients, and new commands follow the new route while those
already running finish on theirs. A face that is retired (its actor removed, or served
elsewhere) is handed over (:mod:`bridge.core.handover`): :meth:`LegacyFace.release`
refuses new commands at once with a clear error, the running ones end normally, and
:meth:`LegacyFace.stop` closes the port.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from ..core import CommandHandle, CommandTarget, IssuedCommands, Reply
from ..core.handover import Handover, HandoverEvent, retired_error
from ..legacy.server import IncomingLegacyCommand, LegacyServer
from .amqp_target import AmqpTarget

log = logging.getLogger(__name__)

#: Seconds :meth:`LegacyFace.start` waits for the actor's replies to be heard.
HEARING_WAIT = 2.0
_NOT_ROUTING_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def commander_chain(legacy_commander: str | None, user_id: int) -> str:
    """Who sent a legacy command, as an AMQP commander chain.

    ``APO.john`` stays ``APO.john``; tron's hub-internal ``.hub`` becomes ``hub``; a
    client that sent no commander becomes ``legacy.user<N>``.
    """
    base = _NOT_ROUTING_SAFE.sub("_", (legacy_commander or "").strip("."))
    return base or f"legacy.user{user_id}"


def amqp_commander_id(legacy_commander: str | None, user_id: int, actor: str) -> str:
    """The AMQP commander id of a legacy command to ``actor``: ``APO.john`` -> ``APO.john.camera``
    (clu's ``<sender>.<consumer>`` form; the AMQP target appends the actor)."""
    return f"{commander_chain(legacy_commander, user_id)}.{actor}"


class LegacyFace:
    """The legacy side of one AMQP actor (see the module docstring)."""

    #: Counts the commands this face receives (a BridgeMetrics), or None.
    metrics: Any = None

    def __init__(self, name: str, target: AmqpTarget, *, host: str = "127.0.0.1",
                 port: int = 0, mid_first: bool = False, version: str | None = None,
                 tron: Any = None, time_limit: float | None = None,
                 mirror_internal: bool = False, commands: CommandTarget | None = None,
                 eol: str = "\n") -> None:
        self.name = name
        self.target = target
        #: Where commands go: the router (by the actor's current route) or the AMQP target.
        self.commands: CommandTarget = commands if commands is not None else target
        self.handover = Handover(name)
        #: The error new commands get once the face is released.
        self.refusal = retired_error(name)
        self.tron = tron
        self.time_limit = time_limit
        self.mirror_internal = mirror_internal
        self.server = LegacyServer(self, name=name, host=host, port=port, version=version,
                                   mid_first=mid_first, eol=eol)
        self.counters = {"commands": 0, "replies": 0, "broadcasts": 0}
        #: Handles of the commands this face sent (their replies go to their connections).
        self._issued = IssuedCommands()
        target.add_reply_listener(self._on_actor_traffic, sender=name)
        target.add_command_reply_listener(self._on_command_reply, sender=name)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def in_flight(self) -> int:
        return len(self.server.commands_in_flight)

    async def start(self) -> None:
        """Hear the actor's traffic, listen, and register with the Tron hub if one is
        configured. The port opens once the commander's queue is bound to the actor's
        replies (up to :data:`HEARING_WAIT` s; the bind goes on in the background if it
        takes longer), so that a client connected after ``start`` sees every reply of
        the actor from then on, also of commands sent at once by others."""
        try:
            await asyncio.wait_for(self.target.hearing(self.name), HEARING_WAIT)
        except Exception as exc:  # noqa: BLE001 - the face must open all the same
            log.warning("%s: the actor's traffic is not heard yet (%s); listening anyway",
                        self.name, str(exc) or type(exc).__name__)
        await self.server.start()
        if self.tron is not None:
            self.tron.add_startup_command("hub", f"startNubs {self.name}")

    async def release(self, refusal: str | None = None) -> None:
        """Take no new command from now on (each is answered ``f`` with ``refusal``, by
        default "removed from the configuration"); the running ones go on. The port stays
        open, so clients keep their connection and read the refusal, until :meth:`stop`."""
        if not self.handover.can(HandoverEvent.RELEASE):
            return
        if refusal is not None:
            self.refusal = refusal
        self.handover.handle(HandoverEvent.RELEASE)
        if self.tron is not None:
            self.tron.remove_startup_command("hub", f"startNubs {self.name}")
        self.handover.handle(HandoverEvent.RELEASED)

    async def stop(self, reason: str | None = None,
                   event: HandoverEvent = HandoverEvent.STOP) -> None:
        """Stop registering, close the port; commands still running get ``f`` with
        ``reason`` (default: the bridge stopped serving the actor). ``event`` says why,
        for :attr:`handover` (``stop``, ``idle`` or ``limit``)."""
        if self.handover.ended:
            return
        if self.tron is not None:
            self.tron.remove_startup_command("hub", f"startNubs {self.name}")
        self.handover.handle(event if self.handover.can(event) else HandoverEvent.STOP)
        await self.server.stop(reason or f"The bridge stopped serving actor {self.name}.")

    def handle(self, command: IncomingLegacyCommand) -> CommandHandle:
        """Forward one legacy command to the AMQP actor; return its handle (awaited by
        the server until the command ends).

        The command is sent at once (not from a task started later) and each reply is
        written to the legacy connection from the handle's callback as it arrives, in
        order: no hop through the event loop between the AMQP reply and its line.
        """
        if not self.handover.accepting:
            handle = CommandHandle(self.name, command.text)
            command.fail(self.refusal)
            handle.fail(self.refusal)
            return handle
        self.counters["commands"] += 1
        commander = commander_chain(command.commander, command.user_id)

        def relay(reply: Reply) -> None:
            self.counters["replies"] += 1
            if not command.finished:  # e.g. failed by the server meanwhile
                command.reply(reply.code, reply.keywords)

        handle = self._issued.add(self.commands.send_command(
            self.name, command.text, commander=commander, callback=relay,
            time_limit=self.time_limit))
        if self.metrics is not None:
            self.metrics.track(self.name, "legacy", handle, commander,
                               f"{command.user_id}.{command.mid}")
        return handle

    def _on_command_reply(self, reply: Reply, handle: CommandHandle) -> None:
        """A reply to a command someone else sent through the target (the hub port): shown
        to this face's clients like the actor's other traffic."""
        if handle not in self._issued:
            self._on_actor_traffic(reply)

    def _on_actor_traffic(self, reply: Reply) -> None:
        if reply.internal and not self.mirror_internal:
            return
        self.counters["broadcasts"] += 1
        if self.server.num_users:  # the keywords are derived only for someone to read
            self.server.broadcast(reply.code, reply.keywords)

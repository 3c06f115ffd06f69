"""Reach legacy actors through a Tron hub: one TronConnection for all of them (hub mode).

:class:`HubTarget` sends each command through the hub with a commander name unique to
this bridge (``<our commander>.<AMQP commander id>``), so that replies are matched
exactly even when other bridges talk to the same hub. Everything else the hub fans out
for an actor (its broadcasts, replies to other commanders) reaches the listeners of
that actor's :meth:`HubTarget.for_actor` view.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from ..core import CommandHandle, Reply, ReplyCallback
from ..core.handover import RunningCommands
from ..legacy.tron import TronConnection
from ..protocol import HubReply

log = logging.getLogger(__name__)

_JUNK = re.compile(r"[^A-Za-z0-9_]")


def hub_commander(prefix: str, commander: str | None) -> str:
    """``prefix.<commander>`` with every segment made acceptable to tron and its clients."""
    segments = [prefix]
    for seg in (commander or "").split("."):
        seg = _JUNK.sub("_", seg)
        if seg and not seg[0].isalpha():
            seg = "c" + seg
        if seg:
            segments.append(seg)
    return ".".join(segments)


class HubTarget:
    """Commands to any actor of the hub; unsolicited traffic sorted by actor."""

    def __init__(self, tron: TronConnection) -> None:
        self.tron = tron
        self._listeners: dict[str, list[Callable[[Reply], Any]]] = {}
        tron.add_reply_listener(self._on_hub_reply, typed=True)

    @property
    def connected(self) -> bool:
        return self.tron.connected

    @property
    def in_flight(self) -> int:
        return self.tron.commands_in_flight

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send through the hub; the handle fails at once if the hub is not connected."""
        handle = self.tron.send_command(actor, text,
                                        commander=hub_commander(self.tron.commander, commander),
                                        callback=callback, time_limit=time_limit)
        handle.commander = commander
        return handle

    def for_actor(self, actor: str) -> "HubActorView":
        """A target for one actor, whose listeners hear only that actor's unsolicited traffic."""
        return HubActorView(self, actor)

    def add_reply_listener(self, listener: Callable[[Reply], Any], actor: str) -> None:
        self._listeners.setdefault(actor, []).append(listener)

    def _on_hub_reply(self, reply: HubReply, values: dict[str, Any]) -> None:
        listeners = self._listeners.get(reply.actor)
        if not listeners:
            return
        ours = self.tron.commander
        if reply.commander == ours or reply.commander.startswith(ours + "."):
            return  # an answer to one of our commands: its handle has it
        mirrored = Reply(reply.code, reply.actor, reply.keywords, None, None, values)
        for listener in list(listeners):
            try:
                listener(mirrored)
            except Exception:
                log.exception("hub reply listener failed")


class HubActorView:
    """One actor reached through a :class:`HubTarget`."""

    def __init__(self, hub: HubTarget, actor: str) -> None:
        self.hub = hub
        self.actor = actor
        #: The commands sent through this view (the hub connection is shared by all actors).
        self._running = RunningCommands()

    @property
    def connected(self) -> bool:
        return self.hub.connected

    @property
    def in_flight(self) -> int:
        """Commands sent through this view that have not ended (a replaced route drains them)."""
        return len(self._running)

    def send_command(self, actor: str, text: str, **kwargs: Any) -> CommandHandle:
        return self._running.add(self.hub.send_command(actor, text, **kwargs))

    async def stop(self, reason: str | None = None) -> None:
        """The view is no longer a route: with ``reason``, its commands still running fail
        with it (the hub connection itself stays, for the other actors)."""
        if reason is not None:
            self._running.fail_all(reason)

    def add_reply_listener(self, listener: Callable[[Reply], Any]) -> None:
        self.hub.add_reply_listener(listener, self.actor)

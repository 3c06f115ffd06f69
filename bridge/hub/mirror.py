"""Hear what the targets of the routing table say on their own, and when they come and go.

A :class:`TargetMirror` subscribes to the reply listeners of every route's target
(an :class:`~bridge.legacy.actor_link.ActorLink`'s unsolicited lines and its replies to
commands that others than the hub sent through it, an
:class:`~bridge.relay.amqp_target.AmqpTarget`'s traffic of one sender, a hub view's
actor traffic, both sides of a prefer-AMQP target) and to their state listeners, and
follows the router's route changes. Targets cannot be unsubscribed from, so a listener
of a target that is no longer the actor's current one simply ignores what it hears.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from ..core import CommandHandle, PreferAmqpTarget, Reply, Router

log = logging.getLogger(__name__)

#: ``on_reply(actor, reply)`` for unsolicited output of ``actor``.
UnsolicitedCallback = Callable[[str, Reply], Any]
#: ``on_state(actor, part, state)`` when a target (part) of ``actor`` changes state.
StateCallback = Callable[[str, Any, str], Any]


def target_parts(target: Any) -> list[Any]:
    """The objects that really talk to actors: both sides of a prefer-AMQP target."""
    if isinstance(target, PreferAmqpTarget):
        return [target.primary, target.amqp]
    return [target]


def is_connected(target: Any) -> bool:
    """True if the target can take commands now (targets without ``connected``: always)."""
    connected = getattr(target, "connected", True)
    return bool(connected() if callable(connected) else connected)


class TargetMirror:
    """Subscribe once to each (actor, target) of ``router``; report what they say."""

    def __init__(self, router: Router, on_reply: UnsolicitedCallback,
                 on_state: StateCallback,
                 is_own: Callable[[CommandHandle], bool] = lambda _handle: False) -> None:
        self.router = router
        self.on_reply = on_reply
        self.on_state = on_state
        self.is_own = is_own
        self.active = True
        self._watched: set[tuple[str, int]] = set()
        self._keep: list[Any] = []  # watched targets stay alive, so their ids stay unique

    def sync(self) -> list[tuple[str, Any]]:
        """Watch every current target not watched yet; return the new (actor, part) pairs."""
        new: list[tuple[str, Any]] = []
        for actor, target in self.router.targets().items():
            key = (actor, id(target))
            if key in self._watched:
                continue
            self._watched.add(key)
            self._keep.append(target)
            for part in target_parts(target):
                self._watch(actor, target, part)
                new.append((actor, part))
        return new

    def is_current(self, actor: str, target: Any) -> bool:
        return self.active and self.router.target(actor) is target

    def _watch(self, actor: str, target: Any, part: Any) -> None:
        add = getattr(part, "add_reply_listener", None)
        if add is not None:
            def heard(reply: Reply) -> None:
                if self.is_current(actor, target):
                    self.on_reply(actor, reply)

            _subscribe(add, heard, actor)
        add_command = getattr(part, "add_command_reply_listener", None)
        if add_command is not None:
            # Replies to commands others sent through the part (an AMQP client, a local
            # actor): every commander sees them, as with tron.
            def heard_command(reply: Reply, handle: CommandHandle) -> None:
                if self.is_current(actor, target) and not self.is_own(handle):
                    self.on_reply(actor, reply)

            _subscribe(add_command, heard_command, actor)
        add_state = getattr(part, "add_state_listener", None)
        if add_state is not None:
            def changed(state: str) -> None:
                if self.is_current(actor, target):
                    self.on_state(actor, part, state)

            add_state(changed)


def _subscribe(add: Callable[..., Any], listener: Callable[..., Any], actor: str) -> None:
    """``add(listener)``, narrowed to ``actor`` where ``add`` takes a ``sender`` or ``actor``."""
    params = _parameters(add)
    if "sender" in params:
        add(listener, sender=actor)
    elif "actor" in params:
        add(listener, actor=actor)
    else:
        add(listener)


def _parameters(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()

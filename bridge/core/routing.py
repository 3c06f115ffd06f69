"""Where each actor lives, and the one place commands are sent through.

A :class:`RoutingTable` maps actor names to :class:`Route` entries (a legacy actor
over TCP, an actor reached through a Tron hub, an AMQP actor, or an actor hosted in
this process). The :class:`Router` keeps one live *target* per route (an object with
``send_command``) and sends every command through it. Replacing the table
(:meth:`Router.apply`) starts the targets of new routes, keeps unchanged ones, and
stops replaced targets only after their commands in flight have ended (at most
:attr:`Router.drain_limit` seconds: then those still running fail, saying so), so a
reload loses no command and drops no client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from .commands import CommandHandle, ReplyCallback
from .handover import RunningCommands, drain_limit_error
from .replies import Reply

log = logging.getLogger(__name__)

RouteKind = Literal["legacy", "hub", "amqp", "local"]
ROUTE_KINDS: tuple[RouteKind, ...] = ("legacy", "hub", "amqp", "local")


@runtime_checkable
class CommandTarget(Protocol):
    """Anything commands can be sent to: an actor link, a hub connection, AMQP, a local actor."""

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle: ...


@dataclass(frozen=True)
class Route:
    """Where actor ``actor`` lives.

    ``legacy``: a TCP actor at ``host:port`` (``mid_first`` header order); ``hub``:
    through the Tron hub connection; ``amqp``: an AMQP (clu) actor; ``local``: an actor
    hosted in this process. ``prefer_amqp``: send to an AMQP actor of the same name
    whenever one is present, else to this route. ``options`` carries extra settings
    (keyword dictionary path, command header style, ...).
    """

    actor: str
    kind: RouteKind
    host: str | None = None
    port: int | None = None
    mid_first: bool = False
    prefer_amqp: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ROUTE_KINDS:
            raise ValueError(f"route for {self.actor!r}: unknown kind {self.kind!r}")
        if self.kind == "legacy" and (not self.host or not self.port):
            raise ValueError(f"route for {self.actor!r}: a legacy route needs host and port")

    def describe(self) -> str:
        """A short human-readable location, e.g. ``legacy 127.0.0.1:19950``."""
        where = f" {self.host}:{self.port}" if self.kind == "legacy" else ""
        return f"{self.kind}{where}{' (prefer amqp)' if self.prefer_amqp else ''}"


class RoutingTable:
    """Actor name -> :class:`Route`. Actor names are case-sensitive, as tron's are."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: dict[str, Route] = {}
        for route in routes:
            if route.actor in self._routes:
                raise ValueError(f"actor {route.actor!r} has two routes")
            self._routes[route.actor] = route

    def __contains__(self, actor: object) -> bool:
        return actor in self._routes

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def get(self, actor: str) -> Route | None:
        return self._routes.get(actor)

    def actors(self) -> list[str]:
        return list(self._routes)

    def with_route(self, route: Route) -> "RoutingTable":
        """A copy with ``route`` added or replacing the actor's current one."""
        routes = dict(self._routes)
        routes[route.actor] = route
        return RoutingTable(routes.values())

    def without(self, actor: str) -> "RoutingTable":
        return RoutingTable(r for r in self._routes.values() if r.actor != actor)


#: Builds the live target of a route; returns the target and an optional async starter.
TargetFactory = Callable[[Route], Any]


class _Live:
    """A live target and its route."""

    def __init__(self, route: Route, target: Any) -> None:
        self.route = route
        self.target = target


class Router:
    """Send commands to actors by name, through the target of each actor's route.

    ``factories`` maps a route kind to a callable building its target (an object
    with ``send_command``, and optionally async ``start()``/``stop()``,
    ``connected`` and ``in_flight``). Unknown actors get an ``f`` at once, with the
    message ``no_target`` formats (tron's ``NoTarget`` text by default).
    """

    def __init__(self, factories: Mapping[RouteKind, TargetFactory],
                 table: RoutingTable | None = None, *,
                 amqp_presence: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.factories = dict(factories)
        self.table = RoutingTable()
        self._live: dict[str, _Live] = {}
        self._draining: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[str, str, str], Any]] = []
        self._amqp_presence = amqp_presence
        #: How long a reload waits for a replaced route's new target to connect.
        self.switch_timeout = 5.0
        #: How long a replaced target's commands may run on before they are failed
        #: (``[timeouts] drain``).
        self.drain_limit = 30.0
        self._pending_table = table

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Build and start the targets of the initial table."""
        if self._pending_table is not None:
            table, self._pending_table = self._pending_table, None
            await self.apply(table)

    async def stop(self) -> None:
        """Stop every target (their commands in flight fail) and wait for drains."""
        live, self._live = self._live, {}
        for entry in live.values():
            await _maybe_call(entry.target, "stop")
        for task in list(self._draining):
            task.cancel()
        self.table = RoutingTable()

    async def apply(self, table: RoutingTable) -> dict[str, list[str]]:
        """Switch to ``table``; return the actors ``added``, ``changed`` and ``removed``."""
        added, changed, removed = [], [], []
        new_live: dict[str, _Live] = {}
        for route in table:
            current = self._live.get(route.actor)
            if current is not None and current.route == route:
                new_live[route.actor] = current
                continue
            target = self._build(route)
            await _maybe_call(target, "start")
            if current is not None:
                # A replaced route: switch only once the new target can take commands, so
                # that a reload does not fail the commands sent meanwhile.
                await _wait_connected(target, self.switch_timeout)
            new_live[route.actor] = _Live(route, target)
            (changed if current is not None else added).append(route.actor)
        for actor, entry in self._live.items():
            if actor not in table:
                removed.append(actor)
            if new_live.get(actor) is not entry:
                self._drain(entry)
        self._live = new_live
        self.table = table
        for actor in added + changed + removed:
            route = table.get(actor)
            self._emit(actor, route.describe() if route else "removed", "route")
        if added or changed or removed:
            log.info("routing table applied: added=%s changed=%s removed=%s",
                     added, changed, removed)
        return {"added": added, "changed": changed, "removed": removed}

    def add_listener(self, listener: Callable[[str, str, str], Any]) -> None:
        """``listener(actor, description, event)`` on route changes and side switches."""
        self._listeners.append(listener)

    # -- sending ---------------------------------------------------------------------
    def target(self, actor: str) -> Any | None:
        """The live target of ``actor``'s route, or None."""
        entry = self._live.get(actor)
        return entry.target if entry else None

    def targets(self) -> dict[str, Any]:
        return {actor: entry.target for actor, entry in self._live.items()}

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send to ``actor`` by its route; an unknown actor fails at once."""
        entry = self._live.get(actor)
        if entry is None:
            handle = CommandHandle(actor, text, commander=commander, callback=callback)
            handle.fail(no_target(actor))
            return handle
        return entry.target.send_command(actor, text, commander=commander, callback=callback,
                                         time_limit=time_limit)

    def side(self, actor: str) -> str | None:
        """Which side commands to ``actor`` go to now (``amqp`` when a preferred AMQP actor is up)."""
        entry = self._live.get(actor)
        if entry is None:
            return None
        if isinstance(entry.target, PreferAmqpTarget):
            return entry.target.side
        return entry.route.kind

    # -- internals -------------------------------------------------------------------
    def _build(self, route: Route) -> Any:
        factory = self.factories.get(route.kind)
        if factory is None:
            raise ValueError(f"route for {route.actor!r}: kind {route.kind!r} is not "
                             "available in this bridge")
        target = factory(route)
        if route.prefer_amqp and route.kind != "amqp":
            amqp = self.factories.get("amqp")
            if amqp is None or self._amqp_presence is None:
                raise ValueError(f"route for {route.actor!r}: prefer_amqp needs an AMQP "
                                 "connection")
            target = PreferAmqpTarget(route.actor, target, amqp(replace(route, kind="amqp")),
                                      self._amqp_presence,
                                      lambda side: self._emit(route.actor, side, "side"))
        return target

    def _drain(self, entry: _Live) -> None:
        limit = self.drain_limit

        async def drain() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + limit
            while getattr(entry.target, "in_flight", 0) and loop.time() < deadline:
                await asyncio.sleep(0.05)
            running = getattr(entry.target, "in_flight", 0)
            if running:
                log.warning("actor %s: %d command(s) on the replaced route (%s) still running "
                            "after the drain limit (%g s): failing them", entry.route.actor,
                            running, entry.route.describe(), limit)
                await _maybe_call(entry.target, "stop",
                                  drain_limit_error(entry.route.actor, limit))
            else:
                await _maybe_call(entry.target, "stop")

        task = asyncio.ensure_future(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _emit(self, actor: str, description: str, event: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(actor, description, event)
            except Exception:
                log.exception("route listener failed")


#: clu's error text when no actor consumes the command's routing key.
ROUTING_FAILURE_PREFIX = "Failed routing message to consumer"
#: Part of the AMQP commander's error for a command whose actor went away (its commands
#: queue lost its consumer) while the command was in flight.
WENT_AWAY_TEXT = "went away while the command was running"


def never_started(reply: Reply, earlier_replies: int) -> bool:
    """True if ``reply`` fails an AMQP command the actor never started: clu's routing
    failure (nobody consumes the queue), or the actor went away before its first reply
    (clu answers ``>`` as soon as it starts a command; one that died with the actor's
    queue, unread, had no reply at all). Such a command can be sent elsewhere safely."""
    if not reply.is_failure or earlier_replies:
        return False
    error = str(reply.json.get("error", ""))
    return error.startswith(ROUTING_FAILURE_PREFIX) or WENT_AWAY_TEXT in error


class PreferAmqpTarget:
    """Send to the AMQP actor of the same name whenever one is present, else to ``primary``.

    Presence is polled (``presence(actor)``, e.g. whether ``<actor>_commands`` has a
    consumer) every ``interval`` seconds; a command that finds the AMQP actor gone
    (clu's "Failed routing message" failure before any other reply) is sent to the
    primary side instead, so a switch in either direction loses no command; so is a
    command the AMQP actor took with it, unstarted, when it stopped (no reply at all
    before the "went away" failure, see :func:`never_started`). Each switch is logged
    and reported through ``on_switch(side)``.
    """

    def __init__(self, actor: str, primary: Any, amqp: Any,
                 presence: Callable[[str], Awaitable[bool]],
                 on_switch: Callable[[str], Any] | None = None, interval: float = 0.5,
                 primary_side: str = "legacy") -> None:
        self.actor = actor
        self.primary = primary
        self.amqp = amqp
        self.presence = presence
        self.on_switch = on_switch
        self.interval = interval
        self.primary_side = primary_side
        self.side = primary_side
        self._task: asyncio.Task[None] | None = None
        #: Commands sent to the AMQP side (the AMQP target is shared by every actor).
        self._amqp_running = RunningCommands()

    @property
    def in_flight(self) -> int:
        """This actor's commands: on the primary's own link, and those sent to AMQP."""
        return getattr(self.primary, "in_flight", 0) + len(self._amqp_running)

    @property
    def connected(self) -> bool:
        return self.side == "amqp" or getattr(self.primary, "connected", True)

    async def start(self) -> None:
        await _maybe_call(self.primary, "start")
        await _maybe_call(self.amqp, "start")
        await self.poll()
        self._task = asyncio.ensure_future(self._poll_forever())

    async def stop(self, reason: str | None = None) -> None:
        """Stop polling and the primary; with ``reason``, commands still running fail with it."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if reason is not None:
            self._amqp_running.fail_all(reason)
            await _maybe_call(self.primary, "stop", reason)
        else:
            await _maybe_call(self.primary, "stop")

    async def poll(self) -> str:
        """Check presence now; switch sides if needed; return the side."""
        try:
            present = await self.presence(self.actor)
        except Exception as exc:
            log.debug("presence check for %s failed: %r", self.actor, exc)
            present = False
        self._switch("amqp" if present else self.primary_side)
        return self.side

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    def _switch(self, side: str) -> None:
        if side == self.side:
            return
        log.warning("actor %s: commands now go to the %s side (was %s)", self.actor, side,
                    self.side)
        self.side = side
        if self.on_switch is not None:
            self.on_switch(side)

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        if self.side != "amqp":
            return self.primary.send_command(actor, text, commander=commander,
                                             callback=callback, time_limit=time_limit)
        outer = CommandHandle(actor, text, commander=commander, callback=callback)
        outer.set_time_limit(time_limit)

        def relay(reply: Reply) -> None:
            if never_started(reply, len(outer.replies)):
                self._switch(self.primary_side)  # the AMQP actor is gone: fall back
                inner = self.primary.send_command(actor, text, commander=commander,
                                                  callback=outer.add_reply)
                inner.on_behalf_of = outer
                outer.command_id = inner.command_id
                return
            outer.add_reply(reply)

        inner = self.amqp.send_command(actor, text, commander=commander, callback=relay)
        inner.on_behalf_of = outer
        if outer.command_id is None:
            outer.command_id = inner.command_id
        return self._amqp_running.add(outer)


def no_target(actor: str) -> str:
    """Tron's text for a command to an actor nobody knows."""
    return f"the target named {actor} is not connected"


async def _wait_connected(target: Any, timeout: float) -> None:
    """Wait until ``target.connected`` (if it has that attribute) or ``timeout`` seconds."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while not getattr(target, "connected", True) and loop.time() < deadline:
        await asyncio.sleep(0.02)


async def _maybe_call(obj: Any, method: str, *args: Any) -> None:
    fn = getattr(obj, method, None)
    if fn is None:
        return
    result = fn(*args)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


def unchanged(route: Route, **changes: Any) -> Route:
    """A copy of ``route`` with ``changes`` (convenience for reloads and tests)."""
    return replace(route, **changes)


__all__ = ["CommandTarget", "Route", "RouteKind", "RoutingTable", "Router", "no_target",
           "ROUTE_KINDS", "Reply"]

"""The hub's own actors: ``hub`` (status, nub control), ``keys`` (cached keywords) and ``msg``.

Each verb answers one :class:`~bridge.hub.command.HubCommand` with tron's keywords and
always ends it (``:`` or ``f``). ``hub startNubs``/``stopNubs`` are coroutines (they
wait, bounded, for an actor link); everything else answers at once. The verbs see the
server only through :class:`HubState` (no import of the server module). ``perms`` is
answered by :class:`~bridge.hub.perms.PermsVerbs`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from ..core import CachedKeyword, KeywordCache, Router
from ..legacy.actor_link import ActorLink
from ..protocol import Keyword, json_to_keyword, parse_keywords_lenient
from .command import HubCommand
from .lines import message_time, strings, text
from .mirror import target_parts

#: Keyword sources of the hub itself: ``keys getFor`` always knows them (tron: always
#: "connected"), whether or not anything was cached for them yet.
OWN_SOURCES = ("hub", "cmds", "keys", "msg", "perms")

log = logging.getLogger(__name__)


def legacy_link(target: Any) -> ActorLink | None:
    """The :class:`ActorLink` behind a route's target (also inside a prefer-AMQP target)."""
    for part in target_parts(target):
        if isinstance(part, ActorLink):
            return part
    return None


class HubState(Protocol):
    """What the verbs need of the hub server."""

    router: Router
    cache: KeywordCache
    version: str
    nub_timeout: float

    def actor_names(self) -> list[str]: ...

    def commander_keywords(self) -> list[tuple[Keyword, ...]]: ...

    def check_actors(self) -> None: ...

    def cmds_values(self) -> Mapping[str, str]:
        """The last ``CmdIn``/``CmdQueued``/``CmdDone`` values, as written (tron caches
        them under ``cmds``)."""
        ...


class HubVerbs:
    """Answers commands to ``hub``, ``keys`` and ``msg`` for a hub server."""

    def __init__(self, server: HubState) -> None:
        self.server = server
        self.hub_verbs = {
            "actors": self.actors, "commanders": self.commanders, "status": self.status,
            "ping": self.status, "version": self.version, "startNubs": self.start_nubs,
            "stopNubs": self.stop_nubs,
        }

    # -- hub -------------------------------------------------------------------------------
    def hub(self, cmd: HubCommand) -> Any:
        """Run ``hub <verb> ...``; may return a coroutine (nub control)."""
        words = cmd.text.split()
        if not words:
            cmd.finish()
            return None
        handler = self.hub_verbs.get(words[0])
        if handler is None:
            cmd.fail(text("hubTxt", f"No command named {words[0]}"))
            return None
        cmd.queued()
        return handler(cmd, words[1:])

    def actors(self, cmd: HubCommand, _args: list[str], finish: bool = True) -> None:
        cmd.inform(strings("Actors", self.server.actor_names()))
        if finish:
            cmd.finish()

    def commanders(self, cmd: HubCommand, _args: list[str], finish: bool = True) -> None:
        for keywords in self.server.commander_keywords():
            cmd.inform(*keywords)
        if finish:
            cmd.finish()

    def status(self, cmd: HubCommand, args: list[str]) -> None:
        cmd.inform(self._version())
        self.actors(cmd, args, finish=False)
        self.commanders(cmd, args, finish=False)
        for actor in self.server.router.table.actors():
            cmd.inform(*self.route_keywords(actor))
        cmd.finish()

    def route_keywords(self, actor: str) -> tuple[Keyword, ...]:
        """``route=<actor>,<where it lives>,<side commands go to now>`` (not in tron)."""
        router = self.server.router
        route = router.table.get(actor)
        kind = route.kind if route is not None else "none"
        side = router.side(actor) or kind
        return (Keyword("route", (actor, kind, side)),)

    def version(self, cmd: HubCommand, _args: list[str]) -> None:
        cmd.finish(self._version())

    def _version(self) -> Keyword:
        return text("version", self.server.version)

    async def start_nubs(self, cmd: HubCommand, names: list[str]) -> None:
        """(Re)connect the legacy actor link of each named actor; never hangs."""
        if not names:
            cmd.fail(text("text", "must specify one or more nubs to start..."))
            return
        for name in dict.fromkeys(names):
            cmd.inform(text("text", f"(re-)starting nub {name}"))
            problem = await self._start_nub(name)
            if problem is not None:
                cmd.warn(text("text", f"failed to start nub {name}: {problem}"))
        self.server.check_actors()
        cmd.finish()

    async def _start_nub(self, name: str) -> str | None:
        router = self.server.router
        route = router.table.get(name)
        if route is None:
            return f"no route for actor {name}"
        link = legacy_link(router.target(name))
        if route.kind != "legacy" or link is None:
            return f"actor {name} is not a legacy TCP actor (route: {route.describe()})"
        if not link.connected:
            await link.stop()  # drop any backoff: connect now
            await link.start()
        timeout = self.server.nub_timeout
        try:
            await link.start(wait=True, timeout=timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return (f"could not connect to {link.host}:{link.port} within {timeout:g} s "
                    "(still trying)")
        return None

    async def stop_nubs(self, cmd: HubCommand, names: list[str]) -> None:
        """Disconnect the legacy actor link of each named actor until ``startNubs``."""
        if not names:
            cmd.fail(text("text", "must specify one or more nubs to stop..."))
            return
        router = self.server.router
        for name in dict.fromkeys(names):
            cmd.inform(text("text", f"stopping nub {name}"))
            route = router.table.get(name)
            link = legacy_link(router.target(name))
            if route is None or link is None:
                cmd.warn(text("text", f"failed to stop nub {name}: no legacy route for actor "
                                      f"{name}"))
                continue
            await link.stop()
        self.server.check_actors()
        cmd.finish()

    # -- keys ------------------------------------------------------------------------------
    def keys(self, cmd: HubCommand) -> None:
        """``keys getFor=<actor> [k ...]``: the cached values, only to the requester.

        ``w unmatchedKeys=...`` (cached under ``keys``, as tron does), one
        ``keys_<actor> i ...`` line, then ``:``.
        """
        words = cmd.text.split()
        if not words:
            cmd.finish()
            return
        verb, _, actor = words[0].partition("=")
        if verb != "getFor":
            cmd.fail(text("keysTxt", f"No command named {verb}"))
            return
        cmd.queued()
        cache = self.server.cache
        if not actor:
            cmd.fail(text("keysTxt", "no actor specified"))
            return
        if not self._known(actor, cache):
            cmd.fail(text("keysTxt", f"actor {actor} is not connected"))
            return
        names = list(dict.fromkeys(words[1:]))
        if actor == "cmds":
            found, unmatched = self._cmds_keywords(names)
        else:
            found, unmatched = self._cached_keywords(actor, names)
        if unmatched:
            cmd.warn(strings("unmatchedKeys", unmatched), private=True)
        if found:
            cmd.reply("i", found, source=f"keys_{actor}", private=True, cache=False)
        cmd.reply(":", (), private=True)

    def _cached_keywords(self, actor: str, names: list[str]) -> tuple[list[Keyword], list[str]]:
        """The cached keywords, as the actor wrote them where the cache kept that (tron
        returns the text it read), else written from their JSON values."""
        cache = self.server.cache
        entries: list[CachedKeyword] = []
        unmatched: list[str] = []
        if names:
            for name in names:
                entry = cache.entry(actor, name)
                if entry is None:
                    unmatched.append(name)
                else:
                    entries.append(entry)
        else:
            entries = cache.entries(actor)
        keywords = [e.raw if e.raw is not None else json_to_keyword(e.name, e.value)
                    for e in entries]
        return keywords, unmatched

    def _cmds_keywords(self, names: list[str]) -> tuple[list[Keyword], list[str]]:
        """The ``cmds`` diagnostics as written last (tron's cache of source ``cmds``)."""
        written = self.server.cmds_values()
        by_lower = {name.lower(): name for name in written}
        chosen: list[str] = []
        unmatched: list[str] = []
        for name in names or written:
            stored = by_lower.get(name.lower())
            if stored is None:
                unmatched.append(name)
            else:
                chosen.append(stored)
        keywords = list(parse_keywords_lenient("; ".join(f"{n}={written[n]}" for n in chosen)))
        return keywords, unmatched

    def _known(self, actor: str, cache: KeywordCache) -> bool:
        return (actor in OWN_SOURCES or actor in cache
                or self.server.router.target(actor) is not None)

    # -- msg -------------------------------------------------------------------------------
    def msg(self, cmd: HubCommand) -> None:
        """``msg <text>``: ``: msg="<UTC time>","<text>"`` to everybody."""
        cmd.finish(strings("msg", (message_time(cmd.started), cmd.text)))

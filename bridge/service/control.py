"""The bridge as an actor: ``status``, ``reload``, ``ping``, ``version``, ``help`` as keywords.

It is an AMQP actor named after the bridge (``[name]`` in the config), so AMQP clients,
``bridge status`` and, through the routing table, hub-port clients all reach it.

Keywords: ``bridge=<name>,<version>``, ``amqp=connected|down``, ``amqpNode=<host:port>``
(the broker node in use), ``actorProblem=<name>,<text>`` (an actor not served on AMQP
now, e.g. its queue name held elsewhere; retried),
``tron=<host>,<port>,<state>``, ``hubPort=<port>``, and one
``actorStatus=<name>,<lives>,<side>,<state>,<in flight>,<commands>,<replies>`` per
actor; one ``handover=<actor>,<amqp|legacy>,<state>,<in flight>`` per old face a reload
handed over whose commands are still finishing; after a reload (also one from SIGHUP)
``reloaded=<added>,<changed>,<removed>`` (counts) is broadcast, and
``routeChange=<actor>,<where>`` whenever a route or side changes.

With the monitoring facts (:mod:`bridge.service.monitoring`), ``status`` also gives
the numbers ``/metrics`` and ``/healthz`` give, so Tron-side tools see them:
``health=<ok|degraded|down>,"<why>"``, ``amqpLink=<connected|down>,<node>,<reconnects>,
<publishes held for a lost broker>``, ``tronLink=<state>,<reconnects>``,
``hubClients=<n>``, ``unsent=<bytes unread by slow clients>,<slow clients>``, one
``actorLink=<actor>,<state>,<reconnects>`` per legacy actor link and, per actor and
side its commands came from (``amqp``, ``legacy``, ``hub``),
``actorCommands=<actor>,<side>,<received>,<done>,<failed>,<timed out>,<refused>,
<in flight>,<replies relayed>,<seconds since the last reply, -1: none yet>`` and
``actorRtt=<actor>,<side>,<commands timed>,<sum of their round trips, s>``.

Every ``heartbeat`` seconds the actor broadcasts ``alive_at=<unix time>`` (the heartbeat
keyword of clu's convention; see protocol_specs/service.md): on AMQP
(``reply.broadcast``) and, through the hub port's mirror of the bridge's own actor, to
every legacy client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .. import __version__
from ..amqp.connection import DEFAULT_PUBLISH_TIMEOUT, AmqpConnection
from ..amqp.endpoint import DEFAULT_RECONNECT_WAIT, ActorEndpoint, IncomingCommand

log = logging.getLogger(__name__)

HELP = {
    "status": "status: what the bridge serves, one actorStatus keyword per actor",
    "reload": "reload: re-read the configuration file and apply it",
    "ping": "ping: answers Pong.",
    "version": "version: the bridge's version",
    "help": "help: this list",
}


def status_replies(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The bodies of the ``i`` replies describing ``Bridge.status()``."""
    head: dict[str, Any] = {"bridge": [status["name"], __version__],
                            "amqp": "connected" if status["amqp"]["connected"] else "down"}
    if status["amqp"].get("node"):
        head["amqpNode"] = status["amqp"]["node"]
    if status.get("tron"):
        t = status["tron"]
        head["tron"] = [t["host"], t["port"], t["state"]]
    if status.get("hub_port"):
        head["hubPort"] = status["hub_port"]
    bodies = [head]
    facts = status.get("facts")
    if facts is not None:
        bodies += facts_replies(facts)
    for a in status["actors"]:
        c = a.get("counters", {})
        bodies.append({"actorStatus": [a["name"], a["lives"], a["side"] or a["lives"],
                                       a["state"] or "unknown", a["in_flight"],
                                       c.get("commands", 0), c.get("replies", 0)]})
        if a.get("amqp_problem"):
            bodies.append({"actorProblem": [a["name"], a["amqp_problem"]]})
    for h in status.get("handovers", ()):  # old faces a reload handed over, still draining
        bodies.append({"handover": [h["actor"], h["face"], h["state"], h["in_flight"]]})
    return bodies


def facts_replies(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The monitoring keywords of ``status`` (see the module docstring)."""
    from .health import assess

    health = assess(facts)
    amqp = facts["amqp"]
    head: dict[str, Any] = {
        "health": [health.status, health.reason],
        "amqpLink": ["connected" if amqp["connected"] else "down", amqp["node"] or "",
                     amqp["reconnects"], amqp["held_publishes"]],
        "unsent": [facts["unsent_bytes"], facts["slow_clients"]],
    }
    if facts.get("tron") is not None:
        head["tronLink"] = [facts["tron"]["state"], facts["tron"]["reconnects"]]
    if facts.get("hub") is not None:
        head["hubClients"] = facts["hub"]["clients"]
    bodies = [head]
    for actor in facts["actors"]:
        if actor["link"] is not None:
            bodies.append({"actorLink": [actor["name"], actor["link"], actor["reconnects"]]})
        for side, c in sorted(actor["commands"].items()):
            since = c["since_reply"]
            bodies.append({"actorCommands": [
                actor["name"], side, c["received"], c["done"], c["failed"], c["timeout"],
                c["refused"], c["in_flight"], c["replies"], -1 if since is None else since]})
            bodies.append({"actorRtt": [actor["name"], side, c["timed"], round(c["rtt_sum"], 6)]})
    return bodies


class ControlActor:
    """Answers commands addressed to the bridge itself."""

    def __init__(self, connection: AmqpConnection, name: str,
                 status: Callable[[], dict[str, Any]],
                 reload: Callable[[], Awaitable[dict[str, list[str]]]] | None = None, *,
                 publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
                 reply_hold: float = DEFAULT_RECONNECT_WAIT,
                 facts: Callable[[], dict[str, Any]] | None = None,
                 heartbeat: float = 0.0) -> None:
        self.name = name
        self.status = status
        self.reload = reload
        self.facts = facts
        self.heartbeat = heartbeat
        self.connection = connection
        self._heartbeat: asyncio.Task[None] | None = None
        self.endpoint = ActorEndpoint(connection, name, self._on_command,
                                      publish_timeout=publish_timeout, reconnect_wait=reply_hold)

    async def start(self) -> None:
        await self.endpoint.start()
        if self.heartbeat > 0:
            self._heartbeat = asyncio.ensure_future(self._beat())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        await self.endpoint.stop(f"The bridge {self.name} is stopping.")

    async def _beat(self) -> None:
        """``alive_at=<unix time>`` every :attr:`heartbeat` seconds while the broker is up
        (a heartbeat held through an outage would say nothing true when it arrives)."""
        while True:
            await asyncio.sleep(self.heartbeat)
            if self.connection.connected:
                await self.announce({"alive_at": round(time.time(), 3)})

    async def announce(self, body: dict[str, Any]) -> None:
        """Broadcast keywords (e.g. a route change) to every client."""
        try:
            await self.endpoint.broadcast("i", body)
        except Exception as exc:
            log.warning("could not broadcast %s: %r", body, exc)

    async def _on_command(self, command: IncomingCommand) -> None:
        verb, *args = command.command_string.split()
        await command.reply(">", {})
        if verb == "ping":
            await command.finish({"text": "Pong."})
        elif verb == "version":
            await command.finish({"version": __version__})
        elif verb == "help":
            for line in HELP.values():
                await command.reply("i", {"help": line})
            await command.finish()
        elif verb == "status":
            status = self.status()
            if self.facts is not None:
                status = {**status, "facts": self.facts()}
            for body in status_replies(status):
                await command.reply("i", body)
            await command.finish()
        elif verb == "reload":
            if self.reload is None:
                await command.fail("This bridge was not started from a configuration file.")
                return
            try:
                diff = await self.reload()
            except Exception as exc:
                await command.fail(f"Reload failed, configuration unchanged: {exc}")
                return
            await command.finish({"reloaded": [len(diff["added"]), len(diff["changed"]),
                                               len(diff["removed"])],
                                  "text": _describe(diff)})
        else:
            await command.fail(f"Unknown command {verb!r}; try help.")


def _describe(diff: dict[str, list[str]]) -> str:
    parts = [f"{k}: {', '.join(v)}" for k, v in diff.items() if v]
    return "; ".join(parts) or "no change"

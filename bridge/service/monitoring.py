"""What a site's monitoring sees of one bridge: facts, health, metrics, traffic logs, HTTP.

:class:`Monitoring` belongs to a :class:`~bridge.service.bridge.Bridge`. It gathers the
facts (:meth:`Monitoring.facts`: connections, links, clients, command counters) that
``/healthz``, ``/metrics``, ``bridge check`` and the control actor's ``status`` all
report, counts the AMQP and Tron reconnects, wires the per-actor traffic logs into the
actor links and counters, and runs the optional HTTP endpoint.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from yarl import URL

from .. import __version__
from ..core import PreferAmqpTarget
from .exposition import Exposition
from .health import Health, assess
from .http import HttpEndpoint
from .metrics import OUTCOMES, BridgeMetrics, reply_text
from .traffic import TrafficLogs

if TYPE_CHECKING:
    from ..amqp.connection import AmqpConnection
    from ..core.routing import Router
    from ..relay.amqp_target import AmqpTarget
    from .config import BridgeConfig

log = logging.getLogger(__name__)


def amqp_node(connection: Any) -> str | None:
    """Where the AMQP connection goes: the connection's ``node`` if it tells, else host:port."""
    if connection is None:
        return None
    node = getattr(connection, "node", None)
    if node:
        return str(node)
    url = URL(connection.url)
    return f"{url.host}:{url.port or 5672}"


class MonitoredBridge(Protocol):
    """What :class:`Monitoring` reads of the bridge it belongs to (the
    :class:`~bridge.service.bridge.Bridge`; a protocol, so that this module does not
    import the one that builds it)."""

    config: "BridgeConfig"
    connection: "AmqpConnection | None"
    amqp_target: "AmqpTarget | None"
    tron: Any
    router: "Router | None"
    hub_server: Any
    actors: dict[str, Any]


def actor_link(target: Any) -> Any:
    """The :class:`~bridge.legacy.actor_link.ActorLink` behind a route's target, or None."""
    if isinstance(target, PreferAmqpTarget):
        target = target.primary
    return target if hasattr(target, "connects") else None


class Monitoring:
    """See the module docstring. ``clock`` drives the traffic logs' rotation (tests)."""

    def __init__(self, bridge: MonitoredBridge, *, clock: Any = time.time) -> None:
        cfg = bridge.config
        self.bridge = bridge
        self.metrics = BridgeMetrics(command_log=cfg.logs.commands) if cfg.metrics else None
        self.traffic = (TrafficLogs(cfg.name, cfg.logs.traffic, cfg.logs.rotation(), clock=clock)
                        if cfg.logs.traffic is not None else None)
        self.exposition = Exposition(self.facts, self.metrics)
        self.http: HttpEndpoint | None = None
        self.amqp_reconnects = 0
        self.tron_reconnects = 0
        self._tron_connects = 0
        self._broadcasts_logged: set[str] = set()
        #: Actors whose command crossings go to their traffic log (while counting is on).
        self._traffic_actors: set[str] = set()
        self.started_at = time.time()

    def configure(self, config: "BridgeConfig") -> list[str]:
        """Apply ``[metrics] enabled`` and ``[logs] commands`` of a reloaded configuration
        in place; what changed (e.g. ``["metrics on"]``; empty: nothing).

        Counting turned off drops the counters (``/metrics`` and ``status`` then show no
        command figures); turned on, it starts again from zero (Prometheus takes that as a
        counter reset). Commands already in flight end on the counters they began with.
        The parts that count hold :attr:`metrics` themselves: the bridge hands them the
        new value (:meth:`~bridge.service.bridge.Bridge.reload`).
        """
        changed = []
        if not config.metrics:
            if self.metrics is not None:
                self.metrics = None
                changed.append("metrics off")
        elif self.metrics is None:
            self.metrics = BridgeMetrics(command_log=config.logs.commands)
            if self.traffic is not None:
                for actor in sorted(self._traffic_actors):
                    self.metrics.set_traffic(actor, self.traffic.sink(actor))
            changed.append("metrics on")
        elif self.metrics.command_log != config.logs.commands:
            self.metrics.command_log = config.logs.commands
            changed.append(f"command log {'on' if config.logs.commands else 'off'}")
        self.exposition.metrics = self.metrics
        return changed

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Count reconnects; serve HTTP if configured (after the bridge's parts started)."""
        bridge = self.bridge
        if bridge.connection is not None:
            bridge.connection.on_reconnect(self._amqp_reconnected)
        if bridge.tron is not None:
            if bridge.tron.state == "connected":
                self._tron_connects = 1
            bridge.tron.add_state_callback(self._tron_state)
        http = bridge.config.http
        if http is not None:
            self.http = HttpEndpoint(self.health_body, self.exposition.render,
                                     host=http.host, port=http.port)
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.bridge.connection is not None:
            self.bridge.connection.remove_listener(self._amqp_reconnected)
        if self.traffic is not None:
            self.traffic.close()

    def _amqp_reconnected(self) -> None:
        self.amqp_reconnects += 1

    def _tron_state(self, state: str) -> None:
        if state == "connected":
            self._tron_connects += 1
            self.tron_reconnects = max(self._tron_connects - 1, 0)

    # -- wiring (called by the Bridge as it builds parts) ----------------------------------
    def watch_link(self, actor: str, link: Any) -> None:
        """A new link to legacy actor ``actor``: its lines go to the actor's traffic log."""
        if self.traffic is not None:
            link.traffic = self.traffic.link_sink(actor)
            self._traffic_actors.add(actor)
            if self.metrics is not None:
                self.metrics.set_traffic(actor, self.traffic.sink(actor))

    def watch_actor(self, actor: str, lives: str) -> None:
        """An actor is served: its command crossings go to its traffic log, and so do the
        broadcasts of an AMQP actor (``amqp* <code> <keywords>``), once per actor."""
        if self.traffic is None:
            return
        sink = self.traffic.sink(actor)
        self._traffic_actors.add(actor)
        if self.metrics is not None:
            self.metrics.set_traffic(actor, sink)
        target = self.bridge.amqp_target
        if lives == "amqp" and target is not None and actor not in self._broadcasts_logged:
            self._broadcasts_logged.add(actor)
            target.add_reply_listener(
                lambda reply: sink(f"amqp* {reply.code} {reply_text(reply)}"), sender=actor)

    # -- facts -----------------------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        """Everything the health verdict, the metrics and ``status`` report (JSON-able)."""
        bridge = self.bridge
        conn = bridge.connection
        facts: dict[str, Any] = {
            "name": bridge.config.name, "version": __version__, "time": time.time(),
            "uptime": time.time() - self.started_at,
            "amqp": {"connected": bool(conn is not None and conn.connected),
                     "node": amqp_node(conn), "reconnects": self.amqp_reconnects,
                     "held_publishes": getattr(conn, "held_publishes", 0),
                     "queue_problems": dict(getattr(conn, "queue_problems", {}))},
            "tron": None, "hub": None,
        }
        if bridge.tron is not None:
            facts["tron"] = {"host": bridge.tron.host, "port": bridge.tron.port,
                             "state": bridge.tron.state, "reconnects": self.tron_reconnects}
        clients: list[Any] = []
        if bridge.hub_server is not None:
            hub_clients = bridge.hub_server.connections
            clients += hub_clients
            facts["hub"] = {"port": bridge.hub_server.port, "clients": len(hub_clients)}
        actors = []
        for name, rt in sorted(bridge.actors.items()):
            target = bridge.router.target(name) if bridge.router else None
            link = actor_link(target)
            if rt.legacy_face is not None:
                clients += rt.legacy_face.server.connections
            actors.append({
                "name": name, "lives": rt.config.lives,
                "side": bridge.router.side(name) if bridge.router else None,
                "link": None if link is None else link.state,
                "reconnects": 0 if link is None else max(link.connects - 1, 0),
                "in_flight": getattr(target, "in_flight", 0),
                "commands": self._commands_of(name),
            })
        facts["actors"] = actors
        unsent = [c.unsent for c in clients]
        facts["unsent_bytes"] = sum(unsent)
        facts["slow_clients"] = sum(1 for u in unsent if u)
        return facts

    def _commands_of(self, actor: str) -> dict[str, Any]:
        if self.metrics is None:
            return {}
        out = {}
        now = time.perf_counter()
        for (name, side), s in self.metrics.stats.items():
            if name == actor:
                since = s.seconds_since_reply(now)
                out[side] = {"received": s.received, **s.ended, "in_flight": s.in_flight,
                             "replies": s.replies,
                             "since_reply": None if since is None else round(since, 3),
                             "timed": sum(s.rtt_counts), "rtt_sum": s.rtt_sum}
        return out

    def health(self, facts: dict[str, Any] | None = None) -> Health:
        return assess(self.facts() if facts is None else facts)

    def health_body(self) -> dict[str, Any]:
        """``/healthz``: the verdict and its facts."""
        facts = self.facts()
        return {**self.health(facts).as_dict(), "name": facts["name"], "facts": facts}


__all__ = ["Monitoring", "OUTCOMES", "amqp_node", "actor_link"]

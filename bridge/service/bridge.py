"""The bridge process: every part wired together from a :class:`~.config.BridgeConfig`.

For each ``[actors.<name>]`` entry:

* ``lives = "legacy"``: an :class:`~bridge.legacy.actor_link.ActorLink` to the actor's
  TCP port is its route; with ``amqp = true`` an :class:`~bridge.relay.amqp_face.AmqpFace`
  serves it to AMQP clients.
* ``lives = "hub"``: reached through the Tron hub connection; AMQP face likewise.
* ``lives = "amqp"``: a clu actor; with ``legacy_port`` a
  :class:`~bridge.relay.legacy_face.LegacyFace` serves it to legacy clients (and, with
  ``register``, asks the Tron hub to connect to that face).
* ``lives = "local"``: an actor written with this package, started in this process on
  its port, then served like a legacy actor.

All commands of the built-in hub port go through one :class:`~bridge.core.Router`.
:meth:`Bridge.reload` applies a new configuration without dropping clients and without
waiting for any command: unchanged actors are untouched; the faces of changed or
removed actors are handed over (:mod:`bridge.core.handover`): they take no new command
at once (an AMQP face cancels its consumer and releases its queue, losing nothing that
was queued; a legacy face whose port stays in the configuration is kept and follows the
new route; an AMQP face whose route and dictionary do not change is kept, so its clients
never meet a moment without a consumer), the commands they had accepted finish on their old path in the background,
and only those still running after ``[timeouts] drain`` seconds are failed, saying so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..amqp.commander import AmqpCommander
from ..amqp.connection import AmqpConnection
from ..amqp.endpoint import ActorNameInUse
from ..core import KeywordCache, Route, Router, RoutingTable
from ..core.handover import HandoverEvent, drain_limit_error
from ..legacy.actor_link import ActorLink
from ..relay.amqp_face import AmqpFace
from ..relay.amqp_target import AmqpTarget
from ..relay.hub_target import HubTarget
from ..relay.legacy_face import LegacyFace
from .config import ActorConfig, BridgeConfig, load_config
from .control import ControlActor
from .monitoring import Monitoring
from ..amqp.presence import amqp_actor_present

log = logging.getLogger(__name__)

#: The Tron hub's own pseudo-actors: never bridged by discovery.
HUB_PSEUDO_ACTORS = frozenset({"hub", "keys", "perms", "msg", "cmds", "auth"})


def load_dictionary(path: Any) -> Any:
    """A keyword dictionary from its file, or None (dictionaries are optional)."""
    if path is None:
        return None
    from ..protocol.dictionary import KeywordDictionary

    return KeywordDictionary.load(path)


@dataclass
class ActorRuntime:
    """The live parts of one configured (or discovered) actor."""

    config: ActorConfig
    dictionary: Any = None
    local: Any = None
    amqp_face: AmqpFace | None = None
    legacy_face: LegacyFace | None = None
    discovered: bool = False
    notes: list[str] = field(default_factory=list)
    #: Serving on AMQP is retried in the background (the name is held elsewhere).
    amqp_retry: asyncio.Task[None] | None = None
    amqp_problem: str | None = None


class Bridge:
    """One bridge process (see the module docstring). ``async with Bridge(cfg, url):``."""

    def __init__(self, config: BridgeConfig, amqp_url: str | list[str] | None = None) -> None:
        self.config = config
        urls = [amqp_url] if isinstance(amqp_url, str) else list(amqp_url or [])
        self.amqp_urls = urls or list(config.amqp_urls)
        if not self.amqp_urls:
            raise ValueError("no AMQP URL: configure [amqp] url or start a private broker")
        self.amqp_url = self.amqp_urls[0]
        self.connection: AmqpConnection | None = None
        self.commander: AmqpCommander | None = None
        self.amqp_target: AmqpTarget | None = None
        self.tron: Any = None
        self.hub_target: HubTarget | None = None
        self.cache = KeywordCache()
        self.router: Router | None = None
        self.hub_server: Any = None
        self.actors: dict[str, ActorRuntime] = {}
        self.control: ControlActor | None = None
        self._lock = asyncio.Lock()
        #: Faces handed over by a reload whose accepted commands are still finishing.
        self._retiring: dict[asyncio.Task[None], AmqpFace | LegacyFace] = {}
        #: Facts, health, metrics, traffic logs and the HTTP endpoint of this bridge.
        self.monitoring = Monitoring(self)

    async def __aenter__(self) -> "Bridge":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to the broker (and hub), start every actor's parts and the hub port."""
        cfg = self.config
        self.connection = AmqpConnection(self.amqp_urls, reconnect=cfg.reconnect,
                                         connect_timeout=cfg.connect_timeout,
                                         fail_fast=cfg.fail_fast,
                                         connection_name=f"bridge {cfg.name}")
        # Each attempt is bounded by connect_timeout; without fail_fast, start waits
        # (logging) until some node answers.
        await self.connection.start()
        # Narrow bindings: not its own replies echoed, not unrelated traffic.
        self.commander = AmqpCommander(self.connection, cfg.name, hear_all=False,
                                       publish_timeout=cfg.publish_timeout)
        await self.commander.start()
        self.amqp_target = AmqpTarget(self.commander)
        if cfg.tron is not None:
            from ..legacy.tron import TronConnection

            self.tron = TronConnection(cfg.tron[0], cfg.tron[1], commander=f"{cfg.name}.bridge",
                                       cache=self.cache)
            await self.tron.start(wait=False)
            self.hub_target = HubTarget(self.tron)
        self.router = Router({"legacy": self._legacy_target, "hub": self._hub_target,
                              "amqp": lambda route: self.amqp_target},
                             amqp_presence=self._amqp_present)
        self.router.drain_limit = cfg.drain_timeout
        await self._apply(cfg, first=True)
        self.control = ControlActor(self.connection, cfg.name, self.status,
                                    self.reload_from_file if cfg.source else None,
                                    publish_timeout=cfg.publish_timeout,
                                    reply_hold=cfg.reply_hold, facts=self.monitoring.facts,
                                    heartbeat=cfg.heartbeat)
        await self.control.start()
        self.router.add_listener(self._on_route_event)
        if cfg.hub is not None:
            await self._start_hub_port()
        if cfg.discover and self.tron is not None:
            self.cache.subscribe(self._on_hub_keywords, actor="hub")
        await self.monitoring.start()
        log.info("bridge %s started: %d actor(s)", cfg.name, len(self.actors))

    async def stop(self) -> None:
        """Stop everything; commands still in flight get ``f`` with a clear error."""
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.hub_server is not None:
            await self.hub_server.stop()
            self.hub_server = None
        for task in list(self._retiring):  # faces still draining: fail what runs, now
            task.cancel()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for name in list(self.actors):
            await self._stop_actor(self.actors.pop(name))
        if self.router is not None:
            await self.router.stop()
        if self.tron is not None:
            await self.tron.stop()
        if self.commander is not None:
            await self.commander.stop()
        if self.connection is not None:
            await self.connection.stop()
        await self.monitoring.stop()
        log.info("bridge %s stopped", self.config.name)

    async def reload_from_file(self) -> dict[str, list[str]]:
        """Re-read the configuration file this bridge was started from and apply it."""
        if self.config.source is None:
            raise ValueError("this bridge was not started from a configuration file")
        new = load_config(self.config.source)
        return await self.reload(new)

    async def reload(self, config: BridgeConfig) -> dict[str, list[str]]:
        """Apply a new configuration without dropping clients or commands in flight.

        The bridge's name, broker, hub connection, hub port, HTTP endpoint and log files
        are fixed at start; a reload that changes them is refused (ValueError) and changes
        nothing. ``[metrics] enabled`` and ``[logs] commands`` take effect at once (the
        result's ``settings``, present only then, says which changed).
        """
        fixed = ("name", "tron_host", "tron_port", "hub", "http")
        changed_fixed = [k for k in fixed if getattr(config, k) != getattr(self.config, k)]
        old_logs = self.config.logs
        changed_fixed += [f"logs.{f.name}" for f in dataclasses.fields(old_logs)
                          if f.name != "commands"
                          and getattr(config.logs, f.name) != getattr(old_logs, f.name)]
        if changed_fixed:
            raise ValueError(f"cannot change {', '.join(changed_fixed)} without a restart")
        async with self._lock:
            if self.router is not None:  # replaced routes drain with the new limit
                self.router.drain_limit = config.drain_timeout
            diff = await self._apply(config)
            self.config = config
            self._apply_timeouts()
            settings = self.monitoring.configure(config)
            self._apply_metrics()
            if settings:
                diff["settings"] = settings
                log.info("reload: %s", ", ".join(settings))
        if self.control is not None:  # what took effect, and when: for operators and tools
            asyncio.ensure_future(self.control.announce({"reloaded": [
                len(diff["added"]), len(diff["changed"]), len(diff["removed"])]}))
        return diff

    def _apply_timeouts(self) -> None:
        """Give every running part the ``[timeouts]`` of the current configuration.

        Faces and the commander read these values for each command or publish, so a
        reload changes them in place (no face restarts, no client dropped); ``connect``
        is used at start only. An actor's own ``time_limit`` wins over ``command``. Faces
        that the reload itself started were built while ``self.config`` was still the
        old one: this gives them the new values too.
        """
        cfg = self.config
        if self.commander is not None:
            self.commander.publish_timeout = cfg.publish_timeout
        endpoints = [self.control.endpoint] if self.control is not None else []
        for rt in self.actors.values():
            limit = self._time_limit(rt.config)
            if rt.amqp_face is not None:
                rt.amqp_face.time_limit = limit
                endpoints.append(rt.amqp_face.endpoint)
            if rt.legacy_face is not None:
                rt.legacy_face.time_limit = limit
        for endpoint in endpoints:
            endpoint.publish_timeout = cfg.publish_timeout
            endpoint.reconnect_wait = cfg.reply_hold
        if self.hub_server is not None:
            self.hub_server.time_limit = cfg.command_time_limit

    def _apply_metrics(self) -> None:
        """Give every part that counts commands the current counters (None: off)."""
        metrics = self.monitoring.metrics
        for rt in self.actors.values():
            for face in (rt.amqp_face, rt.legacy_face):
                if face is not None:
                    face.metrics = metrics
        if self.hub_server is not None:
            self.hub_server.metrics = metrics

    def _time_limit(self, actor: ActorConfig) -> float | None:
        """An actor's command time limit: its own ``time_limit``, else ``[timeouts] command``."""
        return actor.time_limit or self.config.command_time_limit

    # -- building actors ---------------------------------------------------------------
    async def _apply(self, config: BridgeConfig, first: bool = False) -> dict[str, list[str]]:
        assert self.router is not None
        wanted = {a.name: a for a in config.actors}
        removed = [n for n, rt in self.actors.items() if n not in wanted and not rt.discovered]
        changed = [n for n, a in wanted.items() if n in self.actors
                   and self.actors[n].config != a]
        added = [n for n in wanted if n not in self.actors]
        # Faces of removed or changed actors stop intake and release their names first
        # (fast: nothing waits for commands); what they accepted finishes in the background.
        kept: dict[str, LegacyFace] = {}
        kept_amqp: dict[str, AmqpFace] = {}
        for name in removed + changed:
            rt = self.actors.pop(name)
            new_cfg = wanted.get(name)
            if (rt.legacy_face is not None and new_cfg is not None
                    and _same_legacy_face(rt.config, new_cfg)):
                kept[name], rt.legacy_face = rt.legacy_face, None  # follows the new route
            if (rt.amqp_face is not None and new_cfg is not None
                    and _same_amqp_face(rt.config, new_cfg)):
                # Same route, so the same target: keep serving, no window without a consumer.
                kept_amqp[name], rt.amqp_face = rt.amqp_face, None
            await self._retire_actor(rt, config.drain_timeout)
        for name in added + changed:
            await self._start_local(name, wanted[name])
            if name in kept:
                self.actors[name].legacy_face = kept[name]
            if name in kept_amqp:
                self.actors[name].amqp_face = kept_amqp[name]
        table = RoutingTable(a.route() for a in config.actors)
        if config.name not in table:  # the bridge's own control actor, for hub-port clients
            table = table.with_route(Route(config.name, "amqp"))
        for rt in self.actors.values():  # discovered actors keep their routes
            if rt.discovered and rt.config.name not in wanted:
                table = table.with_route(rt.config.route())
        await self.router.apply(table)
        for name in added + changed:
            await self._start_faces(self.actors[name])
        if not first:
            log.info("reload: added=%s changed=%s removed=%s", added, changed, removed)
        return {"added": added, "changed": changed, "removed": removed}

    async def _start_local(self, name: str, cfg: ActorConfig) -> None:
        rt = ActorRuntime(cfg, load_dictionary(cfg.dictionary))
        self.actors[name] = rt
        if cfg.lives == "local":
            rt.local = _build_local(cfg, self.config.source.parent if self.config.source else None)
            if getattr(rt.local, "commander", False) is None and self.router is not None \
                    and self.amqp_target is not None:
                rt.local.commander = BridgeCommander(self.router, self.amqp_target)
            await rt.local.start()

    async def _start_faces(self, rt: ActorRuntime) -> None:
        cfg = rt.config
        assert self.router is not None and self.connection is not None
        self.monitoring.watch_actor(cfg.name, cfg.lives)
        if cfg.lives != "amqp" and cfg.amqp and rt.amqp_face is None:
            schema = rt.dictionary.json_schema() if rt.dictionary is not None else None
            face = AmqpFace(self.connection, cfg.name, self.router.target(cfg.name),
                            schema=schema, time_limit=self._time_limit(cfg),
                            publish_timeout=self.config.publish_timeout,
                            reply_hold=self.config.reply_hold, ha=cfg.ha)
            face.metrics = self.monitoring.metrics
            try:
                await face.start()
                rt.amqp_face = face
            except ActorNameInUse as exc:
                rt.amqp_problem = str(exc)
                log.error("actor %s: not served on AMQP for now (retrying): %s", cfg.name, exc)
                rt.amqp_retry = asyncio.ensure_future(self._serve_later(rt, face))
        if cfg.legacy_port is not None and rt.legacy_face is None:
            assert self.amqp_target is not None
            face = LegacyFace(cfg.name, self.amqp_target, port=cfg.legacy_port,
                              mid_first=cfg.mid_first, eol=cfg.eol,
                              tron=self.tron if cfg.register else None,
                              time_limit=self._time_limit(cfg), commands=self.router)
            face.metrics = self.monitoring.metrics
            await face.start()
            rt.legacy_face = face

    async def _serve_later(self, rt: ActorRuntime, face: AmqpFace) -> None:
        """Start ``face`` once its AMQP name is free (another bridge or actor held it at
        start), retrying with the connection's backoff; the rest of the bridge serves."""
        assert self.connection is not None
        failures = 1
        while True:
            await asyncio.sleep(self.connection.reconnect.delay(failures))
            if not self.connection.connected:
                continue
            try:
                await face.start()
            except ActorNameInUse as exc:
                failures += 1
                rt.amqp_problem = str(exc)
                continue
            except Exception as exc:  # broker trouble: try again later
                failures += 1
                log.debug("actor %s: serving on AMQP failed again: %r", rt.config.name, exc)
                continue
            rt.amqp_face, rt.amqp_problem, rt.amqp_retry = face, None, None
            log.info("actor %s: now served on AMQP (its name was freed)", rt.config.name)
            return

    def _cancel_retry(self, rt: ActorRuntime) -> None:
        if rt.amqp_retry is not None:
            rt.amqp_retry.cancel()
            rt.amqp_retry = None

    async def _stop_actor(self, rt: ActorRuntime) -> None:
        """Stop an actor's parts now (the bridge stops): what still runs gets ``f``."""
        self._cancel_retry(rt)
        if rt.amqp_face is not None:
            await rt.amqp_face.stop()
        if rt.legacy_face is not None:
            await rt.legacy_face.stop()
        if rt.local is not None:
            await rt.local.stop()

    async def _retire_actor(self, rt: ActorRuntime, drain_timeout: float) -> None:
        """Hand an actor's faces over: intake stops now (its AMQP name is free when this
        returns), accepted commands finish in the background within ``drain_timeout``."""
        self._cancel_retry(rt)
        faces = [f for f in (rt.amqp_face, rt.legacy_face) if f is not None]
        for face in faces:
            await face.release()
        for face in faces:
            task = asyncio.ensure_future(self._drain_face(face, drain_timeout))
            self._retiring[task] = face
            task.add_done_callback(lambda t: self._retiring.pop(t, None))
        if rt.local is not None:
            await rt.local.stop()

    async def _drain_face(self, face: AmqpFace | LegacyFace, drain_timeout: float) -> None:
        """Wait for a released face's commands to end, then close it; fail the ones still
        running after ``drain_timeout`` s with an error that says so."""
        try:
            idle = await _drain(lambda: face.in_flight, drain_timeout)
        except asyncio.CancelledError:  # the bridge stops meanwhile
            await face.stop()
            raise
        if idle:
            await face.stop(event=HandoverEvent.IDLE)
        else:
            log.warning("actor %s: %d command(s) still running after the drain limit "
                        "(%g s): failing them", face.name, face.in_flight, drain_timeout)
            await face.stop(drain_limit_error(face.name, drain_timeout), HandoverEvent.LIMIT)

    # -- route targets -----------------------------------------------------------------
    def _legacy_target(self, route: Route) -> ActorLink:
        rt = self.actors.get(route.actor)
        dictionary = rt.dictionary if rt is not None else None
        # With a hub port, the port sends the init commands (its clients see their
        # replies as tron shows them); without one, the link sends them itself.
        link = ActorLink(route.actor, route.host or "127.0.0.1", route.port or 0,
                         mid_first=route.mid_first,
                         command_header=route.options.get("command_header", "commander"),
                         typer=dictionary.reply_to_json if dictionary is not None else None,
                         eol=route.options.get("eol", "\n"),
                         init_commands=route.options.get("init_cmds", ()),
                         send_init=self.config.hub is None, cache=self.cache)
        self.monitoring.watch_link(route.actor, link)
        return link

    def _hub_target(self, route: Route) -> Any:
        if self.hub_target is None:
            raise ValueError(f"actor {route.actor!r} lives on the hub, but no [tron] is set")
        rt = self.actors.get(route.actor)
        if rt is not None and rt.dictionary is not None:
            self.tron.add_dictionary(route.actor, rt.dictionary)
        return self.hub_target.for_actor(route.actor)

    async def _amqp_present(self, actor: str) -> bool:
        assert self.connection is not None
        return await amqp_actor_present(self.connection, actor)

    async def _start_hub_port(self) -> None:
        from ..hub.server import HubServer

        from ..hub.auth import AuthConfig, load_programs

        hub = self.config.hub
        assert hub is not None and self.router is not None
        auth = None
        if hub.auth_port is not None:
            if hub.passwords is None:
                raise ValueError("hub.auth_port needs hub.passwords (a tronpass-style file)")
            auth = AuthConfig.load(hub.passwords, hub.programs, port=hub.auth_port)
        programs = load_programs(hub.programs) if hub.programs is not None else None
        self.hub_server = HubServer(self.router, cache=self.cache, host=hub.host, port=hub.port,
                                    auth=auth, name=self.config.name,
                                    time_limit=self.config.command_time_limit,
                                    programs=programs, http_root=(hub.http_host, hub.http_root))
        self.hub_server.metrics = self.monitoring.metrics
        await self.hub_server.start()

    def _on_route_event(self, actor: str, description: str, event: str) -> None:
        if self.control is not None:
            asyncio.ensure_future(self.control.announce({"routeChange": [actor, description]}))

    # -- discovery ---------------------------------------------------------------------
    def _on_hub_keywords(self, actor: str, changed: dict[str, Any]) -> None:
        actors = next((v for k, v in changed.items() if k.lower() == "actors"), None)
        if actors is None:
            return
        names = actors if isinstance(actors, list) else [actors]
        ours = {a.name for a in self.config.actors}
        new = [n for n in names if isinstance(n, str) and n not in HUB_PSEUDO_ACTORS
               and n not in ours and n not in self.actors]
        if new:
            asyncio.ensure_future(self._discover(new))

    async def _discover(self, names: list[str]) -> None:
        async with self._lock:
            for name in names:
                if name in self.actors:
                    continue
                cfg = ActorConfig(name=name, lives="hub")
                rt = ActorRuntime(cfg, discovered=True)
                self.actors[name] = rt
                assert self.router is not None
                await self.router.apply(self.router.table.with_route(cfg.route()))
                await self._start_faces(rt)
                log.info("discovered actor %s on the hub; serving it on AMQP", name)

    # -- status ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What the bridge serves: each actor, its side, connection state, commands, counters."""
        actors = []
        for name, rt in sorted(self.actors.items()):
            target = self.router.target(name) if self.router else None
            state = getattr(target, "state", None)
            if state is None:
                connected = getattr(target, "connected", None)
                state = None if connected is None else ("connected" if connected else "down")
            entry: dict[str, Any] = {
                "name": name, "lives": rt.config.lives,
                "side": self.router.side(name) if self.router else None,
                "state": state, "in_flight": getattr(target, "in_flight", 0),
                "amqp_face": rt.amqp_face is not None,
                "legacy_port": rt.legacy_face.port if rt.legacy_face else None,
                "discovered": rt.discovered,
            }
            counters: dict[str, int] = {}
            for face in (rt.amqp_face, rt.legacy_face):
                if face is not None:
                    for k, v in face.counters.items():
                        counters[k] = counters.get(k, 0) + v
            entry["counters"] = counters
            problem = rt.amqp_problem
            if rt.amqp_face is not None and self.connection is not None:
                problem = self.connection.queue_problems.get(rt.amqp_face.endpoint.queue_name)
            if problem:
                entry["amqp_problem"] = problem
            if rt.notes:
                entry["notes"] = list(rt.notes)
            actors.append(entry)
        return {
            "name": self.config.name,
            "amqp": (self.connection.link_status() if self.connection is not None
                     else {"connected": False}),
            "tron": None if self.tron is None else {
                "host": self.tron.host, "port": self.tron.port, "state": self.tron.state},
            "hub_port": None if self.hub_server is None else self.hub_server.port,
            "actors": actors,
            # Old faces a reload handed over, their accepted commands still finishing.
            "handovers": [{"actor": face.name,
                           "face": "amqp" if isinstance(face, AmqpFace) else "legacy",
                           "state": face.handover.state.value, "in_flight": face.in_flight}
                          for face in self._retiring.values()],
        }

    def status_json(self) -> str:
        return json.dumps(self.status(), sort_keys=True)


class BridgeCommander:
    """How actors hosted in the bridge command others: by route, else over AMQP.

    Actors in the routing table are reached wherever they live; any other name is
    taken to be an AMQP actor (which fails at once if there is none).
    """

    def __init__(self, router: Router, amqp: AmqpTarget) -> None:
        self.router = router
        self.amqp = amqp

    def send_command(self, actor: str, text: str, **kwargs: Any) -> Any:
        if actor in self.router.table:
            return self.router.send_command(actor, text, **kwargs)
        return self.amqp.send_command(actor, text, **kwargs)


def _build_local(cfg: ActorConfig, base: Path | None) -> Any:
    """Build a local actor from ``module:callable`` or ``path/to/file.py:callable``."""
    where, _, attr = (cfg.spec or "").rpartition(":")
    if not where or not attr:
        raise ValueError(f"actors.{cfg.name}.spec: expected 'module:callable', got {cfg.spec!r}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_absolute() and base is not None:
            path = base / path
        spec = importlib.util.spec_from_file_location(f"bridge_local_{cfg.name}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"actors.{cfg.name}.spec: cannot load {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    factory = getattr(module, attr)
    return factory(name=cfg.name, host=cfg.host, port=cfg.port)


def _same_amqp_face(old: ActorConfig, new: ActorConfig) -> bool:
    """True if ``new`` wants the AMQP face ``old`` has, on the same route (the face's
    target), with the same dictionary (its schema): the running face is kept."""
    return (new.lives != "amqp" and new.amqp and old.route() == new.route()
            and old.dictionary == new.dictionary)


def _same_legacy_face(old: ActorConfig, new: ActorConfig) -> bool:
    """True if ``new`` wants the legacy face ``old`` has (so the running one is kept)."""
    return (new.legacy_port is not None and old.legacy_port == new.legacy_port
            and old.mid_first == new.mid_first and old.register == new.register
            and old.eol == new.eol)


async def _drain(in_flight: Any, timeout: float) -> bool:
    """Wait until ``in_flight()`` is 0, at most ``timeout`` s; True if it reached 0."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while in_flight():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True

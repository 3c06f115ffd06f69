"""The built-in Tron-compatible hub: commanders connect here and command every routed actor.

:class:`HubServer` listens on a commander port that speaks tron's 6093 protocol
(``cmdr mid actor text`` in, ``cmdr mid actor code keywords`` out) and, with an
:class:`~bridge.hub.auth.AuthConfig`, on an authenticated port that speaks tron's 9877
protocol (``mid actor text`` after the ``knockKnock``/``login`` handshake). Every command
goes through the :class:`~bridge.core.Router`; ``perms``, ``hub``, ``keys`` and ``msg``
are answered by the hub itself; commanders that logged in are held to the ``perms``
tables (tron's ``Auth.checkAccess``). Every reply goes to every commander, as tron does.
What is emulated and what deliberately is not: ``protocol_specs/hub.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.internet.protocol import ServerFactory
from twisted.python.failure import Failure

from .. import __version__
from ..core import CommandHandle, IssuedCommands, KeywordCache, Reply, Router, no_target
from ..legacy.framing import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_UNSENT, LineProtocol
from ..protocol import TERMINAL_CODES, Keyword, ProtocolError, parse_hub_command
from ..runtime import as_future
from .auth import ACTOR_SAFE_COMMANDS, HUB_SAFE_COMMANDS, AuthConfig, ClientInfo, Login, \
    commander_name
from .command import HubCommand
from .lines import (
    CMDS_SOURCE, HUB_COMMANDER, cmd_done, cmd_in, hub_line, keywords_text, strings, text,
)
from .mirror import TargetMirror, is_connected
from .perms import GODS, PERMS_SAFE_COMMANDS, Permissions, PermsVerbs
from .verbs import HubVerbs

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: Commands every legacy actor gets when its link connects (tron's SDSS nubs' initCmds).
DEFAULT_INIT_COMMANDS = ("ping", "status", "version")
#: The hub's own actors, listed first in ``Actors`` in tron's order.
OWN_ACTORS = ("perms", "hub", "keys", "msg")
#: tron's default ``httpRoot`` (its ``local.json``): host and root directory of images.
DEFAULT_HTTP_ROOT = ("localhost", "/")
#: Where the ``cmds`` diagnostics' keyword starts in their lines (``.hub 0 cmds d ``).
_CMDS_PREFIX = len(hub_line(HUB_COMMANDER, 0, CMDS_SOURCE, "d", ""))

_HEADER = re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]+(\d+)(?:[ \t]|\Z)")
_TUI_HEADER = re.compile(r"[ \t]*(\d+)(?:[ \t]|\Z)")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ECHO_LIMIT = 200


class _HubWriter:
    """The hub's own never-ending commands: ``.hub 0 hub`` and ``.perms 0 perms`` lines
    to everybody (their keywords are cached under the source). ``fail`` writes ``w``, as
    tron's never-ending commands do."""

    def __init__(self, server: HubServer, commander: str, source: str) -> None:
        self.server, self.commander, self.source = server, commander, source

    def reply(self, code: str, keywords: Iterable[Keyword]) -> None:
        keywords = tuple(keywords)
        self.server.emit(hub_line(self.commander, 0, self.source, code, keywords_text(keywords)))
        if keywords:
            self.server.cache.update(self.source, keywords)

    def inform(self, *keywords: Keyword) -> None:
        self.reply("i", keywords)

    def warn(self, *keywords: Keyword) -> None:
        self.reply("w", keywords)

    fail = warn


class _Relay:
    """The reply callback of a routed command: holds replies until ``CmdQueued`` is out,
    then writes each one (the hot path of the hub: kept flat on purpose)."""

    __slots__ = ("server", "command", "held", "prefix")

    def __init__(self, server: HubServer, command: HubCommand) -> None:
        self.server = server
        self.command = command
        self.held: list[Reply] | None = []
        self.prefix = f"{command.commander} {command.mid} {command.actor} "

    def __call__(self, reply: Reply) -> None:
        if self.held is not None:
            self.held.append(reply)
            return
        cmd = self.command
        if cmd.done:
            log.debug("%r: reply %s after its end dropped", cmd, reply.code)
            return
        code = reply.code
        keywords = reply.keywords
        server = self.server
        server.emit(f"{self.prefix}{code} {keywords_text(keywords)}", cmd.connection)
        if keywords:
            server.cache.update(cmd.actor, reply.json, keywords)
        if code in TERMINAL_CODES:
            server._ended(cmd, code)

    def release(self) -> None:
        held, self.held = self.held, None
        for reply in held or ():
            self(reply)


class HubConnection(LineProtocol):
    """One commander connection (commander port, or authenticated port when ``login``)."""

    def __init__(self, server: HubServer, login: Login | None = None) -> None:
        super().__init__()
        self.server = server
        self.login = login
        self.max_line_length = server.max_line_length
        self.max_unsent = server.max_unsent
        self.eol = (login.config.reply_eol if login else "\n").encode()
        self.name = ""  # the nub name tron would give it: client.vN / TUI_N / PROGRAM.user
        self.commander = ".unnamed" if login else ""  # authenticated port: echoed commander
        self.client: ClientInfo | None = None
        self.peer_host = ""
        self.connected = False
        self.closed: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self.hears_all = login is None
        self._bad_encoding = False
        self._out: list[bytes] = []

    def __repr__(self) -> str:
        return f"<HubConnection {self.name} {self.peer_host}>"

    @property
    def authenticated_port(self) -> bool:
        return self.login is not None

    @property
    def logged_in(self) -> bool:
        return self.login is not None and self.login.logged_in

    def update_hearing(self) -> None:
        """:attr:`hears_all` is False on the authenticated port until login: until then
        the connection gets only the replies to its own commands."""
        self.hears_all = self.login is None or self.login.logged_in

    def connection_made(self) -> None:
        self.connected = True
        self.peer_host = str(getattr(self.transport.getPeer(), "host", ""))  # type: ignore[union-attr]
        self.server._connected(self)

    def connection_lost(self, reason: Failure) -> None:
        self.connected = False
        self._out = []
        self.server._disconnected(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def bad_encoding(self, line: str) -> None:
        self._bad_encoding = True

    def line_received(self, line: str) -> None:
        bad, self._bad_encoding = self._bad_encoding, False
        self.server._line(self, line, bad)

    def line_too_long(self, size: int) -> None:
        log.warning("%r: discarded a line of %d bytes", self, size)
        self.server._parse_error(self, None, f"line too long ({size} bytes or more; the limit "
                                             f"is {self.max_line_length}); it was discarded")

    def write_data(self, data: bytes) -> None:
        """Queue one encoded line (without its end); queued lines go out in one write as soon
        as the event loop is free (many lines per system call under load)."""
        if not self.connected:
            return
        out = self._out
        if not out:
            asyncio.get_event_loop().call_soon(self.flush)
        out.append(data)

    def flush(self) -> None:
        """Write the queued lines now."""
        out, self._out = self._out, []
        if out and self.connected and self.transport is not None:
            eol = self.eol
            self._write(eol.join(out) + eol)


class _Factory(ServerFactory):
    def __init__(self, server: HubServer, auth: AuthConfig | None) -> None:
        self.server = server
        self.auth = auth

    def buildProtocol(self, addr: Any) -> HubConnection:
        login = Login(self.auth, self.server._nonces) if self.auth is not None else None
        return HubConnection(self.server, login)


class HubServer:
    """A Tron-compatible hub in front of a :class:`~bridge.core.Router`.

    ``cache`` receives every keyword any actor or the hub reports (a new cache if None)
    and answers ``keys getFor``. ``port``: the commander port (0: any free port, None:
    none). ``auth``: also listen on an authenticated port (``auth.port``). Each legacy
    actor link gets ``init_commands`` when it connects (a route's
    ``options["init_cmds"]`` overrides). ``nub_timeout``: how long ``hub startNubs``
    waits for a link. ``time_limit``: fail routed commands after that many seconds
    (tron has none). ``diagnostics``: write tron's ``CmdIn``/``CmdQueued``/``CmdDone``.

    Permissions (``perms``): ``programs`` in tron's ``programs.json`` form (default:
    ``auth.programs``), ``gods`` (default: ``auth.gods``), and the safe-commands pattern
    of actors that have none of their own (``route.options["safe_commands"]``):
    ``safe_commands`` (default: ``auth.safe_commands``). ``http_root``: ``(host,
    rootDir)`` of the ``hub httpRoot`` keyword, where clients fetch images.
    """

    #: Counts the commands of the hub port's clients (a BridgeMetrics), or None.
    metrics: Any = None

    def __init__(self, router: Router, *, cache: KeywordCache | None = None,
                 host: str = LOOPBACK, port: int | None = 0, name: str = "hub",
                 version: str = __version__, auth: AuthConfig | None = None,
                 init_commands: Iterable[str] = DEFAULT_INIT_COMMANDS,
                 nub_timeout: float = 3.0, time_limit: float | None = None,
                 diagnostics: bool = True,
                 max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
                 max_unsent: int | None = DEFAULT_MAX_UNSENT,
                 programs: Mapping[str, Any] | None = None,
                 gods: Iterable[str] | None = None,
                 safe_commands: str | None = None,
                 http_root: tuple[str, str] = DEFAULT_HTTP_ROOT) -> None:
        self.router = router
        self.cache = cache if cache is not None else KeywordCache()
        self.host = host
        self.port = port
        self.name = name
        self.version = version
        self.auth = auth
        self.auth_port: int | None = auth.port if auth is not None else None
        self.init_commands = tuple(init_commands)
        self.nub_timeout = nub_timeout
        self.time_limit = time_limit
        self.diagnostics = diagnostics
        self.max_line_length = max_line_length
        self.max_unsent = max_unsent
        self.stop_reason = f"{name} is stopping."
        self.http_root = (str(http_root[0]), str(http_root[1]))
        if safe_commands is None:
            safe_commands = auth.safe_commands if auth is not None else ACTOR_SAFE_COMMANDS
        self.safe_commands = safe_commands
        self._safe_patterns: dict[str, re.Pattern[str] | None] = {}
        self.verbs = HubVerbs(self)
        #: Handles of the commands this hub sent (their replies are not mirrored again).
        self._issued = IssuedCommands()
        self.mirror = TargetMirror(router, self._unsolicited, self._target_state,
                                   is_own=self._issued.__contains__)
        self._connections: dict[HubConnection, None] = {}
        self._listeners: list[Any] = []
        self._nub_ids = itertools.count(1)
        self._xids = itertools.count(1)
        self._hub_mids = itertools.count(1)
        self._nonces: set[str] = set()
        self._in_flight: dict[HubCommand, CommandHandle | asyncio.Task[None] | None] = {}
        self._actors: list[str] | None = None
        self._running = False
        self._router_listening = False
        self._hub_writer = _HubWriter(self, HUB_COMMANDER, "hub")
        self.perms = Permissions(
            _HubWriter(self, ".perms", "perms"),
            programs if programs is not None else (auth.programs if auth is not None else {}),
            gods if gods is not None else (auth.gods if auth is not None else GODS))
        self.perms.add_actors(["hub"])
        self.perms_verbs = PermsVerbs(self.perms, self._logged_in_programs)
        self._cmds_lines: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<HubServer {self.name} {self.host}:{self.port}>"

    # -- life cycle ------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self._running

    async def start(self) -> HubServer:
        """Listen; afterwards :attr:`port` (and :attr:`auth_port`) are the actual ports."""
        if self._running:
            return self
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        self._running = True
        self.mirror.active = True
        if self.port is not None:
            endpoint = TCP4ServerEndpoint(reactor, self.port, interface=self.host)
            listening = await as_future(endpoint.listen(_Factory(self, None)))
            self._listeners.append(listening)
            self.port = listening.getHost().port
        if self.auth is not None:
            endpoint = TCP4ServerEndpoint(reactor, self.auth.port,
                                          interface=self.auth.host or self.host)
            listening = await as_future(endpoint.listen(_Factory(self, self.auth)))
            self._listeners.append(listening)
            self.auth_port = listening.getHost().port
        if not self._router_listening:
            self._router_listening = True
            self.router.add_listener(self._route_changed)
        self._watch_targets()
        self._actors = self.actor_names()
        for actor in self._actors:
            if actor not in OWN_ACTORS and self._needs_auth(actor):
                self.perms.add_actors([actor])
        self.cache.update("hub", {"version": self.version, "httpRoot": list(self.http_root),
                                  "Actors": self._actors})
        self.cache.update("perms", self.perms.status_keywords())
        log.info("%s: listening on %s:%s%s", self.name, self.host, self.port,
                 f" (authenticated port {self.auth_port})" if self.auth is not None else "")
        return self

    async def stop(self, reason: str | None = None, timeout: float = 5.0) -> None:
        """Stop listening, end every command still running with ``f``, close all connections."""
        if not self._running:
            return
        self._running = False
        reason = reason or self.stop_reason
        for listening in self._listeners:
            await as_future(listening.stopListening())
        self._listeners.clear()
        for cmd, pending in list(self._in_flight.items()):
            if isinstance(pending, CommandHandle):
                pending.fail(reason)
            elif isinstance(pending, asyncio.Task):
                pending.cancel()
        tasks = [p for p in self._in_flight.values() if isinstance(p, asyncio.Task)]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for cmd in list(self._in_flight):
            if not cmd.done:
                cmd.fail(text("error", reason), source="hub")
        self._in_flight.clear()
        self.mirror.active = False
        connections = list(self._connections)
        for conn in connections:
            conn.flush()
            if conn.transport is not None:
                conn.transport.loseConnection()
        if connections:
            _done, pending = await asyncio.wait([c.closed for c in connections], timeout=timeout)
            for conn in connections:
                if not conn.closed.done() and conn.transport is not None:
                    conn.transport.abortConnection()  # type: ignore[attr-defined]
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        log.info("%s: stopped", self.name)

    # -- what the hub knows ----------------------------------------------------------------
    @property
    def commands_in_flight(self) -> list[HubCommand]:
        """Commands that have not had their terminal reply yet."""
        return list(self._in_flight)

    @property
    def connections(self) -> list[HubConnection]:
        return list(self._connections)

    def actor_names(self) -> list[str]:
        """``Actors``: the hub's own actors, then every routed actor whose target is connected."""
        names = list(OWN_ACTORS)
        targets = self.router.targets()
        for actor in self.router.table.actors():
            target = targets.get(actor)
            if target is not None and actor not in names and is_connected(target):
                names.append(actor)
        return names

    def commander_names(self) -> list[str]:
        """``Commanders``: the name of every connection, in connection order."""
        return [conn.name for conn in self._connections]

    def commander_keywords(self) -> list[tuple[Keyword, ...]]:
        """tron's commander report: one ``user=`` per logged-in user, ``Commanders``,
        ``users``."""
        lines: list[tuple[Keyword, ...]] = []
        for conn in self._connections:
            if conn.logged_in and conn.client is not None:
                c = conn.client
                lines.append((strings("user", (conn.name, c.type, c.version, c.platform,
                                               conn.peer_host, conn.peer_host)),))
        lines.append((strings("Commanders", self.commander_names()),))
        # users: every connection of the authenticated port, logged in or not (tron's
        # TUI nubs are isUser from the start).
        lines.append((strings("users", [c.name for c in self._connections
                                        if c.authenticated_port]),))
        return lines

    def check_actors(self) -> None:
        """Broadcast ``Actors`` if the list changed since the last time; actors that
        (re)appear are registered with ``perms`` (tron: when their nub starts)."""
        names = self.actor_names()
        if names != self._actors:
            before = set(self._actors or ())
            self._actors = names
            if self._running:
                self.inform(strings("Actors", names))
                for actor in names:
                    if actor not in before and actor not in OWN_ACTORS and \
                            self._needs_auth(actor):
                        self.perms.add_actors([actor])

    def inform(self, *keywords: Keyword, code: str = "i") -> None:
        """Broadcast ``.hub 0 hub <code> keywords`` (and cache them under ``hub``)."""
        self._hub_writer.reply(code, keywords)

    def next_xid(self) -> int:
        return next(self._xids)

    def cmds_values(self) -> dict[str, str]:
        """The last value written of each ``cmds`` diagnostic keyword, in first-seen order."""
        return {name: line[_CMDS_PREFIX + len(name) + 1:]
                for name, line in self._cmds_lines.items()}

    def diagnose(self, line: str, name: str) -> None:
        """Write one ``cmds`` line and remember it (tron caches their values)."""
        self.emit(line)
        self._cmds_lines[name] = line

    # -- output ----------------------------------------------------------------------------
    def emit(self, line: str, origin: HubConnection | None = None) -> None:
        data = line.encode("utf-8", "replace")
        for conn in self._connections:
            if conn.hears_all or conn is origin:
                if conn._out:
                    conn._out.append(data)  # a flush is already scheduled
                else:
                    conn.write_data(data)

    def command_reply(self, cmd: HubCommand, code: str, keywords: tuple[Keyword, ...],
                       source: str, private: bool, values: Any = None) -> None:
        if cmd.done:
            log.debug("%r: reply %s after its end dropped", cmd, code)
            return
        line = hub_line(cmd.commander, cmd.mid, source, code, keywords_text(keywords))
        terminal = code in TERMINAL_CODES
        if private:
            if cmd.connection is not None:
                cmd.connection.write_data(line.encode("utf-8", "replace"))
            if terminal:
                bare = hub_line(cmd.commander, cmd.mid, source, code, "").encode()
                for conn in self._connections:
                    if conn.hears_all and conn is not cmd.connection:
                        conn.write_data(bare)
        else:
            self.emit(line, cmd.connection)
        if keywords and values is not False:
            self.cache.update(source, values if values is not None else keywords)
        if terminal:
            self._ended(cmd, code)

    def _ended(self, cmd: HubCommand, code: str) -> None:
        cmd.done = True
        self._in_flight.pop(cmd, None)
        if cmd.diagnostics:
            self.diagnose(cmd_done(cmd.xid, code), "CmdDone")

    def _unsolicited(self, actor: str, reply: Reply) -> None:
        keywords = reply.keywords
        self.emit(hub_line("." + actor, 0, actor, reply.code, keywords_text(keywords)))
        if keywords:
            self.cache.update(actor, reply.json, keywords)

    # -- connections -----------------------------------------------------------------------
    def _connected(self, conn: HubConnection) -> None:
        if not self._running:
            conn.transport.loseConnection()  # type: ignore[union-attr]
            return
        number = next(self._nub_ids)
        conn.name = f"TUI_{number}" if conn.authenticated_port else f"client.v{number}"
        self._connections[conn] = None
        log.debug("%s: commander %s connected from %s", self.name, conn.name, conn.peer_host)
        self._announce_commanders()

    def _disconnected(self, conn: HubConnection) -> None:
        if self._connections.pop(conn, False) is None:
            log.debug("%s: commander %s disconnected", self.name, conn.name)
            if self._running:
                self._announce_commanders()

    def _announce_commanders(self) -> None:
        for keywords in self.commander_keywords():
            self.inform(*keywords)

    # -- input -----------------------------------------------------------------------------
    def _line(self, conn: HubConnection, line: str, bad_encoding: bool) -> None:
        if not line.strip():
            return
        try:
            parsed = parse_hub_command(line, with_commander=not conn.authenticated_port)
        except ProtocolError:
            self._parse_error(conn, line, f"Command from {conn.name} could not be parsed: "
                                          f"{_echo(line)}")
            return
        commander = conn.commander if conn.authenticated_port else parsed.commander
        if bad_encoding or _CONTROL.search(parsed.text):
            problem = ("is not valid UTF-8" if bad_encoding
                       else "contains control characters")
            self._refuse(conn, commander, parsed.mid, f"Command {_echo(parsed.text)} "
                                                      f"{problem}; it was not run")
            return
        if conn.authenticated_port and (parsed.actor == "auth" or not conn.logged_in):
            self._auth(conn, commander, parsed.mid, parsed.actor, parsed.text)
            return
        cmd = HubCommand(self, conn, commander, parsed.mid, parsed.actor, parsed.text)
        if not self._running:
            cmd.fail(text("error", self.stop_reason), source="hub")
            return
        self.dispatch(cmd)

    def dispatch(self, cmd: HubCommand) -> None:
        """Run one command: announce it, then the hub's own actors or the router."""
        if cmd.diagnostics:
            self.diagnose(cmd_in(cmd.cid, cmd.actor, cmd.text), "CmdIn")
        conn = cmd.connection
        if conn is not None and conn.logged_in and not self._permitted(conn, cmd):
            return
        actor = cmd.actor
        try:
            if actor == "hub":
                result = self.verbs.hub(cmd)
            elif actor == "keys":
                result = self.verbs.keys(cmd)
            elif actor == "msg":
                result = self.verbs.msg(cmd)
            elif actor == "perms":
                result = self.perms_verbs.run(cmd, cmd.queued)
            else:
                self._route(cmd)
                return
        except Exception as exc:  # a verb must never leave its command without an end
            log.exception("%s: %r failed", self.name, cmd)
            cmd.fail(text(f"{actor}Txt", f"{type(exc).__name__}: {exc}"))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._follow(cmd, result))
            if not cmd.done:
                self._in_flight[cmd] = task

    async def _follow(self, cmd: HubCommand, awaitable: Any) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            if not cmd.done:
                cmd.fail(text("error", self.stop_reason), source="hub")
        except Exception as exc:
            log.exception("%s: %r failed", self.name, cmd)
            if not cmd.done:
                cmd.fail(text(f"{cmd.actor}Txt", f"{type(exc).__name__}: {exc}"))
        finally:
            if not cmd.done:
                log.error("%s: %r ended without a terminal reply", self.name, cmd)
                cmd.fail(text("error", "Command ended without a final reply (internal error)."),
                         source="hub")

    def _route(self, cmd: HubCommand) -> None:
        target = self.router.target(cmd.actor)
        if target is None or not is_connected(target):
            if target is not None and self.metrics is not None:
                self.metrics.refused(cmd.actor, "hub", cmd.commander, cmd.mid, "not connected")
            cmd.fail(text("NoTarget", no_target(cmd.actor)), source="hub")
            return
        relay = _Relay(self, cmd)
        handle = self.router.send_command(cmd.actor, cmd.text, commander=cmd.commander,
                                          callback=relay, time_limit=self.time_limit)
        if self.metrics is not None:
            self.metrics.track(cmd.actor, "hub", handle, cmd.commander, cmd.mid)
        self._issued.add(handle)
        actor_mid = handle.command_id
        cmd.queued(actor_mid if isinstance(actor_mid, int) else 0)
        relay.release()
        if not cmd.done:
            self._in_flight[cmd] = handle

    def _permitted(self, conn: HubConnection, cmd: HubCommand) -> bool:
        """tron's ``checkAccess`` for a logged-in commander; a refusal is explained
        (``permsTxt``/``text`` warnings) and then fails the command with ``NoPermission``."""
        if self.auth is None or conn.client is None:
            return True
        actor = cmd.actor
        needs_auth = True
        if actor in ("keys", "msg"):
            needs_auth = False
        elif actor not in OWN_ACTORS:
            target = self.router.target(actor)
            if target is None or not is_connected(target):
                return True  # NoTarget comes first, as in tron
            needs_auth = self._needs_auth(actor)
        if self.perms.check_access(conn.client.program, actor, cmd.text, cmd,
                                   self._safe_pattern(actor), needs_auth):
            return True
        cmd.fail(text("NoPermission", f"you do not have permission to command {actor} "
                                      f"{cmd.text}"), source="hub")
        return False

    def _needs_auth(self, actor: str) -> bool:
        """Whether a routed actor is subject to permissions (``options["needs_auth"]``,
        tron's nub ``needsAuth``; such actors are not registered with perms either)."""
        route = self.router.table.get(actor)
        return bool(route.options.get("needs_auth", True)) if route is not None else True

    def _safe_pattern(self, actor: str) -> re.Pattern[str] | None:
        """The actor's safe-commands pattern: the hub's and perms' own as in tron, a
        route's ``safe_commands`` option, else the hub-wide default."""
        if actor == "hub":
            pattern: str | None = HUB_SAFE_COMMANDS
        elif actor == "perms":
            pattern = PERMS_SAFE_COMMANDS
        else:
            route = self.router.table.get(actor)
            own = route.options.get("safe_commands") if route is not None else None
            pattern = own if own is not None else self.safe_commands
        if pattern is None:
            return None
        compiled = self._safe_patterns.get(pattern)
        if compiled is None:
            compiled = self._safe_patterns[pattern] = re.compile(pattern)
        return compiled

    def _logged_in_programs(self) -> list[str]:
        return [c.client.program for c in self._connections
                if c.logged_in and c.client is not None]

    def _refuse(self, conn: HubConnection, commander: str, mid: int, message: str) -> None:
        line = hub_line(commander, mid, "hub", "f", keywords_text([text("ParseError", message)]))
        self.emit(line, conn)

    def _parse_error(self, conn: HubConnection, line: str | None, message: str) -> None:
        """A line that is no command: ``f`` to its commander and mid if they can be read,
        else ``.hub 0 hub w ParseError=...`` to the sender only."""
        if line is not None:
            if conn.authenticated_port:
                m = _TUI_HEADER.match(line)
                header = (conn.commander, m.group(1)) if m else None
            else:
                m = _HEADER.match(line)
                header = (m.group(1), m.group(2)) if m else None
            if header is not None:
                self._refuse(conn, header[0], int(header[1]), message)
                return
        conn.write_data(hub_line(HUB_COMMANDER, 0, "hub", "w", keywords_text(
            [text("ParseError", message)])).encode("utf-8", "replace"))

    # -- authenticated port ----------------------------------------------------------------
    def _auth(self, conn: HubConnection, commander: str, mid: int, actor: str,
              command: str) -> None:
        assert conn.login is not None
        if actor != "auth":
            conn.write_data(hub_line(commander, mid, "auth", "f", keywords_text(
                [text("why", "please log in.")])).encode("utf-8", "replace"))
            return
        result = conn.login.handle(command)
        conn.update_hearing()
        keywords = result.keywords
        if result.logged_in and conn.login.client is not None:
            client = conn.login.client
            conn.client = client
            taken = [c.name for c in self._connections if c is not conn]
            conn.name = conn.commander = commander_name(client.program, client.username, taken)
            keywords = (Keyword("loggedIn"), text("cmdrID", conn.name))
        elif not conn.logged_in and conn.client is not None:  # logged out
            conn.client = None
        # Only to this connection (tron broadcasts the nonce and the login reply).
        conn.write_data(hub_line(commander, mid, "auth", result.code,
                                 keywords_text(keywords)).encode("utf-8", "replace"))
        if result.logged_in:
            log.info("%s: %s logged in from %s", self.name, conn.name, conn.peer_host)
            self._announce_commanders()
        elif command.split()[:1] == ["logout"] and result.code == ":":
            conn.commander = ".unnamed"
            self._announce_commanders()

    # -- targets ---------------------------------------------------------------------------
    def _route_changed(self, actor: str, description: str, event: str) -> None:
        if not self._running:
            return
        self.check_actors()
        self._watch_targets()
        if event == "side":  # a prefer-AMQP actor switched sides: tell every commander
            self.inform(*self.verbs.route_keywords(actor))

    def _watch_targets(self) -> None:
        for actor, part in self.mirror.sync():
            if getattr(part, "add_state_listener", None) is not None and is_connected(part):
                self._send_init_commands(actor, part)

    def _target_state(self, actor: str, part: Any, state: str) -> None:
        if not self._running:
            return
        # As tron: the actor is listed (Actors, its perms registration) before its init
        # commands go out.
        self.check_actors()
        if state == "connected":
            self._send_init_commands(actor, part)

    def _send_init_commands(self, actor: str, part: Any) -> None:
        route = self.router.table.get(actor)
        if route is None or route.kind != "legacy" or not self._running:
            return
        commands = route.options.get("init_cmds", self.init_commands)
        for command in commands:
            cmd = HubCommand(self, None, HUB_COMMANDER, next(self._hub_mids), actor, command,
                             cid="0")
            if cmd.diagnostics:
                self.diagnose(cmd_in(cmd.cid, actor, command), "CmdIn")
            relay = _Relay(self, cmd)
            handle = part.send_command(actor, command, commander=HUB_COMMANDER, callback=relay)
            self._issued.add(handle)
            cmd.queued(handle.command_id if isinstance(handle.command_id, int) else 0)
            relay.release()
            if not cmd.done:
                self._in_flight[cmd] = handle


def _echo(line: str) -> str:
    line = line.strip()
    return repr(line if len(line) <= _ECHO_LIMIT else line[:_ECHO_LIMIT] + "...")

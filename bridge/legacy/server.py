"""The TCP server side of a legacy (Tron/opscore) actor: users, greeting, commands, replies.

:class:`LegacyServer` speaks the actor side of the line protocol exactly as a clu
``LegacyActor`` does on the wire, and hands every parsed command to a
:class:`CommandHandler`. It knows nothing about verbs or arguments, so the same
server fronts :class:`~bridge.legacy.actor.LegacyActor` and the bridge's relay.

Wire behaviour (``cid mid code`` header order, or ``mid cid code`` with ``mid_first``;
lines end with ``\\n``, or with ``\\r`` both ways with ``eol="\\r"``, the TCC's framing
that tron's TCC nub speaks):

* Users: each connection gets a user id, 1 if nobody is connected, else the highest
  connected id + 1 (clu's rule; ids are reused once the highest one leaves).
* Greeting on connect: ``N 0 i yourUserID=N; num_users=M`` to the new connection
  *first* (tron's nubs take the cid of the first line an actor sends: ``grabCID``),
  then one ``0 0 i UserInfo=<id>,<ip>`` per connected user to everybody (as clu),
  then ``N 0 i version="<v>"`` to the new connection. clu writes the version as
  ``version='1.0.0'`` (Python ``repr``); we write the canonical double-quoted form,
  which every reference parser reads as the same string (and which tron's own
  ``version`` keyword uses).
* Commands: ``[commander] [[cid] mid] text`` (:func:`~bridge.protocol.parse_actor_command`;
  ``1 5 status`` is tron's MCP form, mid 5). No mid means mid 0. Blank lines are
  ignored. Replies to a command go only to the connection that sent it, with that
  connection's user id as cid; broadcasts (cid 0, mid 0) go to everybody.
* Malformed input, always answered on that connection only, the connection kept:
  a line longer than ``max_line_length`` bytes -> ``<cid> 0 f error="..."``; a header
  with no command text (``APO.john 5``... with nothing after the mid) ->
  ``<cid> <mid> f error="..."``; bytes that are not UTF-8 -> ``<cid> <mid> f error="..."``
  (the command is *not* run: an instrument should not act on guessed characters).
* A client that leaves more than ``max_unsent`` bytes (16 MiB) of output unread is
  dropped, with a warning (tron buffers without end); clients that read lose nothing.
* Every command handed to the handler gets exactly one terminal reply (``:``/``f``):
  if the handler raises, or its awaitable ends without a terminal reply, or the server
  stops while it runs, the server writes the ``f``. Replies after the terminal one are
  dropped with a warning; replies to a connection that is gone are dropped (debug log).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, Protocol

from twisted.internet.protocol import ServerFactory
from twisted.python.failure import Failure

from ..protocol import (
    REPLY_CODES,
    ActorReply,
    Keyword,
    ProtocolError,
    format_actor_reply,
    is_terminal,
    json_to_keywords,
    parse_actor_command,
)
from ..core import CommandHandle
from ..runtime import as_future
from .framing import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_UNSENT, LineProtocol

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

#: The mid of a header whose command text is missing (``APO.john 7`` + spaces, ``3 4 ``).
_HEADER_MID = re.compile(
    r"[ \t]*(?:[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+[ \t]+)?([0-9]+)[ \t]+(?:([0-9]+)[ \t]*)?\Z"
)


def error_keyword(message: str) -> tuple[Keyword, ...]:
    """``error="message"`` (always quoted)."""
    return (Keyword("error", (message,), (True,)),)


class CommandHandler(Protocol):
    """What a :class:`LegacyServer` hands its commands to.

    ``handle`` is called once per command, in arrival order, on the event loop. It may
    return an awaitable: the command lasts until that awaitable ends, and must have
    had its terminal reply by then (the server writes ``f`` otherwise, and also when
    the awaitable raises). A handler that returns None must have finished the command.
    """

    def handle(self, command: IncomingLegacyCommand) -> Awaitable[None] | None: ...


class IncomingLegacyCommand:
    """One command received on a connection, with the way to answer it.

    ``user_id`` is the connection's user id (the reply cid), ``mid`` the command's mid
    (0 when the line had none), ``commander`` the line's commander name or None,
    ``text`` the command text (verb and arguments), ``line`` the line as received,
    ``header_cid`` the cid of tron's ``cid mid text`` form (else None).
    """

    __slots__ = ("server", "user_id", "mid", "commander", "text", "line", "header_cid",
                 "_connection", "_finished", "_cancel_reason")

    def __init__(self, server: LegacyServer, connection: LegacyConnection | None, user_id: int,
                 mid: int, commander: str | None, text: str, line: str = "",
                 header_cid: int | None = None) -> None:
        self.server = server
        self.user_id = user_id
        self.mid = mid
        self.commander = commander
        self.text = text
        self.line = line
        self.header_cid = header_cid
        self._connection = connection
        self._finished = False
        self._cancel_reason: str | None = None

    def __repr__(self) -> str:
        return (f"<IncomingLegacyCommand user={self.user_id} mid={self.mid} "
                f"commander={self.commander!r} text={self.text!r}>")

    @property
    def finished(self) -> bool:
        """True once a terminal reply (``:``, ``f``, ``!``) was written (or dropped)."""
        return self._finished

    @property
    def connected(self) -> bool:
        """True while the connection that sent the command is up."""
        return self._connection is not None and self._connection.connected

    def reply(self, code: str, keywords: Iterable[Keyword] | Mapping[str, Any] = ()) -> bool:
        """Write ``<user_id> <mid> <code> <keywords>`` to the issuing connection.

        ``keywords`` are :class:`~bridge.protocol.Keyword` objects or a JSON object.
        Return True if the line was written. Replies after the terminal one are
        ignored (warning); a reply to a closed connection is dropped (debug log).
        """
        if code not in REPLY_CODES:
            raise ValueError(f"invalid reply code {code!r}")
        if self._finished:
            log.warning("%r: reply %s after the end of the command ignored", self, code)
            return False
        if type(keywords) is not tuple and isinstance(keywords, Mapping):  # no ABC check for tuples
            keywords = json_to_keywords(keywords)
        line = format_actor_reply(ActorReply(self.user_id, self.mid, code, tuple(keywords)),
                                  self.server.mid_first)
        if is_terminal(code):
            self._finished = True
            self.server._command_ended(self)
        connection = self._connection
        if connection is None or not connection.connected:
            log.debug("%r: user %d is gone, reply dropped: %s", self, self.user_id, line)
            return False
        connection.send_line(line)
        return True

    def finish(self, keywords: Iterable[Keyword] | Mapping[str, Any] = ()) -> bool:
        """Write the ``:`` reply."""
        return self.reply(":", keywords)

    def fail(self, message: str) -> bool:
        """Write ``f error="message"``."""
        return self.reply("f", error_keyword(message))


class LegacyConnection(LineProtocol):
    """One user connected to a :class:`LegacyServer`."""

    def __init__(self, server: LegacyServer) -> None:
        super().__init__()
        self.server = server
        self.max_line_length = server.max_line_length
        self.max_unsent = server.max_unsent
        self.eol = server.eol.encode()
        self.user_id = 0
        self.peer_host = ""
        self.connected = False
        self.closed: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self._bad_encoding = False

    def __repr__(self) -> str:
        return f"<LegacyConnection {self.server.name} user={self.user_id} peer={self.peer_host}>"

    def connection_made(self) -> None:
        self.connected = True
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        self.peer_host = str(getattr(peer, "host", ""))
        self.server._user_connected(self)

    def connection_lost(self, reason: Failure) -> None:
        self.connected = False
        self.server._user_disconnected(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def line_received(self, line: str) -> None:
        bad, self._bad_encoding = self._bad_encoding, False
        self.server._line_received(self, line, bad)

    def bad_encoding(self, line: str) -> None:
        log.info("%r: line is not valid UTF-8: %r", self, line)
        self._bad_encoding = True

    def line_too_long(self, size: int) -> None:
        log.warning("%r: discarded a line of %d bytes (limit %d)", self, size,
                    self.max_line_length)
        self.server._send(self, 0, "f", error_keyword(
            f"Line too long ({size} bytes or more; the limit is {self.max_line_length}); "
            "it was discarded."))

    def write_reply(self, cid: int, mid: int, code: str, keywords: Iterable[Keyword]) -> None:
        """Write one reply line in the server's header order."""
        self.send_line(format_actor_reply(ActorReply(cid, mid, code, tuple(keywords)),
                                          self.server.mid_first))


class LegacyServer(ServerFactory):
    """A TCP server speaking the actor side of the legacy protocol (see the module docstring).

    ``await server.start()`` listens on ``host:port`` (port 0: any free port, see
    :attr:`port`); ``await server.stop()`` closes the port and every connection.
    """

    protocol = LegacyConnection  # type: ignore[assignment]

    def __init__(self, handler: CommandHandler | None = None, *, name: str = "actor",
                 host: str = LOOPBACK, port: int = 0, version: str | None = None,
                 mid_first: bool = False,
                 max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
                 max_unsent: int | None = DEFAULT_MAX_UNSENT, eol: str = "\n") -> None:
        if eol not in ("\n", "\r"):
            raise ValueError(f"{name}: eol must be '\\n' or '\\r', not {eol!r}")
        self.handler = handler
        self.eol = eol
        self.name = name
        self.host = host
        self.port = port
        self.version = version
        self.mid_first = mid_first
        self.max_line_length = max_line_length
        self.max_unsent = max_unsent
        self.stop_reason = f"{name} is stopping."
        self._listening: Any = None
        self._stopping = False
        self._users: dict[int, LegacyConnection] = {}
        self._in_flight: dict[IncomingLegacyCommand, None] = {}  # no terminal reply yet
        self._tasks: dict[IncomingLegacyCommand, asyncio.Task[None]] = {}  # handlers running

    def __repr__(self) -> str:
        return f"<LegacyServer {self.name} {self.host}:{self.port}>"

    # -- public API ----------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._listening is not None

    @property
    def users(self) -> dict[int, str]:
        """Connected users: user id -> peer address."""
        return {uid: conn.peer_host for uid, conn in sorted(self._users.items())}

    @property
    def connections(self) -> list[LegacyConnection]:
        """The connected clients' connections."""
        return list(self._users.values())

    @property
    def num_users(self) -> int:
        return len(self._users)

    @property
    def commands_in_flight(self) -> list[IncomingLegacyCommand]:
        """Commands received that have not had their terminal reply yet."""
        return list(self._in_flight)

    async def start(self) -> LegacyServer:
        """Listen on ``host:port``; afterwards :attr:`port` is the actual port."""
        if self._listening is not None:
            return self
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        endpoint = TCP4ServerEndpoint(reactor, self.port, interface=self.host)
        self._stopping = False
        self._listening = await as_future(endpoint.listen(self))
        self.port = self._listening.getHost().port
        log.info("%s: listening on %s:%d", self.name, self.host, self.port)
        return self

    async def stop(self, reason: str | None = None, timeout: float = 5.0) -> None:
        """Stop listening, fail the commands still running with ``f error=reason``, close all.

        Running handler tasks are cancelled (each then gets its ``f``); connections are
        closed after their pending output is written (aborted after ``timeout`` s).
        """
        self._stopping = True
        reason = reason or self.stop_reason
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await as_future(listening.stopListening())
        tasks = []
        for command, task in list(self._tasks.items()):
            command._cancel_reason = reason
            if not task.done():
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for command in list(self._in_flight):
            command.fail(reason)
        connections = list(self._users.values())
        for connection in connections:
            if connection.transport is not None:
                connection.transport.loseConnection()
        if connections:
            _done, pending = await asyncio.wait([c.closed for c in connections], timeout=timeout)
            for connection in connections:
                if not connection.closed.done() and connection.transport is not None:
                    connection.transport.abortConnection()  # type: ignore[attr-defined]
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        log.info("%s: stopped", self.name)

    def broadcast(self, code: str, keywords: Iterable[Keyword] | Mapping[str, Any] = ()) -> None:
        """Write ``0 0 <code> <keywords>`` to every connected user."""
        if code not in REPLY_CODES:
            raise ValueError(f"invalid reply code {code!r}")
        if not self._users:
            return
        if isinstance(keywords, Mapping):
            keywords = json_to_keywords(keywords)
        keywords = tuple(keywords)
        for connection in list(self._users.values()):
            connection.write_reply(0, 0, code, keywords)

    def send_to_user(self, user_id: int, code: str,
                     keywords: Iterable[Keyword] | Mapping[str, Any] = (), mid: int = 0) -> bool:
        """Write ``<user_id> <mid> <code> <keywords>`` to one user; False if not connected."""
        connection = self._users.get(user_id)
        if connection is None:
            return False
        if isinstance(keywords, Mapping):
            keywords = json_to_keywords(keywords)
        connection.write_reply(user_id, mid, code, keywords)
        return True

    # -- Twisted factory -------------------------------------------------------------------

    def buildProtocol(self, addr: Any) -> LegacyConnection:
        return LegacyConnection(self)

    # -- connection events -----------------------------------------------------------------

    def _user_connected(self, connection: LegacyConnection) -> None:
        user_id = max(self._users) + 1 if self._users else 1
        connection.user_id = user_id
        self._users[user_id] = connection
        log.debug("%s: user %d connected from %s", self.name, user_id, connection.peer_host)
        connection.write_reply(user_id, 0, "i", json_to_keywords(
            {"yourUserID": user_id, "num_users": len(self._users)}))
        for uid, other in sorted(self._users.items()):
            self.broadcast("i", json_to_keywords({"UserInfo": [uid, other.peer_host]}))
        if self.version is not None:
            connection.write_reply(user_id, 0, "i", (Keyword("version", (self.version,), (True,)),))

    def _user_disconnected(self, connection: LegacyConnection) -> None:
        if self._users.get(connection.user_id) is connection:
            del self._users[connection.user_id]
            log.debug("%s: user %d disconnected", self.name, connection.user_id)

    def _send(self, connection: LegacyConnection, mid: int, code: str,
              keywords: Iterable[Keyword]) -> None:
        if connection.connected:
            connection.write_reply(connection.user_id, mid, code, keywords)

    def _line_received(self, connection: LegacyConnection, line: str, bad_encoding: bool) -> None:
        if not line.strip():
            return
        try:
            parsed = parse_actor_command(line)
        except ProtocolError:
            match = _HEADER_MID.match(line)
            mid = 0
            if match is not None:
                mid = int(match.group(2) or match.group(1))
            self._send(connection, mid, "f", error_keyword(
                f"No command in {line.strip()!r}: expected [commander] [mid] command."))
            return
        command = IncomingLegacyCommand(
            self, connection, connection.user_id, parsed.mid or 0, parsed.commander,
            parsed.text, line, parsed.cid)
        if bad_encoding:
            command.fail("Command is not valid UTF-8; it was not run.")
            return
        if self._stopping:
            command.fail(self.stop_reason)
            return
        self._dispatch(command)

    def _dispatch(self, command: IncomingLegacyCommand) -> None:
        handler = self.handler
        if handler is None:
            command.fail(f"{self.name} cannot run commands.")
            return
        self._in_flight[command] = None
        try:
            result = handler.handle(command)
        except Exception as exc:
            log.exception("%s: command handler failed on %r", self.name, command)
            if not command.finished:
                command.fail(f"Command {command.text!r} failed: {type(exc).__name__}: {exc}")
            return
        if isinstance(result, CommandHandle):
            # A relayed command ends by itself: follow it without a task per command.
            result.add_done_callback(lambda _handle: self._check_finished(command))
        elif inspect.isawaitable(result):
            self._tasks[command] = asyncio.ensure_future(self._follow(command, result))
        else:
            self._check_finished(command)

    async def _follow(self, command: IncomingLegacyCommand, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            if not command.finished:
                command.fail(command._cancel_reason or "Command was cancelled.")
            return
        except Exception as exc:
            log.exception("%s: command handler failed on %r", self.name, command)
            if not command.finished:
                command.fail(f"Command {command.text!r} failed: {type(exc).__name__}: {exc}")
            return
        finally:
            self._tasks.pop(command, None)
        self._check_finished(command)

    def _check_finished(self, command: IncomingLegacyCommand) -> None:
        if not command.finished:
            log.error("%s: handler returned without finishing %r", self.name, command)
            command.fail("Command ended without a final reply (internal error).")

    def _command_ended(self, command: IncomingLegacyCommand) -> None:
        self._in_flight.pop(command, None)

"""A commander connection to a Tron hub (``commander mid actor text`` out, hub replies in).

:class:`TronConnection` connects to a hub's commander port (6093-style: commands
end with ``\\n``, replies are ``commander mid actor code keywords``), reconnects
forever with capped, jittered exponential backoff (Twisted's
``ReconnectingClientFactory``), and after every (re)connect re-sends its start-up
requests: registered commands (e.g. ``hub startNubs X``) and ``keys getFor`` for
the tracked keywords.

The hub sends every reply line to every commander. Each line:

* feeds the :class:`~bridge.core.keycache.KeywordCache` under its actor
  (``keys_<actor>`` lines under ``<actor>``), typed with the actor's keyword
  dictionary when one is loaded;
* goes to the reply listeners (:meth:`TronConnection.add_reply_listener`);
* completes or updates our command with the same commander *and* mid, whatever
  its actor column says (the hub itself rejects with ``hub f NoTarget=...``).

Lines that do not parse are logged and skipped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol as TypingProtocol

from twisted.internet.interfaces import IConnector
from twisted.internet.protocol import ReconnectingClientFactory
from twisted.python.failure import Failure

from ..core import CommandHandle, CommandTable, MidAllocator, Reply
from ..core.keycache import KeywordCache
from ..protocol import (
    HubCommand,
    HubReply,
    Keyword,
    ProtocolError,
    format_hub_command,
    keywords_to_json,
    parse_hub_reply,
)
from .framing import LineProtocol

log = logging.getLogger(__name__)

#: States of a :class:`TronConnection`.
CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"

#: Error text of commands still running when the connection drops.
LOST_CONNECTION = "Lost connection to the hub"
#: Names per ``keys getFor`` request (clu sends 10, opscore 20).
KEYS_PER_REQUEST = 10
#: Source prefix of the hub's cached-keyword replies (``keys_<actor>``).
KEYS_PREFIX = "keys_"

# A commander every client parser accepts: dotted, each segment starting with a letter.
_COMMANDER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+\Z")
# An actor (target) name the hub's command grammar accepts.
_ACTOR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")

StateCallback = Callable[[str], "Awaitable[None] | None"]
ReplyListener = Callable[..., "Awaitable[None] | None"]


class KeywordDictionaryLike(TypingProtocol):
    """What the connection needs of a keyword dictionary: typed JSON for a reply's keywords."""

    def reply_to_json(self, keywords: Iterable[Keyword]) -> dict[str, Any]: ...


def is_valid_commander(name: str) -> bool:
    """True for a dotted commander name the hub and every client parser accept (``prog.user``)."""
    return bool(_COMMANDER.match(name))


def cache_actor(source: str) -> str:
    """The actor whose keywords a reply of ``source`` carries (``keys_a_b`` -> ``a_b``)."""
    return source[len(KEYS_PREFIX):] if source.startswith(KEYS_PREFIX) and len(source) > 5 else source


@dataclass
class _StartupCommand:
    actor: str
    text: str
    on_sent: Callable[[CommandHandle], None] | None = None


@dataclass
class _Listener:
    callback: ReplyListener
    typed: bool = False


@dataclass
class _Tracked:
    """Keywords to request with ``keys getFor``; ``everything`` asks for all of them."""

    names: dict[str, str] = field(default_factory=dict)  # lower -> spelling
    everything: bool = False


class _HubLineProtocol(LineProtocol):
    """One TCP connection to the hub; hands lines to its :class:`TronConnection`."""

    def __init__(self, owner: TronConnection) -> None:
        super().__init__()
        self.owner = owner

    def connection_made(self) -> None:
        self.owner._connection_made(self)

    def connection_lost(self, reason: Failure) -> None:
        self.owner._connection_lost(self, reason)

    def line_received(self, line: str) -> None:
        self.owner._line_received(line)


class _HubClientFactory(ReconnectingClientFactory):
    """Reconnects forever with capped, jittered exponential backoff."""

    noisy = False

    def __init__(self, owner: TronConnection, initial_delay: float, max_delay: float,
                 factor: float, jitter: float) -> None:
        self.owner = owner
        self.initialDelay = self.delay = initial_delay
        self.maxDelay = max_delay
        self.factor = factor
        self.jitter = jitter

    def buildProtocol(self, addr: Any) -> _HubLineProtocol:
        self.resetDelay()
        proto = _HubLineProtocol(self.owner)
        proto.factory = self
        return proto

    def startedConnecting(self, connector: IConnector) -> None:
        self.connector = connector
        self.owner._set_state(CONNECTING)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        log.debug("%s: connection to the hub failed: %s", self.owner, reason.getErrorMessage())
        self.owner._set_state(DISCONNECTED)
        super().clientConnectionFailed(connector, reason)


class TronConnection:
    """A commander connection to a Tron hub, reconnecting forever.

    ``commander`` is our dotted commander name (``prog.user``, e.g. ``shutter.shutter``);
    it must be unique among the hub's commanders, since replies are matched by commander
    and mid. ``dictionaries`` maps actor names to keyword dictionaries (objects with
    ``reply_to_json(keywords)``) used to type cached values and reply values.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6093,
        *,
        commander: str = "bridge.bridge",
        dictionaries: Mapping[str, KeywordDictionaryLike] | None = None,
        cache: KeywordCache | None = None,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
        backoff_factor: float = 2.0,
        jitter: float = 0.1,
    ) -> None:
        if not is_valid_commander(commander):
            raise ValueError(f"invalid commander name {commander!r}: use a dotted name like 'prog.user'")
        if not 0 < initial_delay <= max_delay:
            raise ValueError("need 0 < initial_delay <= max_delay")
        self.host = host
        self.port = port
        self.commander = commander
        self.dictionaries: dict[str, KeywordDictionaryLike] = dict(dictionaries or {})
        self.cache = cache if cache is not None else KeywordCache()
        self.state = DISCONNECTED
        self._factory = _HubClientFactory(self, initial_delay, max_delay, backoff_factor, jitter)
        self._connector: IConnector | None = None
        self._protocol: _HubLineProtocol | None = None
        self._commands: CommandTable[tuple[str, int]] = CommandTable()
        self._mids = MidAllocator()
        self._startup: list[_StartupCommand] = []
        self._tracked: dict[str, _Tracked] = {}
        self._state_callbacks: list[StateCallback] = []
        self._listeners: list[_Listener] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._closed_waiters: list[asyncio.Future[None]] = []
        self._started = False

    def __repr__(self) -> str:
        return f"<TronConnection {self.commander}@{self.host}:{self.port} {self.state}>"

    # -- life cycle ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.state == CONNECTED

    async def start(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start connecting (and reconnecting forever); with ``wait``, return once connected.

        With a ``timeout``, raise :class:`TimeoutError` if the hub was not reached in
        time; the connection keeps retrying in the background until :meth:`stop`.
        """
        if not self._started:
            from twisted.internet import reactor

            self._started = True
            self._factory.resetDelay()
            self._connector = reactor.connectTCP(self.host, self.port, self._factory)
            self._factory.connector = self._connector
        if wait:
            await self.wait_connected(timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return when connected; raise :class:`TimeoutError` after ``timeout`` seconds."""
        if self.connected:
            return
        waiter: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"could not connect to the hub at {self.host}:{self.port} within {timeout:g} s "
                "(still retrying)") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def stop(self) -> None:
        """Stop reconnecting, close the connection and fail the commands still running."""
        if not self._started:
            return
        self._started = False
        self._factory.stopTrying()
        proto = self._protocol
        if proto is not None and proto.transport is not None:
            closed: asyncio.Future[None] = asyncio.get_event_loop().create_future()
            self._closed_waiters.append(closed)
            proto.transport.loseConnection()
            try:
                await asyncio.wait_for(asyncio.shield(closed), 5.0)
            except asyncio.TimeoutError:
                log.warning("%s: connection did not close in time; aborting it", self)
                abort = getattr(proto.transport, "abortConnection", None)
                if abort is not None:
                    abort()
        self._commands.fail_all("Connection to the hub closed")
        self._set_state(DISCONNECTED)

    def add_state_callback(self, callback: StateCallback) -> None:
        """Call ``callback(state)`` on every state change (sync or async)."""
        self._state_callbacks.append(callback)

    def remove_state_callback(self, callback: StateCallback) -> None:
        if callback in self._state_callbacks:
            self._state_callbacks.remove(callback)

    # -- start-up requests -------------------------------------------------------------
    def add_startup_command(self, actor: str, text: str,
                            on_sent: Callable[[CommandHandle], None] | None = None) -> None:
        """Send ``actor text`` after every (re)connect (and now, if connected).

        ``on_sent(handle)`` is called with the :class:`CommandHandle` of each sending,
        e.g. to await ``hub startNubs NAME`` at start-up.
        """
        entry = _StartupCommand(actor, text, on_sent)
        self._startup.append(entry)
        if self.connected:
            self._send_startup(entry)

    def remove_startup_command(self, actor: str, text: str) -> None:
        """Stop sending ``actor text`` on reconnect."""
        self._startup = [s for s in self._startup if (s.actor, s.text) != (actor, text)]

    def track(self, actor: str, *keywords: str) -> list[CommandHandle]:
        """Ask the hub for the cached values of these keywords of ``actor`` now and on every
        reconnect (``keys getFor=actor k1 ... k10`` in batches). No keywords: all of them.

        Returns the handles of the requests sent now (none if not connected).
        """
        tracked = self._tracked.setdefault(actor, _Tracked())
        new: list[str] = []
        if not keywords:
            if tracked.everything:
                return []
            tracked.everything = True
        for name in keywords:
            if name.lower() not in tracked.names:
                tracked.names[name.lower()] = name
                new.append(name)
        if not self.connected:
            return []
        if not keywords:
            return [self._send_getfor(actor, [])]
        if tracked.everything:
            return []
        return [self._send_getfor(actor, batch) for batch in _batches(new, KEYS_PER_REQUEST)]

    def request_keys(self, actor: str, *keywords: str) -> list[CommandHandle]:
        """Ask the hub once (now) for the cached values of ``keywords`` of ``actor`` (all if none)."""
        if not keywords:
            return [self.send_command("keys", f"getFor={actor}")]
        return [self._send_getfor(actor, batch) for batch in _batches(list(keywords), KEYS_PER_REQUEST)]

    # -- commands ----------------------------------------------------------------------
    def send_command(
        self,
        actor: str,
        text: str,
        *,
        commander: str | None = None,
        callback: Callable[[Reply], Awaitable[None] | None] | None = None,
        time_limit: float | None = None,
    ) -> CommandHandle:
        """Send ``text`` to ``actor`` through the hub; return the (awaitable) handle at once.

        The handle ends on ``:``, ``f``/``F`` or ``!`` for our commander and its mid. It
        fails at once, without sending, if we are not connected, the text contains CR/LF,
        or the actor/commander names are unusable; it fails when the connection drops
        or ``time_limit`` seconds pass.
        """
        commander = commander or self.commander
        handle = CommandHandle(actor, text, commander=commander, callback=callback)
        problem = self._refusal(actor, text, commander)
        if problem is not None:
            handle.fail(problem)
            return handle
        assert self._protocol is not None
        in_use = {mid for _c, mid in self._commands}
        mid = self._mids.allocate(in_use)
        handle.command_id = mid
        line = format_hub_command(HubCommand(commander, mid, actor, text))
        self._commands.add((commander, mid), handle, time_limit)
        self._protocol.send_line(line)
        return handle

    @property
    def commands_in_flight(self) -> int:
        return len(self._commands)

    def _refusal(self, actor: str, text: str, commander: str) -> str | None:
        """Why a command cannot be sent, or None."""
        if not is_valid_commander(commander):
            return f"Invalid commander name {commander!r}."
        if not _ACTOR.match(actor):
            return f"Invalid actor name {actor!r}."
        try:
            format_hub_command(HubCommand(commander, 0, actor, text))
        except ProtocolError as exc:
            return f"Invalid command: {exc}"
        if not self.connected or self._protocol is None:
            return f"Not connected to the hub at {self.host}:{self.port}."
        return None

    # -- replies -----------------------------------------------------------------------
    def add_reply_listener(self, callback: ReplyListener, *, typed: bool = False) -> None:
        """Call ``callback(hub_reply)`` for every parsed line the hub sends.

        With ``typed=True`` the call is ``callback(hub_reply, values)``, ``values`` being the
        keywords as JSON (typed with the actor's dictionary when one is loaded).
        """
        self._listeners.append(_Listener(callback, typed))

    def remove_reply_listener(self, callback: ReplyListener) -> None:
        self._listeners = [entry for entry in self._listeners if entry.callback != callback]

    def add_dictionary(self, actor: str, dictionary: KeywordDictionaryLike) -> None:
        """Type the keywords of ``actor`` with ``dictionary`` from now on."""
        self.dictionaries[actor] = dictionary

    def reply_to_json(self, actor: str, keywords: Iterable[Keyword]) -> dict[str, Any]:
        """The keywords of a reply from ``actor`` as JSON (typed if a dictionary is loaded)."""
        dictionary = self.dictionaries.get(cache_actor(actor))
        if dictionary is not None:
            try:
                return dictionary.reply_to_json(keywords)
            except Exception:
                log.exception("%s: dictionary of %s failed; using untyped values", self, actor)
        return keywords_to_json(keywords)

    def _line_received(self, line: str) -> None:
        if not line.strip():
            return
        try:
            reply = parse_hub_reply(line)
        except ProtocolError as exc:
            log.warning("%s: skipping a line that does not parse (%s): %r", self, exc, line)
            return
        values = self.reply_to_json(reply.actor, reply.keywords)
        if values:
            self.cache.update(cache_actor(reply.actor), values)
        self._notify_listeners(reply, values)
        key = (reply.commander, reply.mid)
        if key in self._commands:
            self._commands.reply(key, Reply(reply.code, reply.actor, reply.keywords,
                                            reply.commander, reply.mid, values))

    def _notify_listeners(self, reply: HubReply, values: dict[str, Any]) -> None:
        for entry in list(self._listeners):
            args = (reply, values) if entry.typed else (reply,)
            _call_safely(entry.callback, *args)

    # -- connection events -----------------------------------------------------------
    def _connection_made(self, proto: _HubLineProtocol) -> None:
        self._protocol = proto
        if not self._started:  # stop() raced with the connect
            proto.transport.loseConnection()
            return
        log.info("%s: connected", self)
        self._set_state(CONNECTED)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        for entry in list(self._startup):
            self._send_startup(entry)
        for actor, tracked in list(self._tracked.items()):
            if tracked.everything:
                self._send_getfor(actor, [])
            else:
                for batch in _batches(list(tracked.names.values()), KEYS_PER_REQUEST):
                    self._send_getfor(actor, batch)

    def _connection_lost(self, proto: _HubLineProtocol, reason: Failure) -> None:
        if self._protocol is proto:
            self._protocol = None
        was_connected = self.state == CONNECTED
        self._set_state(DISCONNECTED)
        failed = self._commands.fail_all(LOST_CONNECTION)
        if was_connected:
            log.warning("%s: lost the connection to the hub (%s); %d command(s) failed",
                        self, reason.getErrorMessage(), failed)
        for closed in self._closed_waiters:
            if not closed.done():
                closed.set_result(None)
        self._closed_waiters.clear()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        for callback in list(self._state_callbacks):
            _call_safely(callback, state)

    # -- helpers -----------------------------------------------------------------------
    def _send_startup(self, entry: _StartupCommand) -> None:
        handle = self.send_command(entry.actor, entry.text)
        asyncio.ensure_future(_log_failure(self, handle))
        if entry.on_sent is not None:
            _call_safely(entry.on_sent, handle)

    def _send_getfor(self, actor: str, names: list[str]) -> CommandHandle:
        text = " ".join([f"getFor={actor}", *names])
        handle = self.send_command("keys", text)
        asyncio.ensure_future(_log_failure(self, handle))
        return handle


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


async def _log_failure(owner: TronConnection, handle: CommandHandle) -> None:
    await handle
    if handle.failed:
        last = handle.replies[-1].json if handle.replies else {}
        log.warning("%s: start-up request '%s %s' failed: %s", owner, handle.actor, handle.text, last)


def _call_safely(callback: Callable[..., Any], *args: Any) -> None:
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result)
    except Exception:
        log.exception("callback %r failed", callback)

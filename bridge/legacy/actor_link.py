"""A reconnecting TCP client to one legacy actor, as the Tron hub's actor nubs are.

The link sends ``[commander] mid text`` lines, learns its connection id (cid)
from the first line the actor writes after connecting (the greeting, as tron's
``grabCID`` does), and sorts every reply line: a line with our cid and the mid of
a command in flight goes to that command; everything else is unsolicited output
of the actor (broadcasts, replies to the actor's other clients) and goes to the
reply listeners. When the connection drops, every command in flight fails at
once, and the link reconnects with backoff.

Per-actor settings of tron's nubs: the line terminator (``eol``: ``"\\r"`` for the TCC,
both ways, as tron's ``ASCIIReplyDecoder(EOL='\\r', stripChars='\\n')`` and
``ASCIICmdEncoder(EOL='\\r')``), the reply header order (``mid_first``), what is written
before a command (``command_header``), and the init commands sent once the link is up
(tron's ``initCmds``; sent by the link itself with ``send_init``, else by whoever owns
the link, e.g. the hub port, which shows their replies as tron does). The greeting's
keywords are stored in ``cache`` (a :class:`~bridge.core.KeywordCache`) under the actor's
name, so ``keys getFor=<actor>`` returns them as tron does even when nobody listened yet.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from twisted.internet.protocol import ReconnectingClientFactory
from twisted.python.failure import Failure

from ..core import (
    CommandHandle,
    CommandReplyListener,
    CommandTable,
    KeywordCache,
    MidAllocator,
    Reply,
    ReplyCallback,
)
from ..protocol import (
    ActorCommand,
    ProtocolError,
    format_actor_command,
    parse_actor_reply,
)
from ..protocol.keywords import parse_keywords_lenient
from .framing import LineProtocol

log = logging.getLogger(__name__)

LinkState = Literal["disconnected", "connecting", "connected"]
CommandHeader = Literal["commander", "mid", "cid-mid"]
ReplyListener = Callable[[Reply], Any]

#: How long to wait for the actor's first line before assuming it sends no greeting.
GREETING_WAIT = 0.5
#: Line terminators a link (and a legacy face) can speak.
EOLS = ("\n", "\r")
#: The commander of the init commands a link sends itself (tron's hub-internal one).
INIT_COMMANDER = ".hub"

_SEGMENT_JUNK = re.compile(r"[^A-Za-z0-9]")


def safe_commander(commander: str | None, fallback: str) -> str:
    """A commander name every legacy actor parses: dotted segments of letters and digits.

    AMQP commander ids such as ``peers_client.camera`` contain characters that clu's
    and actorcore's header patterns do not accept (clu would read the whole line as
    the command); those characters are dropped and each segment starts with a letter.
    Cached: a link sends many commands for few commanders.
    """
    key = (commander, fallback)
    safe = _SAFE_COMMANDERS.get(key)
    if safe is None:
        if len(_SAFE_COMMANDERS) >= 4096:
            _SAFE_COMMANDERS.clear()
        safe = _SAFE_COMMANDERS[key] = _safe_commander(commander, fallback)
    return safe


_SAFE_COMMANDERS: dict[tuple[str | None, str], str] = {}


def _safe_commander(commander: str | None, fallback: str) -> str:
    """:func:`safe_commander`, computed."""
    segments = []
    for seg in (commander or "").split("."):
        seg = _SEGMENT_JUNK.sub("", seg)
        if seg:
            segments.append(seg if seg[0].isalpha() else "c" + seg)
    if len(segments) < 2:
        segments = [s for s in (segments + [fallback]) if s][:2]
        if len(segments) < 2:
            segments = ["bridge", fallback]
    return ".".join(segments)


class _ActorLinkProtocol(LineProtocol):
    def __init__(self, link: "ActorLink") -> None:
        super().__init__()
        self.link = link
        self.eol = link.eol.encode()

    def connection_made(self) -> None:
        self.link._connected(self)

    def connection_lost(self, reason: Failure) -> None:
        self.link._disconnected(self, reason)

    def line_received(self, line: str) -> None:
        self.link._line(line)


class _LinkFactory(ReconnectingClientFactory):
    initialDelay = 0.2
    maxDelay = 10.0
    factor = 2.0

    def __init__(self, link: "ActorLink") -> None:
        self.link = link

    def buildProtocol(self, addr: Any) -> _ActorLinkProtocol:
        self.resetDelay()
        return _ActorLinkProtocol(self.link)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.link._set_state("connecting")
        log.debug("actor %s: connection failed: %s", self.link.name, reason.getErrorMessage())
        super().clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
        super().clientConnectionLost(connector, reason)


class ActorLink:
    """Commands to one legacy actor over TCP, replies back as :class:`~bridge.core.Reply`.

    ``mid_first`` selects the actor's reply header order; ``command_header`` what the
    link writes before the text (``commander``: ``cmdr mid text`` like tron's SDSS
    nubs, ``mid``: ``mid text`` like the TCC nub, ``cid-mid``: ``cid mid text`` like the
    MCP nub); ``eol`` the line terminator both ways (``"\\n"`` or ``"\\r"``).
    ``typer`` (optional, e.g. a keyword dictionary's ``reply_to_json``) gives typed
    JSON values for the replies. ``init_commands``: what the actor is sent each time
    the link comes up; the link sends them itself only with ``send_init`` (else the
    owner does, see :attr:`init_commands`). ``cache``: where the greeting's keywords
    are stored.
    """

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, *,
                 mid_first: bool = False, command_header: CommandHeader = "commander",
                 typer: Callable[[tuple], dict[str, Any]] | None = None,
                 max_delay: float = 10.0, eol: str = "\n",
                 init_commands: Iterable[str] = (), send_init: bool = False,
                 cache: KeywordCache | None = None) -> None:
        if eol not in EOLS:
            raise ValueError(f"actor {name}: eol must be one of {EOLS!r}, not {eol!r}")
        self.name = name
        self.host = host
        self.port = port
        self.mid_first = mid_first
        self.command_header = command_header
        self.typer = typer
        self.eol = eol
        #: Sent to the actor each time the link comes up (tron's ``initCmds``).
        self.init_commands = tuple(init_commands)
        self.send_init = send_init
        self.cache = cache
        #: The keywords of the actor's greeting on the current connection (None: none yet).
        self.greeting: tuple | None = None
        self.state: LinkState = "disconnected"
        self.cid: int | None = None
        self._protocol: _ActorLinkProtocol | None = None
        self._factory: _LinkFactory | None = None
        self._connector: Any = None
        self._commands: CommandTable[int] = CommandTable()
        self._mids = MidAllocator()
        self._listeners: list[ReplyListener] = []
        self._command_listeners: list[CommandReplyListener] = []
        self._state_listeners: list[Callable[[LinkState], Any]] = []
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._greeting_timer: asyncio.TimerHandle | None = None
        self.max_delay = max_delay
        #: Times the link came up (reconnects: one less).
        self.connects = 0
        #: ``traffic(direction, line)`` for every line sent (``>``) and received (``<``).
        self.traffic: Callable[[str, str], Any] | None = None

    def __repr__(self) -> str:
        return f"<ActorLink {self.name} {self.host}:{self.port} {self.state}>"

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True when connected and ready for commands (its cid learnt or not needed)."""
        return self.state == "connected"

    @property
    def in_flight(self) -> int:
        return len(self._commands)

    async def start(self, wait: bool = False, timeout: float = 10.0) -> None:
        """Start connecting (and keep reconnecting); with ``wait``, until connected or timeout."""
        if self._factory is None:
            self._factory = _LinkFactory(self)
            self._factory.maxDelay = self.max_delay
            self._set_state("connecting")
            from twisted.internet import reactor

            self._connector = reactor.connectTCP(self.host, self.port, self._factory, timeout=5)
        if wait:
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self, reason: str | None = None) -> None:
        """Stop reconnecting, close the connection and fail the commands in flight (with
        ``reason``, default "Link to actor ... was closed.")."""
        factory, self._factory = self._factory, None
        if factory is not None:
            factory.stopTrying()
        if self._connector is not None:
            self._connector.disconnect()
            self._connector = None
        self._commands.fail_all(reason or f"Link to actor {self.name} was closed.")
        self._set_state("disconnected")

    def add_reply_listener(self, listener: ReplyListener) -> None:
        """``listener(reply)`` for every unsolicited reply (broadcasts, others' replies)."""
        self._listeners.append(listener)

    def add_command_reply_listener(self, listener: CommandReplyListener) -> None:
        """``listener(reply, handle)`` for every reply of the actor to a command sent through
        this link (after the command's own callback): what tron shows every commander.
        Whoever sent the command knows its handle and can skip its own."""
        self._command_listeners.append(listener)

    def add_state_listener(self, listener: Callable[[LinkState], Any]) -> None:
        """``listener(state)`` whenever the link's state changes."""
        self._state_listeners.append(listener)

    # -- commands ------------------------------------------------------------------------
    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send ``text`` to the actor; the handle fails at once if that is impossible."""
        handle = CommandHandle(self.name, text, commander=commander, callback=callback,
                               loop=self._loop)
        if actor != self.name:
            handle.fail(f"This link only reaches actor {self.name!r}, not {actor!r}.")
            return handle
        if not self.connected or self._protocol is None:
            handle.fail(f"Actor {self.name} is not connected.")
            return handle
        mid = self._mids.allocate(self._commands)
        handle.command_id = mid
        try:
            line = self._format(text, mid, commander)
        except ProtocolError as exc:
            handle.fail(f"Refused command: {exc.reason}.")
            return handle
        self._commands.add(mid, handle, time_limit)
        self._protocol.send_line(line)
        if self.traffic is not None:
            self.traffic(">", line)
        return handle

    def _format(self, text: str, mid: int, commander: str | None) -> str:
        if self.command_header == "commander":
            cmd = ActorCommand(text, mid, safe_commander(commander, self.name))
        elif self.command_header == "cid-mid":
            cmd = ActorCommand(text, mid, None, self.cid or 0)
        else:
            cmd = ActorCommand(text, mid)
        return format_actor_command(cmd)

    # -- connection events ---------------------------------------------------------------
    def _set_state(self, state: LinkState) -> None:
        if state == self.state:
            return
        self.state = state
        if state == "connected":
            self.connects += 1
            self._ready.set()
        else:
            self._ready.clear()
        log.info("actor %s (%s:%d): %s", self.name, self.host, self.port, state)
        if state == "connected" and self.send_init:
            self._send_init_commands()
        for listener in list(self._state_listeners):
            try:
                listener(state)
            except Exception:
                log.exception("state listener of %r failed", self)

    def _send_init_commands(self) -> None:
        """Send the init commands (replies reach the command-reply listeners, e.g. the
        AMQP face's broadcasts); a failure is logged, never raised."""
        for text in self.init_commands:
            handle = self.send_command(self.name, text, commander=INIT_COMMANDER)
            if handle.failed:
                log.warning("actor %s: init command %r failed: %s", self.name, text,
                            handle.replies[-1].json if handle.replies else "")

    def _connected(self, protocol: _ActorLinkProtocol) -> None:
        self._protocol = protocol
        self._loop = asyncio.get_event_loop()  # commands' handles use it (no look-up each)
        self.cid = None
        self.greeting = None
        # Mids start at 1 on each connection, as with tron's new nub (nothing is in
        # flight: the commands of the last connection failed when it dropped).
        self._mids = MidAllocator()
        loop = asyncio.get_event_loop()
        self._greeting_timer = loop.call_later(GREETING_WAIT, self._greeting_done)

    def _greeting_done(self) -> None:
        self._greeting_timer = None
        if self._protocol is not None:
            self._set_state("connected")

    def _disconnected(self, protocol: _ActorLinkProtocol, reason: Failure) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if self._greeting_timer is not None:
            self._greeting_timer.cancel()
            self._greeting_timer = None
        failed = self._commands.fail_all(
            f"Lost connection to actor {self.name}: {reason.getErrorMessage()}")
        if failed:
            log.warning("actor %s: connection lost, %d command(s) failed", self.name, failed)
        self._set_state("connecting" if self._factory is not None else "disconnected")

    def _line(self, line: str) -> None:
        if self.traffic is not None:
            self.traffic("<", line)
        if not line.strip():
            return
        try:
            parsed = parse_actor_reply(line, self.mid_first)
            keywords = parsed.keywords
        except ProtocolError as exc:
            recovered = _recover(line, self.mid_first)
            if recovered is None:
                log.warning("actor %s: unparseable line skipped (%s): %r", self.name, exc, line)
                return
            parsed, keywords = recovered
        values = self.typer(keywords) if self.typer is not None else None
        if self.cid is None and self._greeting_timer is not None:
            self.cid = parsed.cid  # the first line after connect carries our cid
            self._greeting_timer.cancel()
            self._greeting_timer = None
            self.greeting = keywords
            if self.cache is not None and keywords:
                # tron caches every line it reads, the greeting too; a listener may not
                # be there yet (the hub port starts after the links), so store it here.
                self.cache.update(self.name, values if values is not None else keywords,
                                  keywords)
            self._set_state("connected")
        ours = parsed.mid != 0 and (self.cid is None or parsed.cid == self.cid)
        handle = self._commands.get(parsed.mid) if ours else None
        if handle is not None:
            reply = Reply(parsed.code, self.name, keywords, handle.commander, parsed.mid, values)
            self._commands.reply(parsed.mid, reply)
            for command_listener in list(self._command_listeners):
                try:
                    command_listener(reply, handle)
                except Exception:
                    log.exception("command reply listener of %r failed", self)
            return
        reply = Reply(parsed.code, self.name, keywords, None, None, values)
        for listener in list(self._listeners):
            try:
                listener(reply)
            except Exception:
                log.exception("reply listener of %r failed", self)


def _recover(line: str, mid_first: bool):  # type: ignore[no-untyped-def]
    """A line whose header parses but whose keywords do not: keep them as tron would."""
    m = re.match(r"[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+([>iwde:f!IWDE:F!])(?:[ \t]+(.*))?\Z", line, re.S)
    if m is None:
        return None
    a, b, code, rest = m.groups()
    cid, mid = (int(b), int(a)) if mid_first else (int(a), int(b))
    from ..protocol import ActorReply

    keywords = parse_keywords_lenient(rest or "")
    return ActorReply(cid, mid, code, keywords), keywords

"""One command in the hub (:class:`HubCommand`) and what it writes its replies through.

A :class:`HubCommand` does not know the server: it talks to a :class:`CommandSink`
(the :class:`~bridge.hub.server.HubServer` is one), so that the hub's verbs
(``bridge/hub/verbs.py``, ``bridge/hub/perms.py``) and the server import this module and
never each other.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..protocol import Keyword
from .lines import cmd_queued


class CommandSink(Protocol):
    """Where a :class:`HubCommand` sends its lines (implemented by the hub server)."""

    diagnostics: bool

    def next_xid(self) -> int:
        """The next hub-wide command number (``xid`` of the ``cmds`` diagnostics)."""
        ...

    def emit(self, line: str, origin: Any = None) -> None:
        """Write one line to every commander that hears all (and to ``origin``)."""
        ...

    def diagnose(self, line: str, name: str) -> None:
        """Write one ``cmds`` diagnostic line whose keyword is ``name``."""
        ...

    def command_reply(self, cmd: HubCommand, code: str, keywords: tuple[Keyword, ...],
                      source: str, private: bool, values: Any = None) -> None:
        """Write one reply of ``cmd`` (see :meth:`HubCommand.reply`)."""
        ...


class HubCommand:
    """One command in the hub, from a commander (or from the hub itself: init commands).

    ``commander``/``mid`` are echoed in every reply; ``xid`` is the hub-wide serial
    number of the diagnostics. The reply methods write to every commander (``private``:
    only to the issuing connection, the others see just a terminal line without keywords).
    ``connection`` is the commander's connection (None for the hub's own commands).
    """

    __slots__ = ("server", "connection", "commander", "mid", "actor", "text", "xid", "started",
                 "done", "diagnostics", "cid", "is_queued")

    def __init__(self, server: CommandSink, connection: Any, commander: str,
                 mid: int, actor: str, text: str, *, cid: str | None = None,
                 diagnostics: bool = True) -> None:
        self.server = server
        self.connection = connection
        self.commander = commander
        self.mid = mid
        self.actor = actor
        self.text = text
        self.xid = server.next_xid()
        self.started = time.time()
        self.done = False
        self.diagnostics = diagnostics and server.diagnostics
        self.cid = commander if cid is None else cid  # as CmdIn/CmdQueued show it
        self.is_queued = False

    def __repr__(self) -> str:
        return f"<HubCommand {self.commander} {self.mid} {self.actor} {self.text!r}>"

    def queued(self, actor_mid: int = 0) -> None:
        """Announce ``CmdQueued`` (once)."""
        if self.is_queued:
            return
        self.is_queued = True
        if self.diagnostics:
            self.server.diagnose(cmd_queued(self.xid, self.started, self.cid, self.mid,
                                            self.actor, actor_mid, self.text), "CmdQueued")

    def reply(self, code: str, keywords: Iterable[Keyword] = (), *, source: str | None = None,
              private: bool = False, cache: bool = True) -> None:
        """Write one reply; a terminal code ends the command (later replies are dropped).

        ``source``: the actor field of the line (default: the commanded actor).
        ``cache=False``: the keywords are not stored in the hub's keyword cache.
        """
        self.server.command_reply(self, code, tuple(keywords), source or self.actor, private,
                                  None if cache else False)

    def inform(self, *keywords: Keyword, private: bool = False) -> None:
        self.reply("i", keywords, private=private)

    def warn(self, *keywords: Keyword, private: bool = False) -> None:
        self.reply("w", keywords, private=private)

    def finish(self, *keywords: Keyword) -> None:
        self.reply(":", keywords)

    def fail(self, *keywords: Keyword, source: str | None = None) -> None:
        self.reply("f", keywords, source=source)

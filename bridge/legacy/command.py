"""The command object a legacy actor's command functions receive (``cmd``).

A :class:`Command` writes replies for one incoming command, clu style::

    cmd.info(shutter="moving")            # 1 5 i shutter=moving
    cmd.warning("Slow motor")             # 1 5 w text="Slow motor"
    cmd.finish(shutter="open")            # 1 5 : shutter=open
    cmd.fail("Motor stalled")             # 1 5 f error="Motor stalled"

Values are Python/JSON values written in the canonical form of
:func:`bridge.protocol.json_to_keywords`: ``True``/``False`` -> ``T``/``F``, ``None`` ->
``None``, lists -> ``a,b,c``, strings quoted when they need it (or would read back as
something else). The free-text keywords ``text``, ``error``, ``help`` and ``version``
are always double-quoted, as legacy actors and the hub write them.

After the terminal reply (``:``/``f``/``!``) every further write is ignored with a
warning in the log.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..core import CommandHandle, ReplyCallback
from ..protocol import FAILURE_CODES, Keyword, is_terminal, json_to_keyword
from ..protocol.lexical import NAME
from .server import IncomingLegacyCommand

log = logging.getLogger(__name__)

#: Keywords whose string values are always written double-quoted.
ALWAYS_QUOTED = frozenset({"text", "error", "help", "version"})

_NAME = re.compile(NAME + r"\Z")
#: A commander name the Tron hub accepts in a command line (no leading dot).
_TRON_COMMANDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class Commander(Protocol):
    """Something that sends commands to other actors (e.g. a Tron hub connection)."""

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle: ...


class CommandOwner(Commander, Protocol):
    """What a :class:`Command` needs of the actor that runs it (a
    :class:`~bridge.legacy.actor.LegacyActor`): its name, the commander name it uses,
    and a way to send commands to other actors. (A protocol, so that this module does
    not import ``actor``, which imports it.)"""

    @property
    def name(self) -> str: ...

    @property
    def commander_name(self) -> str: ...


def _plain(value: Any) -> Any:
    """A value the JSON mapping understands (enums by value, unknown objects as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [_plain(v) for v in sorted(value, key=repr)]
    return str(value)


def reply_keywords(body: Mapping[str, Any]) -> tuple[Keyword, ...]:
    """Keywords for a reply body (keyword name -> value); ``Keyword`` values pass as they are."""
    out = []
    for name, value in body.items():
        if isinstance(value, Keyword):
            out.append(value)
            continue
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"invalid keyword name {name!r}")
        value = _plain(value)
        keyword = json_to_keyword(name, value)
        if name in ALWAYS_QUOTED and isinstance(value, str):
            keyword = Keyword(name, keyword.values, (True,))
        out.append(keyword)
    return tuple(out)


def message_body(code: str, message: Any, keywords: Mapping[str, Any]) -> dict[str, Any]:
    """clu's convention: a plain string is ``text`` (``error`` for ``e``/``f``/``!``)."""
    body: dict[str, Any] = {}
    if message is not None:
        if isinstance(message, Mapping):
            body.update(message)
        elif isinstance(message, BaseException):
            body["error"] = f"{type(message).__name__}: {message}" if str(message) else \
                type(message).__name__
        else:
            body["error" if code == "e" or code in FAILURE_CODES else "text"] = str(message)
    body.update(keywords)
    return body


class Command:
    """One command being run by a :class:`~bridge.legacy.actor.LegacyActor`.

    ``verb`` is the command's name, ``arguments`` the text after it; ``text``,
    ``mid``, ``user_id`` and ``commander`` (the name the line carried, or None) come
    from the command line. ``status`` is ``"running"``, ``"done"`` or ``"failed"``.
    """

    def __init__(self, actor: CommandOwner, incoming: IncomingLegacyCommand, verb: str = "",
                 arguments: str = "") -> None:
        self.actor = actor
        self.incoming = incoming
        self.verb = verb
        self.arguments = arguments
        self.status = "running"

    def __repr__(self) -> str:
        return (f"<Command {self.actor.name} {self.text!r} user={self.user_id} mid={self.mid} "
                f"{self.status}>")

    # -- identity --------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return self.incoming.text

    @property
    def mid(self) -> int:
        return self.incoming.mid

    @property
    def user_id(self) -> int:
        return self.incoming.user_id

    @property
    def commander(self) -> str | None:
        return self.incoming.commander

    @property
    def done(self) -> bool:
        """True once the command has had its terminal reply."""
        return self.incoming.finished

    @property
    def child_commander(self) -> str:
        """Commander name for commands sent on behalf of this one.

        ``<commander>.<actor>`` when the command came with a commander name the hub
        accepts (``APO.john`` -> ``APO.john.shutter``), else ``<actor>.<actor>``.
        """
        commander = self.commander
        if commander and _TRON_COMMANDER.match(commander):
            return f"{commander}.{self.actor.name}"
        return self.actor.commander_name

    # -- replies -----------------------------------------------------------------------------

    def write(self, code: str, message: Any = None, /, **keywords: Any) -> bool:
        """Write a reply with ``code``; return True if it went out.

        ``message``: a string (``text``, or ``error`` for ``e``/``f``/``!``), a mapping of
        keywords, or an exception (``error="Type: message"``). Writes after the end
        are ignored (warning in the log).
        """
        if self.done:
            log.warning("%r: %s reply after the end of the command ignored", self, code)
            return False
        line_keywords = reply_keywords(message_body(code, message, keywords))
        written = self.incoming.reply(code, line_keywords)
        if is_terminal(code):
            self.status = "failed" if code in FAILURE_CODES else "done"
        return written

    def info(self, message: Any = None, /, **keywords: Any) -> bool:
        """``i`` reply."""
        return self.write("i", message, **keywords)

    def debug(self, message: Any = None, /, **keywords: Any) -> bool:
        """``d`` reply."""
        return self.write("d", message, **keywords)

    def warning(self, message: Any = None, /, **keywords: Any) -> bool:
        """``w`` reply."""
        return self.write("w", message, **keywords)

    def error(self, message: Any = None, /, **keywords: Any) -> bool:
        """``e`` reply: an error that does not end the command (a string -> ``error=``)."""
        return self.write("e", message, **keywords)

    def finish(self, message: Any = None, /, **keywords: Any) -> bool:
        """``:`` reply: the command succeeded."""
        return self.write(":", message, **keywords)

    def fail(self, message: Any = None, /, **keywords: Any) -> bool:
        """``f`` reply: the command failed (a string -> ``error=``)."""
        return self.write("f", message, **keywords)

    # -- commanding other actors -------------------------------------------------------------

    def send_command(self, target: str, text: str, *, callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        """Send ``text`` to actor ``target`` as :attr:`child_commander`; ``await`` the handle."""
        return self.actor.send_command(target, text, commander=self.child_commander,
                                       callback=callback, time_limit=time_limit)


def iter_help_lines(text: str) -> Iterable[str]:
    """The non-empty lines of a docstring, dedented."""
    import inspect

    for line in inspect.cleandoc(text).splitlines():
        if line.strip():
            yield line.rstrip()

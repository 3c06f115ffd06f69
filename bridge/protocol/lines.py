"""Parse and format whole lines: actor-side and hub-side commands and replies.

Line terminators (``\\n``, ``\\r\\n``) are removed by the framing layer; the
parsers here also drop any trailing CR/LF they are given. Formatters return the
line without a terminator.
"""

from __future__ import annotations

import re

from .canonical import format_keywords
from .errors import ProtocolError
from .fastpath import parse_keywords_fast
from .keywords import parse_keywords
from .model import ActorCommand, ActorReply, HubCommand, HubReply

_CODE = r"([>iwde:f!IWDE:F!])"

_ACTOR_REPLY = re.compile(rf"[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+{_CODE}(?:[ \t]+(.*))?\Z", re.S)
_HUB_REPLY = re.compile(
    rf"[ \t]*([A-Za-z_.][A-Za-z0-9_.\-]*)[ \t]+([0-9]+)[ \t]+([A-Za-z_][A-Za-z0-9_.\-]*)"
    rf"[ \t]+{_CODE}(?:[ \t]+(.*))?\Z",
    re.S,
)
_ACTOR_COMMAND = re.compile(
    r"[ \t]*(?:([A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)[ \t]+)?(?:([0-9]+)[ \t]+(?:([0-9]+)[ \t]+)?)?(.*)\Z",
    re.S,
)
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_HUB_COMMAND = re.compile(rf"[ \t]*({_DOTTED})[ \t]+([0-9]+)[ \t]+({_DOTTED})(?:[ \t]+(.*))?\Z", re.S)
_HUB_COMMAND_NO_CMDR = re.compile(rf"[ \t]*([0-9]+)[ \t]+({_DOTTED})(?:[ \t]+(.*))?\Z", re.S)


_new = tuple.__new__
_EOL = ("\r", "\n")


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def _header_error(kind: str, line: str) -> ProtocolError:
    return ProtocolError(f"malformed {kind} header", line, _first_bad_column(line))


def _first_bad_column(line: str) -> int:
    """Best-effort column of the header problem: the first non-blank character."""
    return len(line) - len(line.lstrip(" \t"))


def parse_actor_reply(line: str, mid_first: bool = False) -> ActorReply:
    """Parse ``cid mid code keywords`` (or ``mid cid code keywords`` when ``mid_first``)."""
    if line[-1:] in _EOL:
        line = line.rstrip("\r\n")
    m = _ACTOR_REPLY.match(line)
    if m is None:
        raise _header_error("reply", line)
    first, second, code, rest = m.groups()
    if rest:
        keywords = parse_keywords_fast(rest)
        if keywords is None:
            keywords = _keywords(rest, line, m.start(4))
    else:
        keywords = ()
    if mid_first:
        return _new(ActorReply, (int(second), int(first), code, keywords))
    return _new(ActorReply, (int(first), int(second), code, keywords))


def parse_hub_reply(line: str) -> HubReply:
    """Parse ``commander mid actor code keywords`` as a hub writes it."""
    if line[-1:] in _EOL:
        line = line.rstrip("\r\n")
    m = _HUB_REPLY.match(line)
    if m is None:
        raise _header_error("hub reply", line)
    commander, mid, actor, code, rest = m.groups()
    if rest:
        keywords = parse_keywords_fast(rest)
        if keywords is None:
            keywords = _keywords(rest, line, m.start(5))
    else:
        keywords = ()
    return _new(HubReply, (commander, int(mid), actor, code, keywords))


def _keywords(rest: str | None, line: str, offset: int):
    if not rest:
        return ()
    try:
        return parse_keywords(rest)
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, line, offset + exc.position) from None


def parse_actor_command(line: str) -> ActorCommand:
    """Parse ``[commander] [[cid] mid] text`` as a legacy actor receives it.

    Two leading integers are tron's ``cid mid`` header (the MCP nub): the second
    is the mid; that form exists only without a commander (after a commander, the
    second integer is text). An empty or blank line raises ProtocolError.
    """
    line = _strip_eol(line)
    m = _ACTOR_COMMAND.match(line)
    assert m is not None  # the pattern matches every string
    commander, first, second, text = m.groups()
    if commander is not None and second is not None:
        text = line[m.start(3):]  # no cid after a commander: the integer is text
        second = None
    text = text.strip(" \t")
    if not text:
        raise ProtocolError("empty command", line, len(line))
    if second is not None:
        return ActorCommand(text, int(second), commander, int(first))
    return ActorCommand(text, int(first) if first is not None else None, commander)


def parse_hub_command(line: str, with_commander: bool = True) -> HubCommand:
    """Parse ``commander mid actor text`` (or ``mid actor text`` for a logged-in port).

    Without a commander the result's ``commander`` is the empty string.
    """
    line = _strip_eol(line)
    if with_commander:
        m = _HUB_COMMAND.match(line)
        if m is None:
            raise _header_error("hub command", line)
        commander, mid, actor, text = m.groups()
    else:
        m = _HUB_COMMAND_NO_CMDR.match(line)
        if m is None:
            raise _header_error("hub command", line)
        commander = ""
        mid, actor, text = m.groups()
    return HubCommand(commander, int(mid), actor, (text or "").strip(" \t"))


def format_actor_reply(reply: ActorReply, mid_first: bool = False) -> str:
    """``cid mid code keywords``; a space always follows the code (``1 2 : ``)."""
    a, b = (reply.mid, reply.cid) if mid_first else (reply.cid, reply.mid)
    return f"{a} {b} {reply.code} {format_keywords(reply.keywords)}"


def format_hub_reply(reply: HubReply) -> str:
    """``commander mid actor code keywords`` with a space after the code."""
    return (
        f"{reply.commander} {reply.mid} {reply.actor} {reply.code} "
        f"{format_keywords(reply.keywords)}"
    )


def format_actor_command(command: ActorCommand) -> str:
    """``[commander] [[cid] mid] text``; the text must not contain CR or LF."""
    _check_single_line(command.text)
    parts = []
    if command.commander:
        parts.append(command.commander)
    if command.cid is not None and command.mid is not None and not command.commander:
        parts.append(str(command.cid))
    if command.mid is not None:
        parts.append(str(command.mid))
    parts.append(command.text)
    return " ".join(parts)


def format_hub_command(command: HubCommand) -> str:
    """``commander mid actor text`` (``mid actor text`` if commander is empty)."""
    _check_single_line(command.text)
    head = f"{command.commander} " if command.commander else ""
    return f"{head}{command.mid} {command.actor} {command.text}"


def _check_single_line(text: str) -> None:
    for i, ch in enumerate(text):
        if ch in "\r\n":
            raise ProtocolError("command text contains a line terminator", text, i)

"""The lines our hub writes that are not relayed replies: its own keywords and diagnostics.

All of them go out as ordinary hub reply lines (``commander mid source code keywords``);
these helpers only build the keywords, in tron's spelling and quoting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..protocol import Keyword, canonical, format_keyword, quote

# canonical's own test for values written bare, used here without a call per value.
_bare = canonical._SAFE_BARE.match

#: The hub's own commander and mid: ``.hub 0 hub i ...``.
HUB_COMMANDER = ".hub"
#: Source of the command-tracking diagnostics (``CmdIn``/``CmdQueued``/``CmdDone``).
CMDS_SOURCE = "cmds"


def keywords_text(keywords: Iterable[Keyword]) -> str:
    """Exactly :func:`~bridge.protocol.format_keywords`, faster for unquoted plain values
    (the common case of relayed replies)."""
    parts = []
    for keyword in keywords:
        name, values, quoted = keyword
        if not values:
            parts.append(name)
        elif True not in quoted and all(map(_bare, values)):
            parts.append(name + "=" + ",".join(values))
        else:
            parts.append(format_keyword(keyword))
    return "; ".join(parts)


def strings(name: str, values: Iterable[str]) -> Keyword:
    """``name="a","b"`` (every value quoted, as tron's ``qstr``); bare ``name`` if empty."""
    values = tuple(values)
    return Keyword(name, values, (True,) * len(values))


def text(name: str, value: str) -> Keyword:
    """``name="value"``."""
    return Keyword(name, (value,), (True,))


def hub_line(commander: str, mid: int, source: str, code: str, keywords: str) -> str:
    """One hub reply line; ``keywords`` is already formatted. A space always follows the code."""
    return f"{commander} {mid} {source} {code} {keywords}"


def cmd_in(commander: str, actor: str, command: str) -> str:
    """``.hub 0 cmds d CmdIn="cmdr","actor","text"``."""
    return f'.hub 0 cmds d CmdIn={quote(commander)},{quote(actor)},{quote(command)}'


def cmd_queued(xid: int, started: float, commander: str, mid: int, actor: str,
               actor_mid: int, command: str) -> str:
    """``.hub 0 cmds d CmdQueued=xid,time,"cmdr",mid,"actor",actorMid,"text"``."""
    return (f".hub 0 cmds d CmdQueued={xid},{started:0.2f},{quote(commander)},{mid},"
            f"{quote(actor)},{actor_mid},{quote(command)}")


def cmd_done(xid: int, code: str) -> str:
    """``.hub 0 cmds d CmdDone=xid,"code"`` (the code lower-cased, as tron)."""
    return f'.hub 0 cmds d CmdDone={xid},{quote(code.lower())}'


def message_time(when: float | None = None) -> str:
    """The ``msg`` verb's time stamp: ISO UTC to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))


__all__ = ["HUB_COMMANDER", "CMDS_SOURCE", "keywords_text", "strings", "text", "hub_line", "cmd_in",
           "cmd_queued", "cmd_done", "message_time"]

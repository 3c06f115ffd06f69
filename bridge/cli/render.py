"""How the client commands print replies: one line each, coloured on a terminal, or JSON."""

from __future__ import annotations

import json
from typing import Any

from ..core import Reply
from ..protocol import format_keywords

_COLOURS = {":": "32", "f": "31;1", "F": "31;1", "!": "31;1", "e": "31", "w": "33",
            "W": "33", "E": "31", "d": "2", "D": "2", ">": "36"}


def render_reply(reply: Reply, colour: bool = False, as_json: bool = False) -> str:
    """``<sender> <code> <keywords>`` (canonical keyword text), or a JSON object."""
    if as_json:
        return json.dumps({"sender": reply.sender, "code": reply.code,
                           "commander": reply.commander, "command_id": _id(reply.command_id),
                           "keywords": reply.json}, ensure_ascii=False, default=str)
    text = f"{reply.sender} {reply.code} {format_keywords(reply.keywords)}".rstrip()
    if colour and reply.code in _COLOURS:
        text = f"\033[{_COLOURS[reply.code]}m{text}\033[0m"
    return text


def _id(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, str)) else str(value)

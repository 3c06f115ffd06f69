"""The canonical keyword serialisation we emit: ``name=v1,v2; bare; name2="a b"``.

This is the form the Tron hub re-encodes every reply into, with one deliberate
difference: strings are always re-quoted with double quotes and backslash escapes
(tron copies an actor's quotes verbatim), so every line we write is accepted by
opscore, clu, tron and RO.ParseMsg alike whenever its names are plain identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .lexical import SAFE_BARE as _SAFE_BARE
from .lexical import needs_quotes
from .model import Keyword

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x08\x0a-\x1f\x7f]')


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def quote(text: str) -> str:
    """``text`` as a double-quoted value: backslash, quote, CR, LF and controls escaped."""
    if _NEEDS_ESCAPE.search(text):
        text = _NEEDS_ESCAPE.sub(_escape_char, text)
    return f'"{text}"'


def format_value(text: str, quoted: bool = False) -> str:
    """One value: quoted if it was quoted or if it cannot be written bare."""
    if quoted or _SAFE_BARE.match(text) is None:
        return quote(text)
    return text


def format_keyword(keyword: Keyword) -> str:
    """``name`` for a bare keyword, else ``name=v1,v2``."""
    if not keyword.values:
        return keyword.name
    return keyword.name + "=" + ",".join(
        format_value(v, q) for v, q in zip(keyword.values, keyword.quoted)
    )


def format_keywords(keywords: Iterable[Keyword]) -> str:
    """Keywords joined by ``"; "`` (the hub's separator)."""
    return "; ".join(format_keyword(k) for k in keywords)

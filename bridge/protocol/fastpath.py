"""A regular-expression parser for keyword lists, equal to the pyparsing grammar where it answers.

It validates the whole list with one regular expression and then extracts
keywords; whenever the list does not validate it returns None and the caller
falls back to :mod:`bridge.protocol.grammar`, which gives the precise error.
"""

from __future__ import annotations

import re

from . import lexical
from .model import Keyword

#: One keyword with its separator. Matching it repeatedly from position 0 tiles a
#: valid keyword list exactly (each match starts where the previous one ended and the
#: last one reaches the end); that is the validation, and the groups are the name and
#: the value text. It stops at the first position that does not match, so a malformed
#: line costs one failed match, never a scan from every position.
_UNIT = re.compile(
    rf"{lexical.WS}({lexical.NAME})(?:{lexical.WS}={lexical.WS}({lexical.VALUES}))?"
    rf"{lexical.WS}(?:;{lexical.WS}|\Z)",
    re.S,
)
_match_unit = _UNIT.match
_MEMBER = re.compile(rf"{lexical.WS}({lexical.VALUE})?{lexical.WS}(?:,|\Z)", re.S)
_QUOTES = ('"', "'")


def _split_values(text: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    if '"' not in text and "'" not in text:
        values = tuple(v.strip(" \t") for v in text.split(","))
        return values, (False,) * len(values)
    values: list[str] = []
    flags: list[bool] = []
    pos, end = 0, len(text)
    while True:
        m = _MEMBER.match(text, pos)
        assert m is not None, "validated text must split"
        token = m.group(1) or ""
        if token[:1] in _QUOTES and token:
            values.append(lexical.unescape(token[1:-1]))
            flags.append(True)
        else:
            values.append(token)
            flags.append(False)
        pos = m.end()
        if pos >= end and not text.endswith(",", 0, pos):
            break
        if pos >= end:
            values.append("")
            flags.append(False)
            break
    return tuple(values), tuple(flags)


_new = tuple.__new__


def parse_keywords_fast(text: str) -> tuple[Keyword, ...] | None:
    """Parse a keyword list, or return None if it is not in the fast path's language."""
    out = []
    append = out.append
    pos, end = 0, len(text)
    while pos < end:
        m = _match_unit(text, pos)
        if m is None:
            return None
        pos = m.end()
        name, vtext = m.group(1, 2)
        if not vtext:
            append(_new(Keyword, (name, (), ())))
        elif '"' in vtext or "'" in vtext:
            first = vtext[0]
            if (first == '"' or first == "'") and vtext.count(first) == 2 and vtext[-1] == first \
                    and "\\" not in vtext:
                append(_new(Keyword, (name, (vtext[1:-1],), _TRUE1)))
                continue
            values, flags = _split_values(vtext)
            if len(values) == 1 and values[0] == "" and not flags[0]:
                append(_new(Keyword, (name, (), ())))
            else:
                append(_new(Keyword, (name, values, flags)))
        else:
            if " " in vtext or "\t" in vtext:
                # Unquoted values contain no blanks: any blank is padding around a comma.
                vtext = vtext.replace(" ", "").replace("\t", "")
            parts = vtext.split(",")
            n = len(parts)
            append(_new(Keyword, (name, tuple(parts), _FALSE[n] if n < 64 else (False,) * n)))
    return tuple(out)


_FALSE = [(False,) * n for n in range(64)]
_TRUE1 = (True,)

"""The lexical pieces of the keyword grammar, shared by the pyparsing grammar and the fast path.

Both parsers are built from these regular expressions, so that "what is a name",
"what is a bare value" and "how a quoted string ends" are defined once.
"""

from __future__ import annotations

import re

#: Whitespace between tokens: spaces and tabs (CR/LF are line terminators). Possessive,
#: so that blank runs are never re-split when a match fails (no backtracking blow-up).
WS = r"[ \t]*+"
#: Keyword names: a letter or ``_``, then letters, digits, ``_``, ``-``, ``.``.
NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
#: Double- and single-quoted strings; a backslash escapes the next character.
DQUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'
SQUOTED = r"'[^'\\]*(?:\\.[^'\\]*)*'"
#: Unquoted values: no whitespace, comma or semicolon, and not starting with a quote.
BARE = r"[^ \t,;\"'][^ \t,;]*"
VALUE = rf"(?:{DQUOTED}|{SQUOTED}|{BARE})"
#: A value list; members may be empty (``1,,3``).
VALUES = rf"(?:{VALUE})?(?:{WS},{WS}(?:{VALUE})?)*+"
KEYWORD = rf"{NAME}(?:{WS}={WS}{VALUES})?"
#: A whole keyword list: ``;``-separated, one optional trailing ``;``.
KEYWORD_LIST = rf"{WS}(?:{KEYWORD}(?:{WS};{WS}{KEYWORD})*{WS}(?:;{WS})?)?"

#: Unquoted values we write: the characters every reference parser accepts bare.
SAFE_BARE = re.compile(r"[A-Za-z0-9._+\-~!@#$%^&*()\[\]{}|<>:?/]+\Z")


def needs_quotes(text: str) -> bool:
    """True if ``text`` cannot be written as an unquoted value."""
    return SAFE_BARE.match(text) is None


_UNESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "'": "'", "\\": "\\"}


def _unescape_one(match: re.Match[str]) -> str:
    seq = match.group(1)
    if len(seq) == 5:
        return chr(int(seq[1:], 16))
    return _SIMPLE.get(seq, "\\" + seq)


def unescape(text: str) -> str:
    r"""Resolve ``\\ \" \' \n \r \t \uXXXX`` in a quoted string's body; other ``\x`` stay as they are."""
    if "\\" not in text:
        return text
    return _UNESCAPE.sub(_unescape_one, text)


def unquote(token: str) -> tuple[str, bool]:
    """A value token as (text, quoted)."""
    if token[:1] in "\"'" and token:
        return unescape(token[1:-1]), True
    return token, False

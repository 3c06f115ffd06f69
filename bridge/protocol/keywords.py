"""Parsing keyword lists: the fast path first, the pyparsing grammar for everything else."""

from __future__ import annotations

from .errors import ProtocolError
from .fastpath import parse_keywords_fast
from .model import Keyword

#: Name of the keyword that carries text we could not parse (tron's convention).
UNPARSED = "UNPARSEDTEXT"


def parse_keywords(text: str) -> tuple[Keyword, ...]:
    """Parse ``name=v1,v2; name2; ...``; raise ProtocolError (with position) if malformed."""
    result = parse_keywords_fast(text)
    if result is None:
        from .grammar import parse_keywords_grammar  # pyparsing: imported on first need

        result = parse_keywords_grammar(text)
    return result


def parse_keywords_lenient(text: str, _depth: int = 0) -> tuple[Keyword, ...]:
    """Like :func:`parse_keywords`, but never raises: what does not parse is kept.

    On an error, the keywords before it are kept, parsing resumes at the next
    keyword boundary (a ``;``, or a blank after a ``name=values``), and text that
    cannot be resumed becomes one ``UNPARSEDTEXT="..."`` keyword. This reproduces
    the Tron hub's re-encoding of malformed actor lines (protocol_specs/keywords.md),
    so a relay loses nothing.
    """
    try:
        return parse_keywords(text)
    except ProtocolError as exc:
        head, rest = _split_before_error(text, exc.position)
    if not head or _depth >= _MAX_RECOVERIES:
        rest = text.strip(" \t") if not head else rest.strip(" \t")
        parsed = parse_keywords(head) if head else ()
        return parsed + ((Keyword(UNPARSED, (rest,), (True,)),) if rest else ())
    return parse_keywords(head) + parse_keywords_lenient(rest, _depth + 1)


_MAX_RECOVERIES = 8


def _split_before_error(text: str, position: int) -> tuple[str, str]:
    """Split ``text`` into a head that parses and the rest, or return ("", text)."""
    cut = _last_separator(text, position)
    if cut:
        head, rest = text[:cut], text[cut:]
    else:
        # No ';' before the error: a blank after ``name=values`` ends a keyword (tron).
        end = max(text.rfind(" ", 0, position), text.rfind("\t", 0, position)) + 1
        head, rest = text[:end], text[end:]
        if "=" not in head:
            return "", text
    try:
        parse_keywords(head)
    except ProtocolError:
        return "", text
    return head, rest


def _last_separator(text: str, position: int) -> int:
    """Index just after the last ``;`` outside quotes before ``position`` (0 if none)."""
    cut = 0
    quote = ""
    escaped = False
    for i, ch in enumerate(text[:position]):
        if escaped:
            escaped = False
        elif ch == "\\" and quote:
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == ";":
            cut = i + 1
    return cut

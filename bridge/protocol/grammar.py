"""The reference keyword grammar, written with pyparsing.

This is the definition of what a keyword list is (see protocol_specs/keywords.md
for the EBNF). :mod:`bridge.protocol.fastpath` is a faster equivalent for the
common case; tests prove the two agree, and anything the fast path does not
accept is handed to this grammar, which either parses it or raises
:class:`~bridge.protocol.errors.ProtocolError` with the position.
"""

from __future__ import annotations

import re

import pyparsing as pp

from . import lexical
from .errors import ProtocolError
from .model import Keyword


def _build() -> pp.ParserElement:
    ws = pp.Regex(r"[ \t]*").suppress()
    name = pp.Regex(lexical.NAME).set_name("keyword name")
    quoted = pp.Regex(f"{lexical.DQUOTED}|{lexical.SQUOTED}", flags=re.S).set_name(
        "quoted string")
    bare = pp.Regex(lexical.BARE).set_name("value")
    value = (quoted | bare).set_parse_action(lambda t: [lexical.unquote(t[0])])
    member = pp.Opt(value, default=("", False))
    value_list = pp.Group(member + pp.ZeroOrMore(ws + pp.Suppress(",") + ws + member))
    keyword = pp.Group(name + pp.Opt(ws + pp.Suppress("=") + ws + value_list))
    keywords = keyword + pp.ZeroOrMore(ws + pp.Suppress(";") + ws + keyword)
    grammar = ws + pp.Opt(keywords + ws + pp.Opt(pp.Suppress(";") + ws)) + pp.StringEnd()
    grammar.leave_whitespace(recursive=True)
    grammar.parse_with_tabs()  # columns are characters; a tab inside quotes stays a tab
    return grammar


_GRAMMAR = _build()


def _to_keyword(group: pp.ParseResults) -> Keyword:
    name = group[0]
    if len(group) == 1:
        return Keyword(name)
    members = list(group[1])
    if len(members) == 1 and members[0] == ("", False):
        return Keyword(name)  # ``key=`` is a bare keyword
    return Keyword(name, tuple(m[0] for m in members), tuple(m[1] for m in members))


def parse_keywords_grammar(text: str) -> tuple[Keyword, ...]:
    """Parse a keyword list with the pyparsing grammar; raise ProtocolError if malformed."""
    try:
        result = _GRAMMAR.parse_string(text, parse_all=True)
    except pp.ParseBaseException as exc:
        found = repr(text[exc.loc]) if exc.loc < len(text) else "end of line"
        raise ProtocolError(
            f"malformed keywords: expected ';', ',' or a keyword, found {found}", text, exc.loc
        ) from None
    return tuple(_to_keyword(g) for g in result)

"""The hub's line helpers agree with the protocol package's canonical form."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.hub.lines import cmd_done, cmd_in, cmd_queued, keywords_text
from bridge.protocol import Keyword, format_keywords, parse_hub_reply

VALUES = st.text(max_size=12)
KEYWORDS = st.lists(st.builds(
    lambda name, pairs: Keyword(name, tuple(v for v, _ in pairs), tuple(q for _, q in pairs)),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.lists(st.tuples(VALUES, st.booleans()), max_size=3)), max_size=4)


@settings(max_examples=300)
@given(KEYWORDS)
def test_fast_keyword_text_is_the_canonical_form(keywords):
    assert keywords_text(keywords) == format_keywords(keywords)


def test_diagnostics_parse_back():
    line = cmd_queued(12, 1700000000.256, 'a "b"', 3, "tcc", 4, "x\ry")
    reply = parse_hub_reply(line)
    assert (reply.commander, reply.mid, reply.actor, reply.code) == (".hub", 0, "cmds", "d")
    assert reply.keywords[0].values == ("12", "1700000000.26", 'a "b"', "3", "tcc", "4", "x\ry")
    assert cmd_in("0", "tcc", "ping") == '.hub 0 cmds d CmdIn="0","tcc","ping"'
    assert cmd_done(7, "F") == '.hub 0 cmds d CmdDone=7,"f"'

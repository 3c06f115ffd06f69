"""Differential tests against the real opscore parser (sdss-opscore, and clu's vendored copy).

opscore's ``ActorReplyParser`` reads actor lines ``mid cid code keywords`` (mid
first) and ``ReplyParser`` reads hub lines ``commander mid actor code keywords``.
On every line both accept we must agree on ids, code, keyword names and values.

How values are compared: opscore strips the quotes of a quoted value but keeps
its backslash escapes verbatim (``"a \\"b\\""`` gives ``a \\"b\\"``); we resolve
them. So a quoted value is compared after resolving opscore's escapes with our
documented rule (:func:`bridge.protocol.lexical.unescape`); bare values are
compared exactly. opscore upper-cases the code; codes are compared case-blind.

Where opscore rejects a line we accept, the line must use one of the documented
differences (protocol_specs/keywords.md, "Differences from opscore"; and
protocol_specs/line-formats.md); lines built only from the common subset must be
accepted by both.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import Keyword, parse_actor_reply, parse_hub_reply
from bridge.protocol.lexical import unescape
from tests.protocol.test_vectors import load

import clu.legacy.types.parser as clu_parser
import opscore.protocols.parser as opscore_parser

TCC_LOG = Path(__file__).resolve().parents[2] / "examples" / "tcc_sample.log"

#: Features of a line that opscore rejects and we accept, each documented in the specs.
DOCUMENTED_DIFFERENCES = {
    "no-blank-after-code": "an empty keyword list without a blank after the code",
    "leading-blanks": "blanks before the header",
    "leading-zero-id": "an id with leading zeros",
    "trailing-cr": "a CR at the end of the line",
    "name-tron-chars": "a keyword name with '-' or starting with '_'",
    "name-raw": "a keyword named raw",
    "trailing-semicolon": "a ';' after the last keyword",
    "empty-value": "an empty value ('key=', 'key=;', '1,,3', '1,')",
    "bare-value-special": "a bare value containing '=', a quote, or a character opscore "
                          "treats as whitespace",
    "commander-outside-opscore": "a hub commander without a dot, with '-', or with a "
                                 "segment not starting with a letter",
    "actor-outside-opscore": "a hub actor with '.', '-', or starting with '_'",
}

PARSERS = {"opscore": opscore_parser, "clu": clu_parser}


@pytest.fixture(scope="module", params=sorted(PARSERS))
def reference(request) -> dict[str, Any]:
    """One reference implementation: its actor-side and hub-side reply parsers."""
    module = PARSERS[request.param]
    return {"name": request.param, "actor": module.ActorReplyParser(),
            "hub": module.ReplyParser(), "error": module.ParseError}


def _try(parser, error, line):
    try:
        return parser.parse(line)
    except error:
        return None


def assert_same_keywords(ours: tuple[Keyword, ...], theirs) -> None:
    assert [k.name for k in ours] == [k.name for k in theirs]
    for mine, other in zip(ours, theirs):
        assert len(other.values) == len(mine.values), mine.name
        got = [unescape(str(v)) if q else str(v) for v, q in zip(other.values, mine.quoted)]
        assert got == list(mine.values), mine.name


def assert_same_actor_reply(line: str, theirs) -> None:
    ours = parse_actor_reply(line, mid_first=True)
    assert ours.mid == theirs.header.commandId
    assert ours.cid == theirs.header.userId
    assert ours.code.upper() == str(theirs.header.code).upper()
    assert_same_keywords(ours.keywords, theirs.keywords)


def assert_same_hub_reply(line: str, theirs) -> None:
    ours = parse_hub_reply(line)
    assert ours.commander == theirs.header.cmdrName
    assert ours.mid == theirs.header.commandId
    assert ours.actor == theirs.header.actor
    assert ours.code.upper() == str(theirs.header.code).upper()
    assert_same_keywords(ours.keywords, theirs.keywords)


# --- the real log ------------------------------------------------------------------------


def _log_replies() -> list[str]:
    with open(TCC_LOG, encoding="ascii") as f:
        return [line.rstrip("\n").split(" ", 2)[2] for line in f]


def _no_blank_after_empty_code(line: str) -> bool:
    mid, cid, rest = line.split(" ", 2)
    return len(rest) == 1


def test_log_in_actor_form(reference) -> None:
    accepted = 0
    for line in _log_replies():
        theirs = _try(reference["actor"], reference["error"], line)
        if theirs is None:
            assert _no_blank_after_empty_code(line), line
            assert parse_actor_reply(line, mid_first=True).keywords == ()
            continue
        accepted += 1
        assert_same_actor_reply(line, theirs)
    assert accepted == 139  # the 4 others are "25 11 :" and alike (legacy-protocol §6)


def test_log_in_hub_form(reference) -> None:
    accepted = 0
    for line in _log_replies():
        mid, cid, rest = line.split(" ", 2)
        hub_line = f"telrun.user{cid} {mid} tcc {rest}"
        theirs = _try(reference["hub"], reference["error"], hub_line)
        if theirs is None:
            assert _no_blank_after_empty_code(line), line
            continue
        accepted += 1
        assert_same_hub_reply(hub_line, theirs)
    assert accepted == 139


# --- the edge table ----------------------------------------------------------------------

EDGE_CASES = [c for c in load("keywords.json")["cases"] if "opscore_accepts" in c]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in EDGE_CASES])
def test_edge_table_against_opscore(reference, case) -> None:
    """The reference document's opscore column is right, and where opscore accepts we agree."""
    line = "a.b 1 act i " + case["input"]
    theirs = _try(reference["hub"], reference["error"], line)
    assert (theirs is not None) == case["opscore_accepts"]
    if theirs is not None:
        assert "keywords" in case, "opscore accepts a fragment we reject"
        assert_same_hub_reply(line, theirs)


# --- generated lines ---------------------------------------------------------------------

_name_common = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,6}", fullmatch=True).filter(
    lambda s: s.lower() != "raw")
_name_extra = st.one_of(
    st.from_regex(r"_[A-Za-z0-9_.\-]{0,5}", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,3}-[A-Za-z0-9_.\-]{0,3}", fullmatch=True),
    st.sampled_from(["raw", "RAW", "Raw"]),
)
#: opscore's bare words: no whitespace (in Python's sense), quotes, '=', ',' or ';'.
_bare_alphabet = "".join(c for c in string.printable if not c.isspace() and c not in "\"'=,;")
_bare_common = st.text(st.sampled_from(_bare_alphabet + "é\u00b5"), min_size=1, max_size=6)
_bare_extra = st.one_of(
    st.builds(lambda a, b: a + "=" + b, _bare_common, st.text(_bare_alphabet, max_size=3)),
    st.builds(lambda a, q: a + q, _bare_common, st.sampled_from(["\"", "'", "\"x\"", "'b"])),
    st.builds(lambda a, w: a + w, _bare_common, st.sampled_from(["\x0b", "\x0c", "\x1c", "\x85",
                                                                 "\xa0", "\u2028", "\u3000"])),
)
_quoted_body = st.lists(st.one_of(
    st.sampled_from(_bare_alphabet + " =,;é\t"),
    st.builds(lambda c: "\\" + c, st.sampled_from(_bare_alphabet + " \t")),
), max_size=5).map("".join)


@st.composite
def _quoted_safe(draw):
    """A quoted value whose body cannot end in an escaping backslash."""
    q = draw(st.sampled_from("\"'"))
    pieces = draw(st.lists(st.one_of(
        st.sampled_from(_bare_alphabet.replace("\\", "") + " =,;é\t" + ("'" if q == '"' else '"')),
        st.builds(lambda c: "\\" + c, st.sampled_from(_bare_alphabet + " \t" + q)),
    ), max_size=5))
    return q + "".join(pieces) + q


@st.composite
def generated_line(draw) -> tuple[str, str, set[str]]:
    """(form, line, features): a reply line and the documented differences it uses."""
    features: set[str] = set()

    def pick(common, extra, feature):
        if draw(st.integers(0, 9)) == 7:
            features.add(feature)
            return draw(extra)
        return draw(common)

    ws = st.text(" \t", max_size=2)
    keywords = []
    for _ in range(draw(st.integers(0, 3))):
        name = pick(_name_common, _name_extra, "name-tron-chars")
        if name.lower() == "raw":
            features.discard("name-tron-chars")
            features.add("name-raw")
        if draw(st.booleans()):
            keywords.append(name)
            continue
        vals = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.integers(0, 9))
            if kind == 7:
                features.add("empty-value")
                vals.append("")
            elif kind == 8:
                features.add("bare-value-special")
                vals.append(draw(_bare_extra))
            elif kind < 4:
                vals.append(draw(_quoted_safe()))
            else:
                vals.append(draw(_bare_common))
        sep = draw(ws) + "," + draw(ws)
        keywords.append(name + draw(ws) + "=" + draw(ws) + sep.join(vals))
    body = ""
    for i, kw in enumerate(keywords):
        body += (draw(ws) + ";" + draw(ws) if i else "") + kw
    if keywords and draw(st.integers(0, 9)) == 7:
        features.add("trailing-semicolon")
        body += draw(ws) + ";"
    code = draw(st.sampled_from(">iwde:f!IWDEF"))
    after_code = " " + draw(ws)
    if not body and draw(st.integers(0, 4)) == 3:
        features.add("no-blank-after-code")
        after_code = ""
    lead = ""
    if draw(st.integers(0, 9)) == 7:
        features.add("leading-blanks")
        lead = draw(st.sampled_from([" ", "\t", "  "]))
    tail = ""
    if draw(st.integers(0, 19)) == 7:
        features.add("trailing-cr")
        tail = "\r"
    mid, cid = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
    mid_text, cid_text = str(mid), str(cid)
    if draw(st.integers(0, 9)) == 7:
        features.add("leading-zero-id")
        mid_text = "0" + mid_text
    form = draw(st.sampled_from(["actor", "hub"]))
    if form == "actor":
        head = f"{lead}{mid_text} {cid_text} {code}{after_code}"
    else:
        commander = pick(
            st.from_regex(r"([A-Za-z][A-Za-z0-9_]{0,3})?\.[A-Za-z][A-Za-z0-9_]{0,3}"
                          r"(\.[A-Za-z][A-Za-z0-9_]{0,3})?", fullmatch=True),
            st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,5}", fullmatch=True),
                      st.from_regex(r"[A-Za-z]{1,3}\.[_0-9][A-Za-z0-9_]{0,3}", fullmatch=True),
                      st.from_regex(r"[A-Za-z]{1,3}-[a-z]{0,2}\.[A-Za-z]{1,3}", fullmatch=True)),
            "commander-outside-opscore")
        actor = pick(
            st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True),
            st.one_of(st.from_regex(r"[A-Za-z]{1,3}[.\-][A-Za-z]{1,3}", fullmatch=True),
                      st.from_regex(r"_[A-Za-z0-9_]{0,4}", fullmatch=True)),
            "actor-outside-opscore")
        head = f"{lead}{commander} {mid_text} {actor} {code}{after_code}"
    return form, head + body + tail, features


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_line())
def test_generated_lines_against_opscore(sample) -> None:
    form, line, features = sample
    assert features <= set(DOCUMENTED_DIFFERENCES)
    parser = _OPSCORE_ACTOR if form == "actor" else _OPSCORE_HUB
    # we accept every generated line
    ours = parse_actor_reply(line, mid_first=True) if form == "actor" else parse_hub_reply(line)
    theirs = _try(parser, opscore_parser.ParseError, line)
    if theirs is None:
        assert features, f"opscore rejects a line of the common subset: {line!r}"
        return
    assert ours is not None
    if form == "actor":
        assert_same_actor_reply(line, theirs)
    else:
        assert_same_hub_reply(line, theirs)


_OPSCORE_ACTOR = opscore_parser.ActorReplyParser()
_OPSCORE_HUB = opscore_parser.ReplyParser()

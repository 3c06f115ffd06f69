"""Property tests of the protocol core (hypothesis).

* the regex fast path never contradicts the pyparsing grammar (when the fast path
  answers, the grammar gives the same keywords; when it returns None, the grammar
  decides), and :func:`parse_keywords` is exactly the grammar;
* canonical output is stable: ``format(parse(format(parse(x)))) == format(parse(x))``;
* ``parse(format(kws)) == kws`` for keywords whose quoted flags are consistent;
* the untyped JSON mapping round-trips JSON bodies through text;
* header formatters and parsers are inverse on well-formed headers.

The strategies here are also used by test_opscore_diff.py and test_fuzz.py.
"""

from __future__ import annotations

import math
import string
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge.protocol import (
    REPLY_CODES,
    ActorCommand,
    ActorReply,
    HubCommand,
    HubReply,
    Keyword,
    ProtocolError,
    format_actor_command,
    format_actor_reply,
    format_hub_command,
    format_hub_reply,
    format_keywords,
    json_to_keywords,
    keywords_to_json,
    needs_quotes,
    parse_actor_command,
    parse_actor_reply,
    parse_hub_command,
    parse_hub_reply,
    parse_keywords,
)
from bridge.protocol.fastpath import parse_keywords_fast
from bridge.protocol.grammar import parse_keywords_grammar

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --- strategies: the grammar's pieces ----------------------------------------------------

blanks = st.text(" \t", max_size=2)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,7}", fullmatch=True)
#: Characters that matter to the grammar, plus a few ordinary and non-ASCII ones.
SPECIAL = " \t,;=\"'\\\r\nab1.-_é\x00\u2028"
_bare_chars = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits + "._+-~!@#$%^&*()[]{}|<>:?/=\"'\\é"),
    st.characters(blacklist_characters=" \t,;", blacklist_categories=("Cs",)),
)
bare_values = st.text(_bare_chars, min_size=1, max_size=8).filter(lambda s: s[0] not in "\"'")


@st.composite
def quoted_values(draw: st.DrawFn) -> str:
    """A quoted token as written on the wire: body characters or backslash escapes."""
    quote = draw(st.sampled_from("\"'"))
    plain = st.characters(blacklist_characters=quote + "\\", blacklist_categories=("Cs",))
    escape = st.builds(lambda c: "\\" + c, st.one_of(
        st.sampled_from("\\\"'nrtq"), st.just("u00e9"), st.just("u12"),
        st.characters(blacklist_categories=("Cs",))))
    body = draw(st.lists(st.one_of(plain, escape), max_size=6))
    return quote + "".join(body) + quote


values = st.one_of(bare_values, quoted_values(), st.just(""))


@st.composite
def keyword_texts(draw: st.DrawFn) -> str:
    """One keyword in the grammar: ``name``, ``name=``, ``name = v1 , v2``."""
    name = draw(names)
    if draw(st.booleans()):
        return name
    members = draw(st.lists(values, min_size=1, max_size=4))
    sep = draw(blanks) + "," + draw(blanks)
    return name + draw(blanks) + "=" + draw(blanks) + sep.join(members)


@st.composite
def keyword_list_texts(draw: st.DrawFn) -> str:
    """A whole keyword list in the grammar (may also have a trailing ``;``)."""
    items = draw(st.lists(keyword_texts(), max_size=4))
    text = draw(blanks)
    for i, item in enumerate(items):
        if i:
            text += draw(blanks) + ";" + draw(blanks)
        text += item
    if items and draw(st.booleans()):
        text += draw(blanks) + ";"
    return text + draw(blanks)


@st.composite
def noisy(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """``base`` with a few characters inserted, deleted or replaced."""
    text = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        ch = draw(st.one_of(st.sampled_from(SPECIAL), st.characters(blacklist_categories=("Cs",))))
        if op == "insert":
            text = text[:pos] + ch + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1:]
        else:
            text = text[:pos] + ch + text[pos + 1:]
    return text


keyword_lists_and_noise = st.one_of(
    keyword_list_texts(), noisy(keyword_list_texts()), st.text(SPECIAL, max_size=12))


@st.composite
def consistent_keywords(draw: st.DrawFn) -> Keyword:
    """A keyword whose quoted flags are possible: a value is bare only if it can be."""
    name = draw(names)
    vals = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
                         max_size=4))
    flags = tuple(True if needs_quotes(v) else draw(st.booleans()) for v in vals)
    return Keyword(name, tuple(vals), flags)


keyword_tuples = st.lists(consistent_keywords(), max_size=5).map(tuple)

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), finite_floats,
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
json_values = st.one_of(json_scalars, st.just([]), st.lists(json_scalars, min_size=2, max_size=5))
json_bodies = st.dictionaries(names, json_values, max_size=6)


def same_json(a: Any, b: Any) -> bool:
    """Equality that compares types too (True is not 1, 1 is not 1.0, -0.0 is not 0.0)."""
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(same_json(a[k], b[k]) for k in a))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(same_json(x, y) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


# --- fast path versus grammar ------------------------------------------------------------


def _grammar(text: str) -> tuple[Keyword, ...] | ProtocolError:
    try:
        return parse_keywords_grammar(text)
    except ProtocolError as exc:
        return exc


@SETTINGS
@given(keyword_lists_and_noise)
@example('key="a\tb"')  # a tab inside quotes (pyparsing expands tabs unless told not to)
@example('a="x\\\ny"')  # backslash-newline inside quotes
def test_fast_path_never_contradicts_grammar(text: str) -> None:
    fast = parse_keywords_fast(text)
    if fast is not None:
        assert _grammar(text) == fast


@SETTINGS
@given(keyword_lists_and_noise)
def test_parse_keywords_is_the_grammar(text: str) -> None:
    """Same keywords when the grammar accepts, same error position when it does not."""
    expected = _grammar(text)
    try:
        got = parse_keywords(text)
    except ProtocolError as exc:
        assert isinstance(expected, ProtocolError)
        assert exc.position == expected.position
    else:
        assert got == expected


@settings(SETTINGS, max_examples=50)
@given(keyword_list_texts())
def test_generated_keyword_lists_are_accepted(text: str) -> None:
    """The generator builds only texts of the grammar: the grammar accepts them all."""
    assert not isinstance(_grammar(text), ProtocolError)


def test_error_position_counts_a_tab_as_one_column() -> None:
    """Minimal case: ``a=1<TAB>b=2`` fails at column 4 (the ``b``), as ``a=1 b=2`` does."""
    for text in ("a=1\tb=2", "a=1 b=2"):
        try:
            parse_keywords(text)
        except ProtocolError as exc:
            assert exc.position == 4, (text, exc.position)
        else:
            raise AssertionError(f"{text!r} must be rejected")


def test_grammar_keeps_a_tab_inside_quotes() -> None:
    assert parse_keywords_grammar('key="a\tb"') == (Keyword("key", ("a\tb",), (True,)),)


def test_grammar_accepts_backslash_newline_inside_quotes_like_the_fast_path() -> None:
    text = 'a="x\\\ny"'
    assert parse_keywords_fast(text) == (Keyword("a", ("x\\\ny",), (True,)),)
    assert parse_keywords_grammar(text) == parse_keywords_fast(text)


# --- canonical form ----------------------------------------------------------------------


@SETTINGS
@given(keyword_lists_and_noise)
def test_canonical_form_is_stable(text: str) -> None:
    try:
        first = parse_keywords(text)
    except ProtocolError:
        return
    canonical = format_keywords(first)
    again = parse_keywords(canonical)
    assert format_keywords(again) == canonical
    assert [(k.name, k.values) for k in again] == [(k.name, k.values) for k in first]
    for k0, k1 in zip(first, again):
        for v, q0, q1 in zip(k0.values, k0.quoted, k1.quoted):
            # a bare value stays bare unless it could not be written bare
            assert q1 == q0 or (not q0 and needs_quotes(v))
    assert same_json(keywords_to_json(again), keywords_to_json(first))


@SETTINGS
@given(keyword_tuples)
def test_parse_inverts_format(keywords: tuple[Keyword, ...]) -> None:
    assert parse_keywords(format_keywords(keywords)) == keywords


# --- JSON mapping ------------------------------------------------------------------------


@SETTINGS
@given(json_bodies)
@example({"a": "42", "b": "T", "c": "", "d": -0.0, "e": 1e16, "f": [True, 1]})
def test_json_round_trip(body: dict[str, Any]) -> None:
    text = format_keywords(json_to_keywords(body))
    back = keywords_to_json(parse_keywords(text))
    assert same_json(back, body), text


# --- headers -----------------------------------------------------------------------------

ids = st.integers(0, 10**12)
codes = st.sampled_from(sorted(REPLY_CODES))
commanders = st.from_regex(r"[A-Za-z_.][A-Za-z0-9_.\-]{0,10}", fullmatch=True)
actors = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,10}", fullmatch=True)
dotted = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}(\.[A-Za-z_][A-Za-z0-9_]{0,4}){0,2}",
                       fullmatch=True)
command_commanders = st.from_regex(r"[A-Za-z0-9_]{0,4}(\.[A-Za-z0-9_]{1,4}){1,3}", fullmatch=True)
#: Command texts that cannot be mistaken for a header: the first word is a plain word.
command_texts = st.builds(
    lambda head, tail: (head + " " + tail).rstrip(" \t"),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,6}", fullmatch=True),
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
            max_size=12),
)


@SETTINGS
@given(ids, ids, codes, keyword_tuples, st.booleans())
def test_actor_reply_round_trip(cid, mid, code, keywords, mid_first) -> None:
    reply = ActorReply(cid, mid, code, keywords)
    assert parse_actor_reply(format_actor_reply(reply, mid_first), mid_first) == reply


@SETTINGS
@given(commanders, ids, actors, codes, keyword_tuples)
def test_hub_reply_round_trip(commander, mid, actor, code, keywords) -> None:
    reply = HubReply(commander, mid, actor, code, keywords)
    assert parse_hub_reply(format_hub_reply(reply)) == reply


@SETTINGS
@given(st.one_of(st.none(), command_commanders), st.one_of(st.none(), ids), st.booleans(),
       ids, command_texts)
def test_actor_command_round_trip(commander, mid, with_cid, cid, text) -> None:
    # The cid form exists only without a commander.
    has_cid = with_cid and mid is not None and not commander
    command = ActorCommand(text, mid, commander, cid if has_cid else None)
    assert parse_actor_command(format_actor_command(command)) == command


@SETTINGS
@given(st.one_of(st.just(""), dotted), ids, dotted, st.one_of(st.just(""), command_texts))
def test_hub_command_round_trip(commander, mid, actor, text) -> None:
    command = HubCommand(commander, mid, actor, text)
    line = format_hub_command(command)
    assert parse_hub_command(line, with_commander=bool(commander)) == command

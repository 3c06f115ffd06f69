"""The keyword grammar, lenient recovery, canonical output and JSON mapping, rule by rule.

Each test pins one decision documented in protocol_specs/keywords.md or
protocol_specs/json-mapping.md; the conformance vectors cover the edge table.
"""

from __future__ import annotations

import pickle

import pytest

from bridge.protocol import (
    UNPARSED,
    Keyword,
    ProtocolError,
    format_keyword,
    format_keywords,
    format_value,
    json_to_keyword,
    json_to_keywords,
    json_to_value,
    keyword_to_json,
    keywords_to_json,
    needs_quotes,
    parse_keywords,
    parse_keywords_lenient,
    quote,
    value_to_json,
)


def kw(name: str, *values: str, quoted: tuple[bool, ...] | None = None) -> Keyword:
    return Keyword(name, values, quoted)


def error_position(text: str) -> int:
    with pytest.raises(ProtocolError) as info:
        parse_keywords(text)
    return info.value.position


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "_a", "_", "a.b", "a-b", "A_1.b-c", "Key.sub", "UTC_TAI",
                                  "raw", "RAW"])
def test_names_accepted(name: str) -> None:
    assert parse_keywords(f"{name}=1") == (kw(name, "1"),)
    assert parse_keywords(name) == (kw(name),)


@pytest.mark.parametrize("name", ["1a", "-a", ".a", "é", "a b"])
def test_names_rejected(name: str) -> None:
    with pytest.raises(ProtocolError):
        parse_keywords(f"{name}=1")


def test_names_keep_their_case() -> None:
    assert [k.name for k in parse_keywords("AbC=1; abc=2; ABC")] == ["AbC", "abc", "ABC"]


# --- separators and blanks ---------------------------------------------------------------


def test_blanks_around_separators_are_ignored() -> None:
    expected = (kw("a", "1", "2"), kw("b"), kw("c", "x"))
    for text in ("a=1,2;b;c=x", " a = 1 , 2 ; b ; c = x ", "\ta\t=\t1\t,\t2\t;\tb\t;\tc=x\t"):
        assert parse_keywords(text) == expected


def test_one_trailing_separator_is_allowed() -> None:
    assert parse_keywords("a;") == parse_keywords("a ; ") == (kw("a"),)


@pytest.mark.parametrize("text, position", [
    (";", 0), ("; a", 0), ("a;;", 2), ("a;;b", 2), ("a; ;b", 3), ("a=1;;", 4),
])
def test_leading_or_doubled_separator_is_an_error(text: str, position: int) -> None:
    assert error_position(text) == position


@pytest.mark.parametrize("text, position", [
    ("a b", 2), ("a=1 b=2", 4), ("a=1 b", 4), ('a="x" b', 6), ("a=1,2 b=3", 6),
])
def test_whitespace_alone_does_not_separate_keywords(text: str, position: int) -> None:
    assert error_position(text) == position


def test_empty_and_blank_lists() -> None:
    assert parse_keywords("") == parse_keywords("  \t ") == ()


def test_cr_and_lf_are_not_blanks() -> None:
    # framing removes line terminators; inside a line they are ordinary characters
    assert parse_keywords("a=1\r") == (kw("a", "1\r"),)
    with pytest.raises(ProtocolError):
        parse_keywords("a\r=1")


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ('"a b"', "a b"), ("'a b'", "a b"), ('""', ""), ("''", ""),
    (r'"a\"b"', 'a"b'), (r"'a\'b'", "a'b"), (r'"a\'b"', "a'b"), (r"'a\"b'", 'a"b'),
    (r'"a\\b"', "a\\b"), (r'"a\nb"', "a\nb"), (r'"a\rb"', "a\rb"), (r'"a\tb"', "a\tb"),
    (r'"caf\u00e9"', "café"), (r'"\u00E9"', "é"),
    (r'"a\qb"', "a\\qb"), (r'"\u12"', "\\u12"), (r'"a\/b"', "a\\/b"),
    ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'), ('"a;b,c=d"', "a;b,c=d"),
])
def test_quoted_values_resolve_escapes(text: str, value: str) -> None:
    assert parse_keywords("k=" + text) == (kw("k", value, quoted=(True,)),)


@pytest.mark.parametrize("value", [
    "a=b", 'abc"def"', "a'b", "=1", 'x"', "b\\c", "é", "(1", "a:b", "?", "-", "+5", "0x1F",
    "x\x01y",
])
def test_bare_values_are_any_run_without_blank_comma_semicolon(value: str) -> None:
    assert parse_keywords("k=" + value) == (kw("k", value),)


@pytest.mark.parametrize("text, values", [
    ("k=1,,3", ("1", "", "3")), ("k=1,", ("1", "")), ("k=,", ("", "")), ("k=,1", ("", "1")),
    ("k= , ", ("", "")),
])
def test_empty_list_members_are_empty_strings(text: str, values: tuple[str, ...]) -> None:
    assert parse_keywords(text) == (kw("k", *values),)


@pytest.mark.parametrize("text", ["k=", "k= ", "k=;", "k= ;", "k=\t"])
def test_equals_with_nothing_after_it_is_a_bare_keyword(text: str) -> None:
    assert parse_keywords(text) == (kw("k"),)


@pytest.mark.parametrize("text, ok", [
    ('k="x"', True), ('k="x" ', True), ('k="x" ,y', True), ('k="x";y', True),
    ('k="x" ; y', True), ('k="x"y', False), ('k="x""y"', False), ('k="x" y', False),
    ("k='x'y", False),
])
def test_a_quoted_value_ends_at_blanks_then_separator_or_end(text: str, ok: bool) -> None:
    if ok:
        assert parse_keywords(text)[0].values[0] == "x"
    else:
        with pytest.raises(ProtocolError):
            parse_keywords(text)


@pytest.mark.parametrize("text, position", [
    ('k="abc', 2), ("k='", 2), ('k="x\\"', 2), ('a=1; k="', 7),
])
def test_unterminated_quotes_are_errors_at_the_quote(text: str, position: int) -> None:
    assert error_position(text) == position


def test_duplicates_are_kept_in_order() -> None:
    assert parse_keywords("a=1; b; a=2") == (kw("a", "1"), kw("b"), kw("a", "2"))


def test_quoted_flag_is_per_value() -> None:
    assert parse_keywords("k=1,\"2\",'3'") == (kw("k", "1", "2", "3", quoted=(False, True, True)),)


def test_errors_carry_reason_line_and_position() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_keywords("a=1 b")
    assert info.value.line == "a=1 b" and info.value.position == 4
    assert "b" in info.value.reason
    assert info.value.to_json() == {"reason": info.value.reason, "position": 4}


# --- lenient recovery --------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("a=1", "a=1"),
    ("a=1 b=2", "a=1; b=2"),
    ("key=a b", "key=a; b"),
    ("a=1;;b=2", 'a=1; UNPARSEDTEXT=";b=2"'),
    ("a b", 'UNPARSEDTEXT="a b"'),
    ("; a=1", 'UNPARSEDTEXT="; a=1"'),
    ('a=1; b="x', 'a=1; UNPARSEDTEXT="b=\\"x"'),
    ("apo is connected", 'UNPARSEDTEXT="apo is connected"'),
    ('raw=anything; here "x', 'raw=anything; UNPARSEDTEXT="here \\"x"'),
    ("  lone  ", "lone"),
    ("a=1 junk here", 'a=1; UNPARSEDTEXT="junk here"'),
])
def test_lenient_keeps_what_parses(text: str, expected: str) -> None:
    assert format_keywords(parse_keywords_lenient(text)) == expected


def test_lenient_gives_up_after_eight_recoveries() -> None:
    text = " ".join(f"k{i}=1" for i in range(12))
    result = parse_keywords_lenient(text)
    assert [k.name for k in result[:9]] == [f"k{i}" for i in range(9)]
    assert result[9:] == (Keyword(UNPARSED, ("k9=1 k10=1 k11=1",), (True,)),)


def test_lenient_unparsed_text_survives_formatting() -> None:
    raw = 'x "y\\z" \t;;'
    (unparsed,) = parse_keywords_lenient(raw)
    assert unparsed.name == "UNPARSEDTEXT" and unparsed.values == (raw.strip(" \t"),)
    assert parse_keywords(format_keywords((unparsed,))) == (unparsed,)


# --- canonical form ----------------------------------------------------------------------

SAFE = "ABCxyz019._+-~!@#$%^&*()[]{}|<>:?/"


@pytest.mark.parametrize("ch", list(SAFE))
def test_safe_characters_stay_bare(ch: str) -> None:
    assert not needs_quotes("a" + ch)
    assert format_value("a" + ch) == "a" + ch


@pytest.mark.parametrize("value", ["", " ", "\t", ",", ";", "=", '"', "'", "\\", "é", "\n",
                                   "a b", "x\x00"])
def test_other_values_are_quoted(value: str) -> None:
    assert needs_quotes(value)
    assert format_value(value).startswith('"')


@pytest.mark.parametrize("value, written", [
    ("a b", '"a b"'), ('say "hi"', r'"say \"hi\""'), ("a\\b", r'"a\\b"'),
    ("a\nb", r'"a\nb"'), ("a\rb", r'"a\rb"'), ("a\tb", '"a\tb"'), ("\x00", r'"\u0000"'),
    ("\x1f\x7f", r'"\u001f\u007f"'), ("it's", "\"it's\""), ("é", '"é"'), ("", '""'),
])
def test_quoting_escapes(value: str, written: str) -> None:
    assert quote(value) == written
    assert parse_keywords("k=" + written)[0].values == (value,)


def test_quoted_flag_forces_quotes() -> None:
    assert format_value("42", quoted=True) == '"42"'
    assert format_value("42") == "42"


def test_format_keyword_and_list() -> None:
    assert format_keyword(kw("flag")) == "flag"
    assert format_keyword(kw("k", "1", "a b", quoted=(False, True))) == 'k=1,"a b"'
    assert format_keywords([kw("a", "1"), kw("b"), kw("c", "x", quoted=(True,))]) == \
        'a=1; b; c="x"'
    assert format_keywords([]) == ""


def test_single_quotes_are_requoted_with_double_quotes() -> None:
    assert format_keywords(parse_keywords("text='say \"hi\"'")) == r'text="say \"hi\""'


# --- the Keyword model -------------------------------------------------------------------


def test_keyword_model() -> None:
    k = Keyword("k", ("1", "x"))
    assert k.quoted == (False, False) and k.name == "k" and k.values == ("1", "x")
    assert k == ("k", ("1", "x"), (False, False))
    assert pickle.loads(pickle.dumps(k)) == k and type(pickle.loads(pickle.dumps(k))) is Keyword
    assert eval(repr(k), {"Keyword": Keyword}) == k
    with pytest.raises(ValueError):
        Keyword("k", ("1",), (True, False))
    assert Keyword.of("k", "1", "a b") == Keyword("k", ("1", "a b"), (False, True))
    assert Keyword.of("k", "1", quoted=True) == Keyword("k", ("1",), (True,))


# --- JSON mapping ------------------------------------------------------------------------


@pytest.mark.parametrize("text, quoted, value", [
    ("T", False, True), ("F", False, False), ("None", False, None),
    ("T", True, "T"), ("42", True, "42"), ("", True, ""), ("", False, ""),
    ("0", False, 0), ("-0", False, 0), ("42", False, 42), ("-7", False, -7),
    ("99999999999999999999", False, 99999999999999999999),
    ("1.5", False, 1.5), ("-2e-3", False, -0.002), ("1E5", False, 100000.0),
    ("1.5e+3", False, 1500.0), ("1e-400", False, 0.0),
    ("007", False, "007"), ("+5", False, "+5"), ("0x1F", False, "0x1F"), ("1_000", False, "1_000"),
    ("NaN", False, "NaN"), ("nan", False, "nan"), ("inf", False, "inf"), ("-inf", False, "-inf"),
    ("1e400", False, "1e400"), ("1.", False, "1."), (".5", False, ".5"), ("?", False, "?"),
    ("t", False, "t"), ("true", False, "true"), ("none", False, "none"),
])
def test_value_to_json(text: str, quoted: bool, value) -> None:
    got = value_to_json(text, quoted)
    assert got == value and type(got) is type(value)


def test_keyword_to_json_shapes() -> None:
    assert keyword_to_json(kw("k")) == []
    assert keyword_to_json(kw("k", "1")) == 1
    assert keyword_to_json(kw("k", "1", "x")) == [1, "x"]


def test_duplicates_in_json_keep_the_last_value_in_the_first_position() -> None:
    body = keywords_to_json(parse_keywords("a=1; b; a=3"))
    assert body == {"a": 3, "b": []} and list(body) == ["a", "b"]


@pytest.mark.parametrize("value, text, quoted", [
    (True, "T", False), (False, "F", False), (None, "None", False),
    (0, "0", False), (-3, "-3", False), (1.5, "1.5", False), (1.0, "1.0", False),
    (1e16, "1e+16", False), (float("nan"), "nan", False), (float("inf"), "inf", False),
    ("x", "x", False), ("NaN", "NaN", False), ("007", "007", False),
    ("42", "42", True), ("-0", "-0", True), ("1.5", "1.5", True), ("T", "T", True),
    ("None", "None", True), ("", "", True), ("a b", "a b", True),
    ([1, 2], "[1,2]", True), ({"a": [1, "é"]}, '{"a":[1,"é"]}', True),
])
def test_json_to_value(value, text: str, quoted: bool) -> None:
    assert json_to_value(value) == (text, quoted)


def test_json_to_keyword_shapes() -> None:
    assert json_to_keyword("k", []) == kw("k")
    assert json_to_keyword("k", [5]) == kw("k", "5")
    assert json_to_keyword("k", (1, "a b")) == kw("k", "1", "a b", quoted=(False, True))
    assert json_to_keywords({"b": 1, "a": None}) == (kw("b", "1"), kw("a", "None"))


def test_non_finite_floats_come_back_as_strings() -> None:
    text = format_keywords(json_to_keywords({"a": float("nan"), "b": float("-inf")}))
    assert text == "a=nan; b=-inf"
    assert keywords_to_json(parse_keywords(text)) == {"a": "nan", "b": "-inf"}


def test_json_keys_that_are_not_keyword_names_are_made_into_names():
    from bridge.protocol import json_to_keywords, parse_keywords

    line = format_keywords(json_to_keywords({"a b": 1, "1x": 2, "": 3, "ok.sub-x": 4, "é": 5}))
    assert line == "a_b=1; _1x=2; _=3; ok.sub-x=4; _=5"
    assert [k.name for k in parse_keywords(line)] == ["a_b", "_1x", "_", "ok.sub-x", "_"]

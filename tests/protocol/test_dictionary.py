"""Keyword dictionaries: loading, whole-keyword validation, typed JSON, writing back, the TCC log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opscore.protocols import keys as ops_keys
from opscore.protocols import messages as ops_messages
from opscore.protocols import types as ops

from bridge.protocol import Keyword, jsonmap, parse_actor_reply, parse_keywords
from bridge.protocol.dictionary import DictionaryError, KeywordDictionary, TypedKeyword

ROOT = Path(__file__).resolve().parents[2]
DICTS = ROOT / "protocol_specs" / "dictionaries"
TCC_LOG = ROOT / "examples" / "tcc_sample.log"


def make(keys, **top):
    return KeywordDictionary.from_dict({"actor": "x", "version": [1, 0], "keys": keys, **top})


def kw(text):
    (keyword,) = parse_keywords(text)
    return keyword


SAMPLE = make(
    {
        "AirTemp": {"values": [{"type": "float", "units": "C", "invalid": "NaN"}]},
        "AxePos": {"values": [{"type": "float", "invalid": "NaN", "repeat": 3}]},
        "Coeffs": {"values": [{"type": "float", "repeat": [0]}]},
        "Range": {"values": [{"type": "int"}, {"type": "float", "repeat": [1, 3]}]},
        "ObjSys": {"values": [{"type": "enum", "labels": ["ICRS", "FK5", "None"]}, {"type": "float"}]},
        "Boresight": {"values": [{"type": "pvt", "invalid": "NaN"}, {"type": "pvt", "invalid": "NaN"}]},
        "RotPos": {"values": [{"type": "pvt"}]},
        "limit_switches": {"values": [{"type": "bool", "labels": ["F", "T"], "repeat": 2}]},
        "one": {"values": [{"type": "string", "repeat": 1}]},
        "Moved": {"values": []},
        "Started": {},
        "Status": {"values": [{"type": "uint", "invalid": "NaN", "format": "#x"}]},
    }
)


# -- loading and checking ----------------------------------------------------------

def test_the_example_dictionaries_load():
    for name, count in (("tcc", 50), ("shutter", 10), ("camera", 18)):
        dictionary = KeywordDictionary.load(DICTS / f"{name}.json")
        assert dictionary.actor == name
        assert len(dictionary) == count
        assert dictionary.source == str(DICTS / f"{name}.json")


def test_to_dict_gives_back_the_same_dictionary():
    for path in DICTS.glob("*.json"):
        dictionary = KeywordDictionary.load(path)
        again = KeywordDictionary.from_dict(json.loads(json.dumps(dictionary.to_dict())))
        assert again == dictionary
        assert again.to_dict() == json.loads(path.read_text())


def test_toml_files_load_too(tmp_path):
    path = tmp_path / "mini.toml"
    path.write_text(
        'actor = "mini"\nversion = [1, 2]\n'
        '[keys.temp]\nhelp = "T"\nvalues = [{type = "float", invalid = "NaN"}]\n'
        '[keys.tail]\nvalues = [{type = "int"}, {type = "string", repeat = [0]}]\n'
    )
    dictionary = KeywordDictionary.load(path)
    assert dictionary.version == (1, 2)
    assert dictionary.convert(kw("tail=1,a,b")).to_json() == [1, "a", "b"]


BAD_DOCUMENTS = [
    ({"version": [1, 0], "keys": {}}, "", "missing field 'actor'"),
    ({"actor": "a b", "version": [1, 0], "keys": {}}, "actor", "not a valid actor name"),
    ({"actor": "x", "keys": {}}, "", "missing field 'version'"),
    ({"actor": "x", "version": [1], "keys": {}}, "version", "expected [major, minor]"),
    ({"actor": "x", "version": [1, -1], "keys": {}}, "version[1]", "non-negative"),
    ({"actor": "x", "version": [1, 0]}, "keys", "expected an object"),
    ({"actor": "x", "version": [1, 0], "keys": {}, "extra": 1}, "extra", "unknown field"),
    ({"actor": "x", "version": [1, 0], "keys": {"a=b": {}}}, "keys.a=b", "not a valid keyword name"),
    ({"actor": "x", "version": [1, 0], "keys": {"Temp": {}, "temp": {}}}, "keys.temp", "duplicate"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"value": []}}}, "keys.t.value", "unknown field"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": {}}}}, "keys.t.values", "list"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "complex"}]}}},
     "keys.t.values[0].type", "expected one of"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "labels": []}]}}},
     "keys.t.values[0].labels", "unknown field"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "enum"}]}}},
     "keys.t.values[0].labels", "list of strings"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "enum", "labels": []}]}}},
     "keys.t.values[0].labels", "at least one label"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "enum", "labels": ["a", "A"]}]}}},
     "keys.t.values[0].labels", "differ ignoring case"),
    ({"actor": "x", "version": [1, 0],
      "keys": {"t": {"values": [{"type": "enum", "labels": ["a"], "label_help": []}]}}},
     "keys.t.values[0].label_help", "one help text per label"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "bool", "labels": ["T", "T"]}]}}},
     "keys.t.values[0].labels", "two different labels"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "bits", "fields": ["a:40"]}]}}},
     "keys.t.values[0].fields", "32 bits"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "repeat": -1}]}}},
     "keys.t.values[0].repeat", "non-negative"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "repeat": [3, 2]}]}}},
     "keys.t.values[0].repeat", "max is smaller than min"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "repeat": "2"}]}}},
     "keys.t.values[0].repeat", "expected a count"),
    ({"actor": "x", "version": [1, 0],
      "keys": {"t": {"values": [{"type": "int", "repeat": [1]}, {"type": "int"}]}}},
     "keys.t.values[0].repeat", "only the last value type may vary"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "string", "format": "d"}]}}},
     "keys.t.values[0].format", "unknown field"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "format": "q"}]}}},
     "keys.t.values[0].format", "not a usable format spec"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "float", "format": ",.2f"}]}}},
     "keys.t.values[0].format", "does not read back"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "format": "x"}]}}},
     "keys.t.values[0].format", "does not read back"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "name": "1x"}]}}},
     "keys.t.values[0].name", "not an identifier"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"values": [{"type": "int", "invalid": 1}]}}},
     "keys.t.values[0].invalid", "expected a string"),
    ({"actor": "x", "version": [1, 0], "keys": {"t": {"do_cache": "yes"}}}, "keys.t.do_cache", "true or false"),
]


@pytest.mark.parametrize("document, where, reason", BAD_DOCUMENTS)
def test_malformed_dictionaries_raise_one_clear_error(document, where, reason):
    with pytest.raises(DictionaryError) as info:
        KeywordDictionary.from_dict(document, source="bad.json")
    error = info.value
    assert error.source == "bad.json"
    assert error.where == where
    assert reason in error.reason
    assert str(error).startswith("bad.json: ")


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(DictionaryError, match="missing.json: cannot read"):
        KeywordDictionary.load(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"actor": "x",')
    with pytest.raises(DictionaryError, match="broken.json: not valid json"):
        KeywordDictionary.load(broken)
    dup = tmp_path / "dup.json"
    dup.write_text('{"actor": "x", "actor": "y", "version": [1, 0], "keys": {}}')
    with pytest.raises(DictionaryError, match="duplicate field 'actor'"):
        KeywordDictionary.load(dup)
    nan = tmp_path / "nan.json"
    nan.write_text('{"actor": "x", "version": [1, NaN], "keys": {}}')
    with pytest.raises(DictionaryError, match="NaN is not allowed"):
        KeywordDictionary.load(nan)
    bad = tmp_path / "bad.toml"
    bad.write_text('actor = "x"\nversion = [1, 0]\n[keys.t]\nvalues = [{type = "nope"}]\n')
    with pytest.raises(DictionaryError) as info:
        KeywordDictionary.load(bad)
    assert info.value.where == "keys.t.values[0].type" and info.value.source == str(bad)


# -- names -------------------------------------------------------------------------

def test_names_match_ignoring_case_and_keep_the_dictionary_spelling():
    assert "airtemp" in SAMPLE and "AIRTEMP" in SAMPLE and "AirTemp" in SAMPLE
    assert SAMPLE["airTEMP"].name == "AirTemp"
    typed = SAMPLE.convert(kw("AIRTEMP=4.40"))
    assert typed.ok and typed.name == "AirTemp" and typed.keyword.name == "AIRTEMP"
    assert SAMPLE.reply_to_json([kw("airtemp=1")]) == {"AirTemp": 1.0}
    assert SAMPLE.reply_to_json([kw("airtemp=1")], dictionary_names=False) == {"airtemp": 1.0}
    assert SAMPLE.convert(kw("unknown=1")) is None


# -- whole-keyword validation ----------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("AirTemp=4.40", 4.4),
        ("AirTemp=NaN", None),
        ("AirTemp=nan", None),
        ("AxePos=1,2,3", [1.0, 2.0, 3.0]),
        ("AxePos=1,nan,3", [1.0, None, 3.0]),
        ("Coeffs", []),
        ("Coeffs=1", [1.0]),
        ("Coeffs=1,2,3,4,5", [1.0, 2.0, 3.0, 4.0, 5.0]),
        ("Range=1,2.5", [1, 2.5]),
        ("Range=1,2.5,3,4", [1, 2.5, 3.0, 4.0]),
        ("ObjSys=fk5, 2000.0", ["FK5", 2000.0]),
        ("ObjSys=None,0", ["None", 0.0]),
        ("Boresight=1,2,3,4,5,6", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        ("Boresight=NaN,0,3,4,5,6", [[None, 0.0, 3.0], [4.0, 5.0, 6.0]]),
        ("RotPos=-0.004347, 0.000000, 4734909045.19000", [-0.004347, 0.0, 4734909045.19]),
        ("limit_switches=F,T", [False, True]),
        ('one="only"', ["only"]),
        ("Moved", []),
        ("Started", []),
        ("Status=0x10", 16),
        ("Status=-1", 0x80000001),
    ],
)
def test_keywords_that_validate(text, expected):
    typed = SAMPLE.convert(kw(text))
    assert isinstance(typed, TypedKeyword)
    assert typed.ok, typed.error
    assert typed.to_json() == expected


@pytest.mark.parametrize(
    "text, error",
    [
        ("AirTemp", "expected 1 values, got 0"),
        ("AirTemp=1,2", "expected 1 values, got 2"),
        ("AirTemp=warm", "value 1: not a float literal"),
        ("AxePos=1,2", "expected 3 values, got 2"),
        ("AxePos=1,2,3,4", "expected 3 values, got 4"),
        ("AxePos=1,x,3", "value 2"),
        ("Range=1", "expected 2 to 4 values, got 1"),
        ("Range=1,2,3,4,5", "expected 2 to 4 values, got 5"),
        ("Range=1.5,2", "value 1: not an integer literal"),
        ("ObjSys=B1950,1950", "value 1: not one of the labels"),
        ("Boresight=1,2,3,4,5", "expected 6 values, got 5"),
        ("RotPos=1,2", "expected 3 values, got 2"),
        ("limit_switches=F,t", "value 2"),
        ("limit_switches=F", "expected 2 values, got 1"),
        ("one", "expected 1 values, got 0"),
        ("Moved=1", "expected 0 values, got 1"),
        ("Status=0x100000000", "out of the uint range"),
    ],
)
def test_keywords_that_do_not_validate(text, error):
    typed = SAMPLE.convert(kw(text))
    assert typed is not None and not typed.ok
    assert error in typed.error
    assert typed.values == ()
    with pytest.raises(ValueError):
        typed.to_json()


def test_reply_to_json_falls_back_to_the_untyped_mapping_and_reports_it():
    fallbacks = []
    keywords = parse_keywords('AxePos=1,2; Foo=007; AirTemp=NaN; Moved; text="hi"; help="x"')
    body = SAMPLE.reply_to_json(keywords, on_fallback=lambda k, why: fallbacks.append((k.name, why)))
    assert body == {"AxePos": [1, 2], "Foo": "007", "AirTemp": None, "Moved": [], "text": "hi", "help": "x"}
    assert fallbacks == [
        ("AxePos", "x.AxePos: expected 3 values, got 2"),
        ("Foo", "x.Foo: not in the dictionary"),
    ]


def test_clu_default_keywords_are_typed_unless_disabled():
    keywords = parse_keywords("version=2; yourUserID=3; num_users=1; UserInfo=3,127.0.0.1")
    typed = SAMPLE.reply_to_json(keywords)
    assert typed == {"version": "2", "yourUserID": 3, "num_users": 1, "UserInfo": [3, "127.0.0.1"]}
    plain = KeywordDictionary.from_dict(SAMPLE.to_dict(), clu_defaults=False)
    assert plain.reply_to_json(keywords) == jsonmap.keywords_to_json(keywords)
    assert plain.convert(kw("text=1")) is None


def test_a_dictionary_key_overrides_a_clu_default():
    dictionary = make({"Text": {"values": [{"type": "int"}]}})
    assert dictionary.reply_to_json([kw("text=5")]) == {"Text": 5}


def test_nonfinite_floats_are_floats_or_strings():
    dictionary = make({"v": {"values": [{"type": "double", "repeat": 3}]}})
    keyword = kw("v=nan,inf,-inf")
    as_floats = dictionary.reply_to_json([keyword])["v"]
    assert math.isnan(as_floats[0]) and as_floats[1:] == [math.inf, -math.inf]
    assert json.dumps(as_floats) == "[NaN, Infinity, -Infinity]"  # what clu sends
    as_strings = dictionary.reply_to_json([keyword], nonfinite="string")
    assert as_strings == {"v": ["NaN", "Infinity", "-Infinity"]}
    assert dictionary.json_to_keyword("v", ["NaN", "Infinity", "-Infinity"]).values == ("nan", "inf", "-inf")


# -- writing JSON back as keyword text ---------------------------------------------------

@pytest.mark.parametrize(
    "name, value, values, quoted",
    [
        ("AirTemp", 4.4, ("4.4",), (False,)),
        ("AirTemp", None, ("NaN",), (False,)),
        ("AirTemp", 3, ("3.0",), (False,)),  # a float stays a float for untyped readers
        ("AxePos", [1.5, None, -2.0], ("1.5", "NaN", "-2.0"), (False, False, False)),
        ("limit_switches", [True, False], ("T", "F"), (False, False)),
        ("ObjSys", ["fk5", 2000.0], ("FK5", "2000.0"), (False, False)),
        ("one", ["a b"], ("a b",), (True,)),
        ("one", ["42"], ("42",), (True,)),
        ("Moved", [], (), ()),
        ("Boresight", [[1, 2, 3], [None, 0.5, 6]], ("1.0", "2.0", "3.0", "NaN", "0.5", "6.0"), (False,) * 6),
        ("RotPos", [1.0, 2.0, 3.0], ("1.0", "2.0", "3.0"), (False,) * 3),
        ("Status", 255, ("0xff",), (False,)),
        ("Range", [1, 2.0, 3.0], ("1", "2.0", "3.0"), (False,) * 3),
    ],
)
def test_json_to_keyword_writes_typed_text(name, value, values, quoted):
    keyword = SAMPLE.json_to_keyword(name, value)
    assert keyword == Keyword(name, values, quoted)
    typed = SAMPLE.convert(keyword)
    assert typed.ok


@pytest.mark.parametrize(
    "name, value",
    [
        ("AirTemp", "warm"),
        ("AirTemp", 1e39),  # beyond float32
        ("AirTemp", True),
        ("AxePos", [1.0, 2.0]),
        ("AxePos", 1.0),
        ("limit_switches", [1, 0]),
        ("ObjSys", ["B1950", 1950.0]),
        ("one", "bare"),
        ("Moved", [1]),
        ("Status", -1),
        ("Range", [1.5, 2.0]),
        ("RotPos", [1.0, 2.0]),
        ("Unknown", [1, "a"]),
    ],
)
def test_json_that_does_not_fit_uses_the_untyped_mapping(name, value):
    assert SAMPLE.json_to_keyword(name, value) == jsonmap.json_to_keyword(name, value)


def test_json_to_keywords_keeps_order():
    body = {"limit_switches": [False, True], "AirTemp": None, "x": "T"}
    keywords = SAMPLE.json_to_keywords(body)
    assert [k.name for k in keywords] == ["limit_switches", "AirTemp", "x"]
    assert SAMPLE.reply_to_json(keywords) == body


# -- the real TCC log --------------------------------------------------------------------

UNKNOWN_TO_TCC = {"TCCStatus", "DeadProc", "GCFocus", "GCamCmd", "Modu"}


def tcc_replies():
    for line in TCC_LOG.read_text().splitlines():
        yield parse_actor_reply(line.split(" ", 2)[2], mid_first=True)


def test_every_known_keyword_of_the_tcc_log_validates():
    tcc = KeywordDictionary.load(DICTS / "tcc.json")
    typed_count = 0
    fallbacks = set()
    for reply in tcc_replies():
        for keyword in reply.keywords:
            typed = tcc.convert(keyword)
            if keyword.name in UNKNOWN_TO_TCC:
                assert typed is None
                continue
            assert typed is not None and typed.ok, (keyword, typed)
            typed_count += 1
        tcc.reply_to_json(reply.keywords, on_fallback=lambda k, why: fallbacks.add(k.name))
    assert fallbacks == UNKNOWN_TO_TCC
    assert typed_count > 150


def test_tcc_log_values():
    tcc = KeywordDictionary.load(DICTS / "tcc.json")
    seen = {}
    for reply in tcc_replies():
        seen.update(tcc.reply_to_json(reply.keywords))
    assert seen["ObjMag"] is None  # ObjMag=NaN, the invalid marker
    assert seen["ObjSys"] == ["FK5", 2000.0]
    assert seen["ObjName"] == " "
    assert seen["Moved"] == [] and seen["Started"] == []
    assert seen["AxisErrCode"] == ["OK", "OK", "OK"]
    assert seen["UTC_TAI"] == -33.0
    assert seen["RotType"] == "Obj"
    assert seen["PrimF_BFTemp"] == [10.0, 0.0]
    assert seen["CalibOff"][2] == [0.027568, 0.0, 4734909045.19]
    assert len(seen["GuideOff"]) == 3 and len(seen["ObjNetPos"]) == 2
    assert seen["TCCStatus"] == ["TTT", "NNN"]  # unknown: untyped
    assert seen["GCFocus"] == 0.0


def test_tcc_log_json_goes_back_to_equivalent_keywords():
    tcc = KeywordDictionary.load(DICTS / "tcc.json")
    for reply in tcc_replies():
        for keyword in reply.keywords:
            typed = tcc.convert(keyword)
            if typed is None:
                continue
            value = typed.to_json()
            again = tcc.convert(tcc.json_to_keyword(keyword.name, value))
            assert again.ok and again.to_json() == value


# -- agreement with opscore's Key.consume ----------------------------------------------------

OPS_KEYS = [
    (ops_keys.Key("a", ops.Float(invalid="nan") * 3), {"type": "float", "invalid": "nan", "repeat": 3}),
    (ops_keys.Key("b", ops.Int(), ops.String() * (0,)),
     [{"type": "int"}, {"type": "string", "repeat": [0]}]),
    (ops_keys.Key("c", ops.Float() * (1, 3)), {"type": "float", "repeat": [1, 3]}),
    (ops_keys.Key("d", ops.PVT(), ops.Float(invalid="NaN")), [{"type": "pvt"}, {"type": "float", "invalid": "NaN"}]),
    (ops_keys.Key("e", ops.Enum("A", "b") * 2, ops.Bool("F", "T")),
     [{"type": "enum", "labels": ["A", "b"], "repeat": 2}, {"type": "bool", "labels": ["F", "T"]}]),
    (ops_keys.Key("f"), []),
    (ops_keys.Key("g", ops.UInt(invalid="nan"), ops.Int() * (2, None)),
     [{"type": "uint", "invalid": "nan"}, {"type": "int", "repeat": [2, None]}]),
]
OPS_DICTIONARY = make(
    {key.name: {"values": spec if isinstance(spec, list) else [spec]} for key, spec in OPS_KEYS},
)
_WORDS = st.sampled_from(["1", "-2", "0x10", "2.5", "nan", "NaN", "inf", "a", "A", "B", "F", "T", "", "010"])


def _ops_native(value):
    if value == ops.InvalidValue and not isinstance(value, (str, int, float)):
        return None
    if hasattr(value, "native"):
        native = value.native
        return tuple(native) if isinstance(native, tuple) else native
    return value


def _equal(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(_WORDS, max_size=7))
def test_whole_keyword_validation_agrees_with_opscore(words):
    for key, _ in OPS_KEYS:
        message = ops_messages.Keyword(key.name, list(words))
        matched = key.consume(message)
        typed = OPS_DICTIONARY.convert(Keyword(key.name, tuple(words)))
        assert typed.ok == matched, (key.name, words, typed.error)
        if matched:
            theirs = tuple(_ops_native(v) for v in message.values)
            assert _equal(typed.values, theirs), (typed.values, theirs)

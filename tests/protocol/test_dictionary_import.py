"""Importing actorkeys-style Python files by their syntax tree (never executed)."""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opscore.protocols import keys as ops_keys
from opscore.protocols import messages as ops_messages
from opscore.protocols import types as ops

from bridge.protocol import Keyword
from bridge.protocol.dictionary import DictionaryError, KeywordDictionary, import_actorkeys

# A hand-written sample in the actorkeys style (not copied from actorkeys).
SAMPLE = textwrap.dedent(
    '''
    #!/usr/bin/env python
    """Keys of a made-up dome actor."""
    # comments are fine
    KeysDictionary("dome", (3, 1), *(
        Key("domeTemp", Float(name="temp", invalid="NaN", units="C"),
            help="Air temperature " "inside the dome."),
        Key("shutterPos",
            Float(invalid="nan", units="deg", help="left") * 2,
            Int(invalid="nan", help="moving count"),
            help="Shutter " + "positions.", doCache=False),
        Key("axisState",
            Enum("Halted", "Slewing", "Tracking", "?",
                 labelHelp=["stopped", "moving", "following", "unknown"]) * 3,
            help="Commanded state of each axis."),
        Key("lampsOn", Bool("off", "on", name="lamp") * (1, 4)),
        Key("errCode", String(invalid="?") * 3),
        Key("coeffs", Float() * (0, None), doCache=False),
        Key("ids", UInt(invalid="nan", reprFmt="0x%x") * (1,), units="ignored"),
        Key("pos", PVT(name="az", help="azimuth"), PVT(name="alt")),
        Key("again", ByName("temp"), ByName("az")),
        Key("status", Bits("ready", ":2", "mode:3"), Hex(), Long(), Double(invalid="-")),
        Key("time", Double(invalid="nan", units="sec"), refreshCmd="show time"),
        Key("moved", help="An immediate move happened."),
        Key("negative", Int(invalid=-1)),
    ))
    '''
)


def test_import_gives_our_format():
    document = import_actorkeys(SAMPLE)
    assert document["actor"] == "dome" and document["version"] == [3, 1]
    keys = document["keys"]
    assert keys["domeTemp"] == {
        "help": "Air temperature inside the dome.",
        "values": [{"type": "float", "name": "temp", "invalid": "NaN", "units": "C"}],
    }
    assert keys["shutterPos"]["help"] == "Shutter positions."
    assert keys["shutterPos"]["do_cache"] is False
    assert keys["shutterPos"]["values"][0]["repeat"] == 2
    assert keys["axisState"]["values"][0]["label_help"][0] == "stopped"
    assert keys["lampsOn"]["values"] == [
        {"type": "bool", "labels": ["off", "on"], "name": "lamp", "repeat": [1, 4]}
    ]
    assert keys["coeffs"]["values"][0]["repeat"] == [0]
    assert keys["ids"]["values"] == [{"type": "uint", "invalid": "nan", "repeat": [1]}]
    assert keys["again"]["values"] == [
        {"type": "float", "name": "temp", "invalid": "NaN", "units": "C"},
        {"type": "pvt", "name": "az", "help": "azimuth"},
    ]
    assert keys["status"]["values"][0] == {"type": "bits", "fields": ["ready", ":2", "mode:3"]}
    assert keys["time"]["refresh_cmd"] == "show time"
    assert keys["moved"] == {"help": "An immediate move happened.", "values": []}
    assert keys["negative"]["values"] == [{"type": "int", "invalid": "-1"}]


def test_imported_dictionary_converts_keywords():
    dome = KeywordDictionary.from_dict(import_actorkeys(SAMPLE))
    assert dome.reply_to_json([Keyword("DomeTemp", ("NaN",))]) == {"domeTemp": None}
    assert dome.convert(Keyword("axisstate", ("halted", "SLEWING", "?"))).to_json() == [
        "Halted", "Slewing", "?"
    ]
    assert dome.convert(Keyword("lampsOn", ("on",))).to_json() == [True]
    assert not dome.convert(Keyword("lampsOn", ("On",))).ok
    assert dome.convert(Keyword("negative", ("-1",))).to_json() is None


def _opscore_dictionary(text):
    """opscore's own reading of the sample (its eval with its symbol table), for comparison."""
    names = {name: getattr(ops, name) for name in (
        "Int", "UInt", "Long", "Float", "Double", "String", "Enum", "Bool", "Hex", "Bits", "PVT", "ByName"
    )}
    names.update(Key=ops_keys.Key, KeysDictionary=ops_keys.KeysDictionary)
    return eval(compile(text, "<sample>", "eval"), {"__builtins__": {}}, names)


def _native(value):
    if value == ops.InvalidValue and not isinstance(value, (str, int, float)):
        return None
    native = value.native if hasattr(value, "native") else value
    return tuple(native) if isinstance(native, tuple) else native


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


OURS = KeywordDictionary.from_dict(import_actorkeys(SAMPLE))
THEIRS = _opscore_dictionary(SAMPLE.split('"""', 2)[2].strip())
_WORDS = st.sampled_from(
    ["1", "-1", "2.5", "nan", "NaN", "?", "-", "halted", "Tracking", "on", "off", "On", "0x1f", "ff", "x", ""]
)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(_WORDS, max_size=8))
def test_imported_dictionary_agrees_with_opscore(words):
    for name, key in THEIRS.keys.items():
        message = ops_messages.Keyword(key.name, list(words))
        matched = key.consume(message)
        typed = OURS.convert(Keyword(name, tuple(words)))
        assert typed.ok == matched, (name, words, typed.error)
        if matched:
            theirs = tuple(_native(v) for v in message.values)
            assert _same(typed.values, theirs)


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ("KeysDictionary(", "line 1", "not valid Python"),
        ("import os", "line 1", "one KeysDictionary"),
        ('KeysDictionary("x", (1, 0))\nKeysDictionary("y", (1, 0))', "line 1", "one KeysDictionary"),
        ('Keys("x", (1, 0))', "line 1", "one KeysDictionary"),
        ('KeysDictionary("x")', "line 1", "expected KeysDictionary(name"),
        ('KeysDictionary("x", 1)', "line 1", "(major, minor)"),
        ('KeysDictionary("x", (1, 0), Float())', "line 1", "expected Key(...)"),
        ('KeysDictionary("x", (1, 0), Key("a", Complex()))', "line 1", "expected a value type"),
        ('KeysDictionary("x", (1, 0), Key("a", Float(invalid=nan)))', "line 1", "expected a literal"),
        ('KeysDictionary("x", (1, 0), Key("a", Float(help=open("f").read())))', "line 1", "expected a literal"),
        ('KeysDictionary("x", (1, 0), Key("a", ByName("t")))', "line 1", "unresolved type"),
        ('KeysDictionary("x", (1, 0), Key("a", Float(wrapper=1)))', "line 1", "unsupported argument"),
        ('KeysDictionary("x", (1, 0), Key("a", PVT("x")))', "line 1", "no positional"),
        ('KeysDictionary("x", (1, 0), Key("a", Bool("T")))', "line 1", "false and a true label"),
        ('KeysDictionary("x", (1, 0), Key("a", Float() * "2"))', "line 1", "repeat must be"),
        ('KeysDictionary("x", (1, 0),\n Key("a"), Key("a"))', "line 2", "duplicate key"),
        ('KeysDictionary("x", (1, 0), Key("a"), Key("A"))', "keys.A", "duplicate"),
        ('KeysDictionary("x", (1, 0), Key("a", Float() * (1,), Int()))', "keys.a.values[0].repeat",
         "only the last"),
    ],
)
def test_import_rejects_what_is_not_a_plain_dictionary(text, where, reason):
    with pytest.raises(DictionaryError) as info:
        import_actorkeys(text, source="x.py")
    assert info.value.source == "x.py"
    assert info.value.where == where
    assert reason in info.value.reason


def test_import_never_executes_the_file(tmp_path):
    sentinel = tmp_path / "touched"
    text = (
        'KeysDictionary("x", (1, 0), Key("a", Float(help='
        f'__import__("pathlib").Path({str(sentinel)!r}).touch() or "h")))'
    )
    with pytest.raises(DictionaryError):
        import_actorkeys(text)
    assert not sentinel.exists()

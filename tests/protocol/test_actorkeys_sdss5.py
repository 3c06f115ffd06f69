"""The real keyword dictionaries of sdss/actorkeys (sdss5): all 30 import, read as opscore reads them.

The copies in tests/data/actorkeys-sdss5/ (README there: origin and licence) are
imported by their syntax tree; opscore evaluates the same files with its own symbol
table (as ``KeysDictionary.load`` does), and both readings are compared: the value
types of every key, and the typed values of every keyword of the real TCC log.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from opscore.protocols import keys as ops_keys
from opscore.protocols import messages as ops_messages
from opscore.protocols import types as ops

from bridge.protocol import parse_actor_reply
from bridge.protocol.dictionary import DictionaryError, KeywordDictionary, import_actorkeys
from bridge.protocol.dictionary.actorkeys_import import MAX_EXPANDED

ROOT = Path(__file__).resolve().parents[2]
DICTS = ROOT / "tests" / "data" / "actorkeys-sdss5"
FILES = sorted(DICTS.glob("*.py"))
TCC_LOG = ROOT / "examples" / "tcc_sample.log"


def _ours(path: Path) -> dict:
    return import_actorkeys(path.read_text(encoding="utf-8"), source=path.name)


def _theirs(path: Path) -> ops_keys.KeysDictionary:
    """opscore's reading: the file evaluated with the symbol table of ``KeysDictionary.load``."""
    symbols = {"__builtins__": __builtins__, "Key": ops_keys.Key,
               "KeysDictionary": ops_keys.KeysDictionary, "ByName": ops.ByName}
    symbols.update({name: value for name, value in vars(ops).items()
                    if isinstance(value, type)
                    and issubclass(value, (ops.ValueType, ops.CompoundValueType))})
    return eval(path.read_text(encoding="utf-8"), symbols)


def test_all_thirty_dictionaries_are_here():
    assert len(FILES) == 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_dictionary_imports_and_loads(path):
    document = _ours(path)
    dictionary = KeywordDictionary.from_dict(document, source=path.name)
    assert dictionary.actor == path.stem or path.name == "sop.py"  # sop.py is hal.py upstream
    assert len(dictionary) == len(_theirs(path).keys) > 0


_KINDS = {"Int": "int", "UInt": "uint", "Long": "long", "Float": "float", "Double": "double",
          "String": "string", "Enum": "enum", "Bool": "bool", "Hex": "hex", "Bits": "bits"}


def _their_values(key: ops_keys.Key) -> list[tuple]:
    """(type, name, repeat) of each value type of an opscore key."""
    out = []
    for vtype in key.typedValues.vtypes:
        repeat = None
        if isinstance(vtype, ops.RepeatedValueType):
            low, high = vtype.minRepeat, vtype.maxRepeat
            repeat = low if low == high else ([low] if high is None else [low, high])
            vtype = vtype.vtype
        if isinstance(vtype, ops.PVT):
            out.append(("pvt", vtype.name, repeat))
        else:
            out.append((_KINDS[vtype.__name__], vtype.name, repeat))
    return out


def _our_values(spec: dict) -> list[tuple]:
    return [(v["type"], v.get("name"), v.get("repeat")) for v in spec["values"]]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_key_has_opscore_value_types_names_and_repeats(path):
    ours, theirs = _ours(path)["keys"], _theirs(path).keys
    assert [name.lower() for name in ours] == list(theirs)
    for name, spec in ours.items():
        key = theirs[name.lower()]
        assert _our_values(spec) == _their_values(key), name
        assert spec.get("do_cache", key.doCache) == key.doCache, name  # absent: opscore's default
        assert (spec.get("refresh_cmd"), spec.get("help")) == (key.refreshCmd, key.help), name


def test_positional_arguments_of_plain_value_types_are_ignored_as_opscore_does():
    cherno = _ours(DICTS / "cherno.py")["keys"]["camera_solution"]["values"]
    assert cherno[0] == {"type": "string"}  # String("camera"): no name, as in opscore
    assert _their_values(_theirs(DICTS / "cherno.py").keys["camera_solution"])[0] == \
        ("string", None, None)
    jaeger = _ours(DICTS / "jaeger.py")["keys"]["configuration_loaded"]["values"][0]
    assert jaeger == {"type": "int", "help": "Configuration ID"}
    text = 'KeysDictionary("x", (1, 0), Key("a", Float("f", 3, name="n"), Enum("A", "B")))'
    assert import_actorkeys(text)["keys"]["a"]["values"] == [
        {"type": "float", "name": "n"}, {"type": "enum", "labels": ["A", "B"]}]


def test_key_name_as_a_keyword():
    spec = _ours(DICTS / "guider.py")["keys"]["loadedNewCartridge"]
    assert spec == {"do_cache": False, "values": [],
                    "help": "Output when a cartridge is explicitly loaded by the user."}


def test_computed_value_lists_of_boss():
    keys = _ours(DICTS / "boss.py")["keys"]
    assert keys["motorPosition"]["values"] == [
        {"type": "int", "invalid": "-9999999", "name": f"sp1_{axis}"} for axis in "ABC"]
    assert [v["name"] for v in keys["motorStatus"]["values"]] == ["sp1_A", "sp1_B", "sp1_C"]
    assert keys["motorStatus"]["values"][0]["fields"][:2] == ["Stopped", "FindEdge"]


def test_comprehension_forms_that_are_read():
    text = ('KeysDictionary("x", (1, 0), *[Key("k%s" % n, *(Int(name="v%d%s" % (i, n)) '
            'for i in (1, 2)), String()) for n in ("a", "b")])')
    keys = import_actorkeys(text)["keys"]
    assert list(keys) == ["ka", "kb"]
    assert [v.get("name") for v in keys["kb"]["values"]] == ["v1b", "v2b", None]
    nested = 'KeysDictionary("x", (1, 0), Key("a", *[Int(name=x + y) for x in ("p", "q") for y in (x,)]))'
    assert [v["name"] for v in import_actorkeys(nested)["keys"]["a"]["values"]] == ["pp", "qq"]


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ('KeysDictionary("x", (1, 0),\n Key("a", *[Int() for i in (1, 2) if i]))', 2,
         "unsupported comprehension"),
        ('KeysDictionary("x", (1, 0),\n Key("a", *[Int() for i in range(3)]))', 2,
         "expected a literal, got 'range(3)'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", *[Int() for i in "abc"]))', 2,
         "literal tuple or list"),
        ('KeysDictionary("x", (1, 0),\n Key("a", *[Int() for (i, j) in ((1, 2),)]))', 2,
         "only 'for NAME in (literals)'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", *values()))', 2, "unsupported construct '*values()'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", Int(name="%*d" % (5, 1))))', 2,
         "unsupported format field '%*d'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", Int(name="%999999999d" % 1)))', 2,
         "unsupported format field '%999999999d'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", Int(name=n % 1)))', 2, "expected a literal, got 'n'"),
        ('KeysDictionary("x", (1, 0),\n Key("a", Int(name="%d %d" % (1,))))', 2, "bad format"),
        ('KeysDictionary("x", (1, 0),\n Key("a", name="b"))', 2, "name twice"),
        ('KeysDictionary("x", (1, 0),\n Key(help="h"))', 2, "needs a name"),
        ('KeysDictionary("x", (1, 0),\n Key("a", PVT("p")))', 2, "no positional"),
        (f'KeysDictionary("x", (1, 0),\n Key("a", *[Int() for i in {tuple(range(40))} '
         f'for j in {tuple(range(40))}]))', 2, f"more than {MAX_EXPANDED} items"),
    ],
)
def test_other_constructs_are_refused_with_file_line_and_construct(text, line, reason):
    with pytest.raises(DictionaryError) as info:
        import_actorkeys(text, source="x.py")
    assert (info.value.source, info.value.where) == ("x.py", f"line {line}")
    assert reason in info.value.reason
    assert str(info.value).startswith(f"x.py: line {line}: ")


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


def test_typed_values_agree_with_opscore_on_the_real_tcc_log():
    ours = KeywordDictionary.from_dict(_ours(DICTS / "tcc.py"), source="tcc.py")
    theirs = _theirs(DICTS / "tcc.py")
    compared = typed = 0
    for raw in TCC_LOG.read_text(encoding="utf-8").splitlines():
        reply = parse_actor_reply(raw.split(None, 2)[2], mid_first=True)
        for keyword in reply.keywords:
            key = theirs.keys.get(keyword.name.lower())
            mine = ours.convert(keyword)
            assert (mine is None) == (key is None), keyword.name
            if key is None:
                continue
            message = ops_messages.Keyword(keyword.name, list(keyword.values))
            matched = key.consume(message)
            assert mine.ok == matched, (keyword, mine.error)
            compared += 1
            if matched:
                typed += 1
                expected = tuple(_native(v) for v in message.values)
                assert _same(mine.values, expected), (keyword, mine.values, expected)
    assert compared >= 150 and typed >= 150, (compared, typed)


def test_an_actorkeys_file_loads_directly_as_a_dictionary(tmp_path):
    from bridge.service.bridge import load_dictionary  # what [actors.X] dictionary = "..." uses

    loaded = load_dictionary(DICTS / "tcc.py")
    assert loaded == KeywordDictionary.from_dict(_ours(DICTS / "tcc.py"))
    assert loaded.convert(parse_actor_reply("1 2 : AxePos=1.5,2,NaN").keywords[0]).values == (
        1.5, 2.0, None)
    bad = tmp_path / "bad.py"
    bad.write_text('KeysDictionary("bad", (1, 0),\n Key("a", Int(name=open("x").read())))')
    with pytest.raises(DictionaryError) as info:
        KeywordDictionary.load(bad)
    assert str(info.value).startswith(f"{bad}: line 2: expected a literal")

"""Property tests: typed JSON -> keyword text -> parsed -> typed JSON gives the value back.

Random keys (every value type, invalid markers, fixed and variable repeats) and
random values that fit them are written with ``json_to_keyword``, formatted as a
reply line, parsed again and converted: the JSON must come back unchanged, and
must validate against the generated schema.
"""

from __future__ import annotations

import math

import jsonschema
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.protocol import format_keywords, jsonmap, parse_keywords
from bridge.protocol.dictionary import KeywordDictionary
from bridge.protocol.dictionary.types import FLOAT32_MAX, INT32_MAX, UINT32_MAX

MARKERS = ["NaN", "?", "None", "-", "unknown", "N/A"]
SCALAR_KINDS = ["int", "uint", "long", "hex", "bits", "float", "double", "string", "enum", "bool", "pvt"]

_label = st.text(min_size=0, max_size=6)


@st.composite
def value_specs(draw, last: bool):
    kind = draw(st.sampled_from(SCALAR_KINDS))
    spec: dict = {"type": kind}
    if kind == "enum":
        labels = draw(st.lists(_label, min_size=1, max_size=4, unique_by=str.lower))
        spec["labels"] = labels
    elif kind == "bool":
        spec["labels"] = draw(st.lists(_label, min_size=2, max_size=2, unique=True))
    elif kind == "bits":
        spec["fields"] = draw(st.sampled_from([["a"], ["a:3", ":2", "b:27"], ["x:32"]]))
    if draw(st.booleans()):
        spec["invalid"] = draw(st.sampled_from(MARKERS))
    repeat = draw(
        st.one_of(
            st.none(),
            st.integers(0, 3),
            st.tuples(st.integers(0, 2)).map(list) if last else st.nothing(),
            st.tuples(st.integers(0, 2), st.integers(2, 4)).map(list) if last else st.nothing(),
        )
    )
    if repeat is not None:
        spec["repeat"] = repeat
    return spec


@st.composite
def key_specs(draw):
    count = draw(st.integers(0, 3))
    return [draw(value_specs(last=(i == count - 1))) for i in range(count)]


def _collides(spec, text):
    marker = spec.get("invalid")
    return marker is not None and text.lower() == marker.lower()


def _float(draw, spec, limit):
    value = draw(st.floats(allow_nan=True, allow_infinity=True))
    assume(math.isinf(value) or math.isnan(value) or abs(value) <= limit)
    assume(not (math.isnan(value) and _collides(spec, "nan")))
    assume(not (math.isinf(value) and (_collides(spec, "inf") or _collides(spec, "-inf"))))
    return value


@st.composite
def native(draw, spec):
    kind = spec["type"]
    if "invalid" in spec and kind != "pvt" and draw(st.integers(0, 4)) == 0:
        return None
    if kind == "int":
        return draw(st.integers(-INT32_MAX, INT32_MAX))
    if kind in ("uint", "bits"):
        return draw(st.integers(0, UINT32_MAX))
    if kind in ("long", "hex"):
        return draw(st.integers(-(2**80), 2**80))
    if kind == "float":
        return _float(draw, spec, FLOAT32_MAX)
    if kind == "double":
        return _float(draw, spec, math.inf)
    if kind == "pvt":
        p = None if "invalid" in spec and draw(st.booleans()) else _float(draw, spec, FLOAT32_MAX)
        return [p, _float(draw, spec, FLOAT32_MAX), _float(draw, spec, math.inf)]
    if kind == "string":
        text = draw(st.text(max_size=12))
        assume(not _collides(spec, text))
        return text
    if kind == "enum":
        label = draw(st.sampled_from(spec["labels"]))
        assume(not _collides(spec, label))
        return label
    assert kind == "bool"
    value = draw(st.booleans())
    assume(not _collides(spec, spec["labels"][int(value)]))
    return value


@st.composite
def cases(draw):
    specs = draw(key_specs())
    items = []
    for i, spec in enumerate(specs):
        repeat = spec.get("repeat")
        if repeat is None:
            count = 1
        elif isinstance(repeat, int):
            count = repeat
        else:
            low = repeat[0]
            high = repeat[1] if len(repeat) == 2 else low + 3
            count = draw(st.integers(low, high))
        items.extend(draw(native(spec)) for _ in range(count))
    scalar = len(specs) == 1 and "repeat" not in specs[0]
    value = items[0] if scalar else items
    dictionary = KeywordDictionary.from_dict(
        {"actor": "rt", "version": [1, 0], "keys": {"Key_1": {"values": specs}}}
    )
    return dictionary, value


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@settings(max_examples=200, deadline=None)
@given(case=cases(), name=st.sampled_from(["Key_1", "key_1", "KEY_1"]))
def test_typed_json_survives_keyword_text(case, name):
    dictionary, value = case
    keyword = dictionary.json_to_keyword(name, value)
    assert keyword != jsonmap.json_to_keyword(name, value) or dictionary.convert(keyword).ok
    line = format_keywords([keyword])
    (parsed,) = parse_keywords(line)
    typed = dictionary.convert(parsed)
    assert typed is not None and typed.ok, (line, typed.error)
    assert same(typed.to_json(), value), (line, typed.to_json(), value)
    body = dictionary.reply_to_json([parsed])
    jsonschema.Draft7Validator(dictionary.json_schema(additional_properties=False)).validate(body)


@settings(max_examples=100, deadline=None)
@given(case=cases())
def test_strict_json_mode_survives_too(case):
    dictionary, value = case
    (parsed,) = parse_keywords(format_keywords([dictionary.json_to_keyword("Key_1", value)]))
    strict = dictionary.reply_to_json([parsed], nonfinite="string")
    jsonschema.Draft7Validator(dictionary.json_schema(nonfinite="string")).validate(strict)
    (again,) = parse_keywords(format_keywords(dictionary.json_to_keywords(strict)))
    assert same(dictionary.reply_to_json([again])["Key_1"], value)


@settings(max_examples=150, deadline=None)
@given(case=cases(), words=st.lists(st.text(max_size=5), max_size=6))
def test_convert_never_raises_and_fallback_is_untyped(case, words):
    dictionary, _ = case
    keyword = parse_keywords(format_keywords([jsonmap.json_to_keyword("Key_1", words)]))[0]
    typed = dictionary.convert(keyword)
    problems = []
    body = dictionary.reply_to_json([keyword], on_fallback=lambda k, why: problems.append(why))
    if typed.ok:
        assert problems == []
        assert same(body["Key_1"], typed.to_json())
    else:
        assert len(problems) == 1
        assert body["Key_1"] == jsonmap.keyword_to_json(keyword)

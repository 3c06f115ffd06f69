"""The JSON Schema generated from a dictionary: valid draft-07, accepted by clu, and typed replies fit it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from clu.model import DEFAULT_SCHEMA, Model

from bridge.protocol import parse_actor_reply, parse_keywords
from bridge.protocol.dictionary import CLU_DEFAULT_PROPERTIES, KeywordDictionary

ROOT = Path(__file__).resolve().parents[2]
DICTS = ROOT / "protocol_specs" / "dictionaries"
TCC_LOG = ROOT / "examples" / "tcc_sample.log"


def load(name):
    return KeywordDictionary.load(DICTS / f"{name}.json")


def validator(schema):
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_clu_default_keywords_match_clu():
    assert CLU_DEFAULT_PROPERTIES == DEFAULT_SCHEMA


@pytest.mark.parametrize("name", ["tcc", "shutter", "camera"])
def test_generated_schemas_are_valid_draft_07_and_clu_accepts_them(name):
    dictionary = load(name)
    for additional in (True, False):
        for nonfinite in ("float", "string"):
            schema = dictionary.json_schema(additional_properties=additional, nonfinite=nonfinite)
            validator(schema)
            assert schema["type"] == "object"
            assert schema["additionalProperties"] is additional
            for key in dictionary:
                assert key.name in schema["properties"]
            for default in DEFAULT_SCHEMA:
                if default.lower() not in dictionary:
                    assert schema["properties"][default] == DEFAULT_SCHEMA[default]
    model = Model(name, json.loads(json.dumps(dictionary.json_schema())))
    assert model.validator.is_valid({"text": "hello"})
    assert json.loads(json.dumps(dictionary.json_schema())) == dictionary.json_schema()


def test_schema_shapes_follow_the_mapping_table():
    props = load("tcc").json_schema()["properties"]
    assert props["Moved"] == {"type": "array", "maxItems": 0, "description": props["Moved"]["description"]}
    assert props["AirTemp"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    axe = props["AxePos"]
    assert axe["type"] == "array" and axe["minItems"] == axe["maxItems"] == 3
    assert axe["additionalItems"] is False and len(axe["items"]) == 3
    assert props["RotType"]["enum"] == ["None", "Obj", "Horiz", "Phys", "Mount"]
    assert props["UseCheby"]["type"] == "boolean"
    assert props["YourUserID"] == {
        "type": "integer", "minimum": 0, "maximum": 4294967295, "description": "Your user ID."
    }
    disabled = props["DisabledProc"]
    assert disabled["items"]["type"] == "string" and disabled["minItems"] == 0
    assert "maxItems" not in disabled
    user = props["UserInfo"]
    assert len(user["items"]) == 1 and user["additionalItems"]["type"] == "string"
    assert (user["minItems"], user["maxItems"]) == (2, 5)
    assert "yourUserID" not in props and "UserInfo" in props  # dictionary keys replace clu's


def tcc_bodies(dictionary, nonfinite="float"):
    for line in TCC_LOG.read_text().splitlines():
        reply = parse_actor_reply(line.split(" ", 2)[2], mid_first=True)
        yield reply, dictionary.reply_to_json(reply.keywords, nonfinite=nonfinite)


def test_typed_tcc_replies_validate_against_the_schema():
    tcc = load("tcc")
    strict = validator(tcc.json_schema(additional_properties=False))
    loose = validator(tcc.json_schema())
    unknown = {"TCCStatus", "DeadProc", "GCFocus", "GCamCmd", "Modu"}
    for reply, body in tcc_bodies(tcc):
        loose.validate(body)
        known = {k: v for k, v in body.items() if k not in unknown}
        strict.validate(known)
        if set(body) - set(known):
            assert not strict.is_valid(body)


def test_untyped_values_do_not_validate_where_types_differ():
    tcc = load("tcc")
    schema = validator(tcc.json_schema())
    assert not schema.is_valid({"AxePos": [1, 2]})
    assert not schema.is_valid({"RotType": "Sideways"})
    assert not schema.is_valid({"ObjMag": "NaN"})
    assert schema.is_valid({"ObjMag": None})


def test_strict_json_mode_schema():
    dictionary = KeywordDictionary.from_dict(
        {"actor": "x", "version": [1, 0], "keys": {"v": {"values": [{"type": "float", "repeat": 3}]}}}
    )
    keywords = parse_keywords("v=nan,inf,1")
    body = dictionary.reply_to_json(keywords, nonfinite="string")
    json.dumps(body, allow_nan=False)  # strict JSON
    validator(dictionary.json_schema(nonfinite="string")).validate(body)
    assert not validator(dictionary.json_schema()).is_valid(body)


@pytest.mark.parametrize(
    "name, line",
    [
        ("shutter", "i shutter=closed; shutter_moves=0; open_time=0.0; limit_switches=F,T; "
                    'motor_current=0.125; controller="Bonn shutter v2 (fake)"'),
        ("shutter", "i echo=a,b,c"),
        ("shutter", "i echo"),
        ("camera", 'i temperature=-110.25; n_exposures=42; shutter_open=F; cooler_on=T; '
                   'camera_name=cam1; comment="a \\"quoted\\" string, with commas; and semicolons"; '
                   "exptime_range=0.0,900.0; filters=g,r,i; window=0,0,2048,2048; "
                   "mixed=1,2.5,three,T; last_error=None"),
    ],
)
def test_test_actor_replies_validate_against_their_schemas(name, line):
    dictionary = load(name)
    schema = validator(dictionary.json_schema(additional_properties=False))
    problems = []
    body = dictionary.reply_to_json(
        parse_keywords(line.split(" ", 1)[1]), on_fallback=lambda k, why: problems.append(why)
    )
    assert problems == []
    schema.validate(body)


def test_camera_json_schema_agrees_with_the_peer_schema():
    """Our camera dictionary types every keyword the clu peer's own schema declares."""
    peer = json.loads((ROOT / "tests" / "peers" / "schemas" / "camera.json").read_text())
    camera = load("camera")
    for name in peer["properties"]:
        assert name in camera, name
    body = {
        "temperature": -110.25, "n_exposures": 42, "shutter_open": False, "cooler_on": True,
        "camera_name": "cam1", "comment": 'a "quoted" string, with commas; and semicolons',
        "exptime_range": [0.0, 900.0], "filters": ["g", "r", "i"], "window": [0, 0, 2048, 2048],
        "mixed": [1, 2.5, "three", True], "last_error": None,
    }
    jsonschema.Draft7Validator(peer).validate(body)
    keywords = camera.json_to_keywords(body)
    assert camera.reply_to_json(keywords) == body
    validator(camera.json_schema(additional_properties=False)).validate(body)

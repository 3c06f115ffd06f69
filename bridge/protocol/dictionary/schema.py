"""JSON Schema (draft-07) for a dictionary, in the shape clu's keyword model expects.

Mapping (protocol_specs/dictionaries.md): a scalar key is its value's schema; a
key with several specs or a repeat is an ``array`` (positional ``items`` for the
fixed part, ``additionalItems`` for a variable last spec, ``minItems``/``maxItems``);
a key without values is an empty array; int/uint/bits are bounded integers,
long/hex integers, float/double numbers, enum a string with ``enum``, bool a
boolean, pvt ``[number, number, number]``; an invalid marker adds ``null``.

clu's default keywords (``text``, ``schema``, ``version``, ``help``, ``error``,
``exception``, ``exception_info``, ``yourUserID``, ``UserInfo``, ``num_users``,
``command_model``) are always present, so that clu tooling keeps working; a
dictionary key with the same name (ignoring case) replaces the default.
"""

from __future__ import annotations

from typing import Any

from .keys import KeyDef, ValueSpec

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_STRINGS = {"type": "array", "items": {"type": "string"}}
_NULLABLE_STRING = {"oneOf": [{"type": "string"}, {"type": "null"}]}

#: How clu describes an error or exception value: a string, a list of strings,
#: or an object with the exception's details.
EXCEPTION_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _STRINGS,
        {"type": "string"},
        {
            "type": "object",
            "properties": {
                "module": {"type": "string"},
                "type": {"type": "string"},
                "message": {"type": "string"},
                "filename": _NULLABLE_STRING,
                "lineno": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
                "traceback": {"oneOf": [_STRINGS, {"type": "string"}]},
            },
        },
    ]
}

#: The keywords every clu actor may emit, with the schema clu gives them.
CLU_DEFAULT_PROPERTIES: dict[str, Any] = {
    "text": {"type": "string"},
    "schema": {"type": "string"},
    "version": {"type": "string"},
    "help": {"oneOf": [_STRINGS, {"type": "string"}]},
    "error": EXCEPTION_SCHEMA,
    "exception": EXCEPTION_SCHEMA,
    "exception_info": EXCEPTION_SCHEMA,
    "yourUserID": {"type": "integer"},
    "UserInfo": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
    "num_users": {"type": "integer"},
    "command_model": {"oneOf": [{"type": "array"}, {"type": "object"}]},
}


def _copy(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _copy(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_copy(v) for v in schema]
    return schema


def key_schema(key: KeyDef, nonfinite: str = "float") -> dict[str, Any]:
    """The schema of one key's JSON value."""
    if not key.values:
        schema: dict[str, Any] = {"type": "array", "maxItems": 0}
    elif key.scalar:
        schema = key.values[0].type.json_schema(nonfinite)
    else:
        schema = _array_schema(key.values, nonfinite)
    if key.help:
        schema["description"] = "; ".join(filter(None, [key.help, schema.get("description")]))
    return schema


def _array_schema(specs: tuple[ValueSpec, ...], nonfinite: str) -> dict[str, Any]:
    last = specs[-1]
    fixed = specs if last.fixed else specs[:-1]
    positional = [s.type.json_schema(nonfinite) for s in fixed for _ in range(s.min)]
    low = len(positional) + (0 if last.fixed else last.min)
    high = None if not last.fixed and last.max is None else (
        len(positional) + (0 if last.fixed else (last.max or 0))
    )
    schema: dict[str, Any] = {"type": "array"}
    if not positional and not last.fixed:
        schema["items"] = last.type.json_schema(nonfinite)
    else:
        schema["items"] = positional
        schema["additionalItems"] = False if last.fixed else last.type.json_schema(nonfinite)
    schema["minItems"] = low
    if high is not None:
        schema["maxItems"] = high
    return schema


def dictionary_schema(
    actor: str,
    keys: list[KeyDef],
    help_text: str | None = None,
    additional_properties: bool = True,
    nonfinite: str = "float",
) -> dict[str, Any]:
    """The draft-07 object schema of an actor's replies, clu defaults included."""
    own = {key.name.lower() for key in keys}
    properties: dict[str, Any] = {
        name: _copy(schema)
        for name, schema in CLU_DEFAULT_PROPERTIES.items()
        if name.lower() not in own
    }
    for key in keys:
        properties[key.name] = key_schema(key, nonfinite)
    schema: dict[str, Any] = {"$schema": DRAFT_07, "title": actor}
    if help_text:
        schema["description"] = help_text
    schema.update(
        {"type": "object", "properties": properties, "additionalProperties": additional_properties}
    )
    return schema

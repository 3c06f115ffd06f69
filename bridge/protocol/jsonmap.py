"""The untyped JSON mapping between keywords and JSON values, both ways.

Text to JSON (no keyword dictionary):

* a quoted value is a JSON string, always;
* unquoted ``T``/``F`` are true/false, ``None`` is null;
* an unquoted integer in canonical form (``-?(0|[1-9][0-9]*)``) is a JSON integer,
  an unquoted decimal or exponent number (``1.5``, ``-2e-3``) a JSON number when
  finite; everything else (``007``, ``+5``, ``0x1F``, ``NaN``, ``inf``, ``1e400``,
  ``?``) stays a string;
* a keyword with no value is ``[]``, one value is the scalar, several a list.

JSON to text is the inverse: a string that would read back as something else
(``"42"``, ``"T"``, ``"None"``, ``""``, anything with special characters) is
quoted, so every JSON value survives text and back, except one-element lists
(which come back as the scalar) and nested lists/objects (written as their
compact JSON text in a quoted string, which comes back as that string).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Union

from .canonical import needs_quotes
from .model import Keyword

JSONScalar = Union[str, int, float, bool, None]
JSONValue = Union[JSONScalar, list[Any], dict[str, Any]]

#: A JSON number literal; group 1 (fraction and/or exponent) is None for an integer.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)?\Z")
_match_number = _NUMBER.match
_NUMBER_START = frozenset("-0123456789")
_WORDS: dict[str, JSONScalar] = {"T": True, "F": False, "None": None}
_NOT_A_WORD = object()


def value_to_json(text: str, quoted: bool = False) -> JSONScalar:
    """One value text as a JSON scalar (see the module docstring)."""
    if quoted:
        return text
    if text[:1] in _NUMBER_START and text:
        m = _match_number(text)
        if m is None:
            return text
        if m.lastindex is None:
            return int(text)
        number = float(text)
        return number if math.isfinite(number) else text
    word = _WORDS.get(text, _NOT_A_WORD)
    return text if word is _NOT_A_WORD else word


def keyword_to_json(keyword: Keyword) -> JSONValue:
    """A keyword's values as JSON: ``[]`` if bare, the scalar if one, else a list."""
    values = keyword[1]
    if len(values) == 1:
        return value_to_json(values[0], keyword[2][0])
    return list(map(value_to_json, values, keyword[2]))


def keywords_to_json(keywords: Iterable[Keyword]) -> dict[str, JSONValue]:
    """A reply's keywords as a JSON object (a later duplicate name wins, in first position)."""
    return {k.name: keyword_to_json(k) for k in keywords}


def json_to_value(value: Any) -> tuple[str, bool]:
    """One JSON value as (text, quoted) such that :func:`value_to_json` gives it back."""
    if value is True:
        return "T", False
    if value is False:
        return "F", False
    if value is None:
        return "None", False
    if isinstance(value, int):
        return str(value), False
    if isinstance(value, float):
        return repr(value), False
    if isinstance(value, str):
        if needs_quotes(value) or value_to_json(value) != value or not value:
            return value, True
        return value, False
    return json.dumps(value, separators=(",", ":"), allow_nan=True, ensure_ascii=False), True


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9_.\-]")


def keyword_name(name: str) -> str:
    """``name`` as a keyword name every parser reads: other characters become ``_``,
    and a name that does not start with a letter or ``_`` gets a leading ``_``."""
    if _NAME.match(name):
        return name
    name = _NAME_JUNK.sub("_", name)
    return name if _NAME.match(name) else "_" + name


def json_to_keyword(name: str, value: Any) -> Keyword:
    """A JSON value as a keyword: lists give several values, ``[]`` a bare keyword.

    A JSON key that is not a valid keyword name is made one (:func:`keyword_name`).
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    pairs = [json_to_value(v) for v in items]
    return Keyword(keyword_name(name), tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def json_to_keywords(body: Mapping[str, Any]) -> tuple[Keyword, ...]:
    """A JSON reply body (keyword -> value) as keywords, in the body's order."""
    return tuple(json_to_keyword(name, value) for name, value in body.items())

"""Keyword dictionaries: typed values for legacy replies, sans-IO.

A dictionary is a data file we define (JSON or TOML, never code; see
protocol_specs/dictionaries.md) listing, for one actor, each keyword's value
types (int, uint, long, float, double, string, enum, bool, hex, bits, pvt),
repeats and invalid markers, as opscore's actorkeys do. Applied to parsed replies
it gives native values, typed JSON and a JSON Schema for clu tooling:

* :meth:`KeywordDictionary.load` (ours, or an actorkeys ``.py`` file) /
  :meth:`KeywordDictionary.from_dict`;
* :meth:`KeywordDictionary.convert` (one keyword -> :class:`TypedKeyword` or None);
* :meth:`KeywordDictionary.reply_to_json` (typed where valid, untyped otherwise);
* :meth:`KeywordDictionary.json_to_keyword` (typed JSON back to text);
* :meth:`KeywordDictionary.json_schema`;
* :func:`import_actorkeys` (an actorkeys Python file -> our format, via the AST).
"""

from .actorkeys_import import import_actorkeys
from .core import CLU_DEFAULT_KEYS, KeywordDictionary
from .errors import ConversionError, DictionaryError
from .keys import KeyDef, TypedKeyword, ValueSpec, native_to_json
from .schema import CLU_DEFAULT_PROPERTIES
from .types import VALUE_TYPES, ValueType

__all__ = [
    "KeywordDictionary", "TypedKeyword", "KeyDef", "ValueSpec", "ValueType", "VALUE_TYPES",
    "DictionaryError", "ConversionError", "import_actorkeys", "native_to_json",
    "CLU_DEFAULT_KEYS", "CLU_DEFAULT_PROPERTIES",
]

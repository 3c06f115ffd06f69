"""Reading and checking dictionary files in our data format (JSON or TOML; never code).

The format (protocol_specs/dictionaries.md)::

    {"actor": "tcc", "version": [5, 2], "help": "...",
     "keys": {"AirTemp": {"help": "...", "values": [{"type": "float", "units": "C",
                                                      "invalid": "NaN"}]},
              "Moved": {"values": []}, ...}}

Every problem raises :class:`DictionaryError` naming the file and the path inside it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..lexical import NAME
from .errors import ConversionError, DictionaryError
from .keys import KeyDef, ValueSpec
from .types import NUMERIC_KINDS, VALUE_TYPES, FloatType, ValueType, parse_bit_fields

_NAME = re.compile(NAME + r"\Z")
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_TOP_FIELDS = {"actor", "version", "help", "keys", "$comment", "$schema"}
_KEY_FIELDS = {"values", "help", "do_cache", "refresh_cmd", "$comment"}
_COMMON_VALUE_FIELDS = {"type", "name", "help", "units", "invalid", "repeat", "$comment"}


@dataclass(frozen=True)
class DictionaryData:
    """The checked content of a dictionary file."""

    actor: str
    version: tuple[int, int]
    help: str | None
    keys: tuple[KeyDef, ...]


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, reason: str) -> DictionaryError:
        return DictionaryError(reason, where, self.source)

    def mapping(self, obj: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(obj, Mapping):
            raise self.fail(where, f"expected an object, got {type(obj).__name__}")
        for key in obj:
            if not isinstance(key, str):
                raise self.fail(where, f"field names must be strings, got {key!r}")
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else key, "unknown field")
        return obj

    def string(self, obj: Mapping[str, Any], field: str, where: str, required: bool = False) -> str | None:
        if field not in obj:
            if required:
                raise self.fail(where, f"missing field {field!r}")
            return None
        value = obj[field]
        if not isinstance(value, str):
            raise self.fail(f"{where}.{field}" if where else field, "expected a string")
        return value

    def natural(self, value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(where, f"expected a non-negative integer, got {value!r}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "expected a list of strings")
        return tuple(value)

    # -- the document ---------------------------------------------------------
    def document(self, obj: Any) -> DictionaryData:
        top = self.mapping(obj, "", _TOP_FIELDS)
        actor = self.string(top, "actor", "", required=True)
        assert actor is not None
        if not _NAME.match(actor):
            raise self.fail("actor", f"not a valid actor name: {actor!r}")
        if "version" not in top:
            raise self.fail("", "missing field 'version'")
        version = top["version"]
        if not isinstance(version, list) or len(version) != 2:
            raise self.fail("version", "expected [major, minor]")
        major = self.natural(version[0], "version[0]")
        minor = self.natural(version[1], "version[1]")
        help_text = self.string(top, "help", "")
        keys_obj = top.get("keys")
        if not isinstance(keys_obj, Mapping):
            raise self.fail("keys", "expected an object of keys")
        keys: list[KeyDef] = []
        seen: dict[str, str] = {}
        for name, spec in keys_obj.items():
            where = f"keys.{name}"
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(where, f"not a valid keyword name: {name!r}")
            if name.lower() in seen:
                raise self.fail(where, f"duplicate of key {seen[name.lower()]!r} (names ignore case)")
            seen[name.lower()] = name
            keys.append(self.key(name, spec, where))
        return DictionaryData(actor, (major, minor), help_text, tuple(keys))

    def key(self, name: str, obj: Any, where: str) -> KeyDef:
        spec = self.mapping(obj, where, _KEY_FIELDS)
        values_obj = spec.get("values", [])
        if not isinstance(values_obj, list):
            raise self.fail(f"{where}.values", "expected a list of value types")
        values = tuple(
            self.value(v, f"{where}.values[{i}]") for i, v in enumerate(values_obj)
        )
        for i, value in enumerate(values[:-1]):
            if not value.fixed:
                raise self.fail(
                    f"{where}.values[{i}].repeat", "only the last value type may vary in count"
                )
        do_cache = spec.get("do_cache")
        if do_cache is not None and not isinstance(do_cache, bool):
            raise self.fail(f"{where}.do_cache", "expected true or false")
        return KeyDef(
            name=name,
            values=values,
            help=self.string(spec, "help", where),
            do_cache=do_cache,
            refresh_cmd=self.string(spec, "refresh_cmd", where),
        )

    def value(self, obj: Any, where: str) -> ValueSpec:
        if not isinstance(obj, Mapping):
            raise self.fail(where, "expected a value type object")
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in VALUE_TYPES:
            raise self.fail(f"{where}.type", f"expected one of {sorted(VALUE_TYPES)}, got {kind!r}")
        cls = VALUE_TYPES[kind]
        allowed = _COMMON_VALUE_FIELDS | set(cls.extra_fields)
        if kind in NUMERIC_KINDS:
            allowed.add("format")
        self.mapping(obj, where, allowed)
        common: dict[str, Any] = {
            key: self.string(obj, key, where) for key in ("name", "help", "units", "invalid")
        }
        if common["name"] is not None and not _TYPE_NAME.match(common["name"]):
            raise self.fail(f"{where}.name", f"not an identifier: {common['name']!r}")
        extra = self.extra(kind, obj, where)
        fmt = self.string(obj, "format", where)
        try:
            vtype: ValueType = cls(**common, format=fmt, **extra)
        except (TypeError, ValueError) as exc:  # pragma: no cover - guarded above
            raise self.fail(where, str(exc)) from None
        if fmt is not None:
            self.check_format(vtype, fmt, f"{where}.format")
        low, high, repeated = self.repeat(obj.get("repeat"), f"{where}.repeat")
        return ValueSpec(vtype, low, high, repeated)

    def extra(self, kind: str, obj: Mapping[str, Any], where: str) -> dict[str, Any]:
        if kind == "enum":
            labels = self.strings(obj.get("labels"), f"{where}.labels")
            if not labels:
                raise self.fail(f"{where}.labels", "an enum needs at least one label")
            lowered = [label.lower() for label in labels]
            if len(set(lowered)) != len(lowered):
                raise self.fail(f"{where}.labels", "labels must differ ignoring case")
            label_help = None
            if "label_help" in obj:
                label_help = self.strings(obj["label_help"], f"{where}.label_help")
                if len(label_help) != len(labels):
                    raise self.fail(f"{where}.label_help", "needs one help text per label")
            return {"labels": labels, "label_help": label_help}
        if kind == "bool":
            labels = self.strings(obj.get("labels", ["F", "T"]), f"{where}.labels")
            if len(labels) != 2 or labels[0] == labels[1]:
                raise self.fail(f"{where}.labels", "expected two different labels [false, true]")
            return {"labels": labels}
        if kind == "bits":
            specs = self.strings(obj.get("fields"), f"{where}.fields")
            try:
                return {"fields": parse_bit_fields(specs)}
            except ValueError as exc:
                raise self.fail(f"{where}.fields", str(exc)) from None
        return {}

    def check_format(self, vtype: ValueType, fmt: str, where: str) -> None:
        """The format must work on a sample number and give text the type reads back."""
        floating = vtype.kind in ("float", "double", "pvt")
        sample: Any = 1234.5 if floating else 1234
        try:
            text = format(sample, fmt)
        except (ValueError, TypeError) as exc:
            raise self.fail(where, f"not a usable format spec: {exc}") from None
        reader = FloatType() if floating else vtype
        try:
            reader.parse(text)
        except ConversionError:
            raise self.fail(where, f"gives {text!r} for {sample}, which does not read back") from None

    def repeat(self, value: Any, where: str) -> tuple[int, int | None, bool]:
        if value is None:
            return 1, 1, False
        if isinstance(value, int) and not isinstance(value, bool):
            count = self.natural(value, where)
            return count, count, True
        if isinstance(value, list) and len(value) in (1, 2):
            low = self.natural(value[0], f"{where}[0]")
            high = None if len(value) == 1 or value[1] is None else self.natural(value[1], f"{where}[1]")
            if high is not None and high < low:
                raise self.fail(where, "max is smaller than min")
            return low, high, True
        raise self.fail(where, "expected a count, [min], [min, max] or [min, null]")


def check_document(obj: Any, source: str = "<dict>") -> DictionaryData:
    """Check a dictionary given as a Python object (parsed JSON/TOML)."""
    return _Checker(source).document(obj)


def _no_duplicates(source: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise DictionaryError(f"duplicate field {key!r}", "", source)
            result[key] = value
        return result

    return hook


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a dictionary file")


def read_document(path: str | Path) -> tuple[Any, str]:
    """Parse a ``.json`` or ``.toml`` dictionary file; return (object, source name)."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DictionaryError(f"cannot read: {exc.strerror or exc}", "", source) from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(data.decode("utf-8")), source
        return (
            json.loads(
                data.decode("utf-8"),
                object_pairs_hook=_no_duplicates(source),
                parse_constant=_no_constants,
            ),
            source,
        )
    except DictionaryError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise DictionaryError(f"not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}", "", source) from None

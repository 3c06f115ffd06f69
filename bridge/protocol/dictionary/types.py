"""Value types of keyword dictionaries: text -> native value, native -> text, JSON schema.

The conversion rules are those of opscore's ``opscore.protocols.types`` (see
protocol_specs/dictionaries.md for the table), reimplemented here:

* ``int``: Python ``int(text, 0)`` (``0x1F``, ``0o17``, ``0b101``, ``1_000``, signs,
  surrounding blanks; leading zeros such as ``010`` rejected), range
  -2147483647..2147483647;
* ``uint``: as ``int``, range -2147483647..4294967295, a negative ``-n`` becoming
  ``0x80000000 | n`` (opscore's sign-magnitude reading);
* ``long``: ``int(text, 0)``, unbounded; ``hex``: ``int(text, 16)``; ``bits``: as ``uint``;
* ``float``: Python ``float(text)``, magnitudes above the float32 maximum rejected
  (infinities accepted); ``double``: ``float(text)``;
* ``string``: any text; ``enum``: a label, case-insensitively, giving the label as
  spelled in the dictionary; ``bool``: exactly one of its two labels (case-sensitive);
* ``pvt``: three values (float position, float velocity, double time) -> ``(p, v, t)``.

Every type may have an ``invalid`` marker: a text equal to it, ignoring case, is the
invalid value ``None`` whatever the type would otherwise say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..canonical import needs_quotes
from .errors import ConversionError

FLOAT32_MAX = 3.4028234663852886e38
INT32_MAX = 0x7FFFFFFF
UINT32_MAX = 0xFFFFFFFF
SIGN_BIT = 0x80000000

#: The texts accepted for non-finite floats in JSON when they travel as strings.
NONFINITE_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

Wire = tuple[str, bool]  # (text, quoted)


@dataclass(frozen=True)
class ValueType:
    """Base of all value types; ``convert`` and ``to_wire`` are the public operations."""

    kind: ClassVar[str] = ""
    #: How many wire values one native value takes (3 for pvt).
    width: ClassVar[int] = 1
    #: Extra fields of the type in the dictionary format, besides the common ones.
    extra_fields: ClassVar[tuple[str, ...]] = ()

    name: str | None = None
    help: str | None = None
    units: str | None = None
    invalid: str | None = None
    format: str | None = None
    _invalid_key: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        key = None if self.invalid is None else self.invalid.lower()
        object.__setattr__(self, "_invalid_key", key)

    # -- text -> native ---------------------------------------------------------
    def convert(self, text: str) -> Any:
        """The native value of one value text; ``None`` for the invalid marker."""
        if self._invalid_key is not None and text.lower() == self._invalid_key:
            return None
        return self.parse(text)

    def parse(self, text: str) -> Any:
        """Convert a text that is not the invalid marker; raise ConversionError."""
        raise NotImplementedError

    def convert_group(self, texts: Sequence[str]) -> Any:
        """The native value of ``width`` consecutive value texts."""
        return self.convert(texts[0])

    # -- native -> text ---------------------------------------------------------
    def to_wire(self, value: Any) -> Wire:
        """One JSON/native value as ``(text, quoted)``; raise ConversionError if impossible."""
        if value is None:
            if self.invalid is None:
                raise ConversionError(f"{self.kind} without an invalid marker cannot be null")
            return self.invalid, needs_quotes(self.invalid)
        return self.format_value(value)

    def format_value(self, value: Any) -> Wire:
        raise NotImplementedError

    def to_wire_group(self, value: Any) -> list[Wire]:
        """A native value as its ``width`` wire values."""
        return [self.to_wire(value)]

    quote_strings: ClassVar[bool] = False

    # -- schema and spec ----------------------------------------------------------
    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        raise NotImplementedError

    def json_schema(self, nonfinite: str = "float") -> dict[str, Any]:
        """Draft-07 schema of the JSON form of one native value."""
        schema = self.base_schema(nonfinite)
        if self.invalid is not None:
            schema = {"anyOf": [schema, {"type": "null"}]}
        if self.name:
            schema["title"] = self.name
        description = self.description()
        if description:
            schema["description"] = description
        return schema

    def description(self) -> str:
        parts = [p for p in (self.help,) if p]
        if self.units:
            parts.append(f"units: {self.units}")
        if self.invalid is not None:
            parts.append(f"invalid marker: {self.invalid!r} (null)")
        return "; ".join(parts)

    def to_spec(self) -> dict[str, Any]:
        """This type in the dictionary format (without ``repeat``)."""
        spec: dict[str, Any] = {"type": self.kind}
        for key in ("name", "help", "units", "invalid", "format"):
            value = getattr(self, key)
            if value is not None:
                spec[key] = value
        spec.update(self.extra_spec())
        return spec

    def extra_spec(self) -> dict[str, Any]:
        return {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_int(text: str, base: int) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise ConversionError(f"not an integer literal: {text!r}") from None


class _IntegerType(ValueType):
    """Shared writing of integer types: ``str(value)`` or the ``format`` spec."""

    default_format: ClassVar[str] = "d"
    minimum: ClassVar[int | None] = None
    maximum: ClassVar[int | None] = None

    def format_value(self, value: Any) -> Wire:
        if not _is_int(value):
            raise ConversionError(f"{self.kind} needs an integer, not {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConversionError(f"{value} is below the {self.kind} range")
        if self.maximum is not None and value > self.maximum:
            raise ConversionError(f"{value} is above the {self.kind} range")
        return format(value, self.format or self.default_format), False

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


@dataclass(frozen=True)
class IntType(_IntegerType):
    """opscore ``Int``: 32-bit signed, symmetric range."""

    kind: ClassVar[str] = "int"
    minimum: ClassVar[int | None] = -INT32_MAX
    maximum: ClassVar[int | None] = INT32_MAX

    def parse(self, text: str) -> int:
        value = _parse_int(text, 0)
        if not -INT32_MAX <= value <= INT32_MAX:
            raise ConversionError(f"out of the int range: {text!r}")
        return value


def _parse_uint(text: str) -> int:
    value = _parse_int(text, 0)
    if not -INT32_MAX <= value <= UINT32_MAX:
        raise ConversionError(f"out of the uint range: {text!r}")
    if value < 0:
        value = SIGN_BIT | -value
    return value


@dataclass(frozen=True)
class UIntType(_IntegerType):
    """opscore ``UInt``: 0..4294967295; ``-n`` reads as ``0x80000000 | n``."""

    kind: ClassVar[str] = "uint"
    minimum: ClassVar[int | None] = 0
    maximum: ClassVar[int | None] = UINT32_MAX

    def parse(self, text: str) -> int:
        return _parse_uint(text)


@dataclass(frozen=True)
class LongType(_IntegerType):
    """opscore ``Long``: any integer literal."""

    kind: ClassVar[str] = "long"

    def parse(self, text: str) -> int:
        return _parse_int(text, 0)


@dataclass(frozen=True)
class HexType(_IntegerType):
    """opscore ``Hex``: base 16, with or without ``0x``; written as ``0x1f``."""

    kind: ClassVar[str] = "hex"
    default_format: ClassVar[str] = "#x"

    def parse(self, text: str) -> int:
        return _parse_int(text, 16)


def parse_bit_fields(specs: Sequence[str]) -> tuple[tuple[str | None, int], ...]:
    """``["ready", "mode:3", ":2"]`` -> ``(("ready", 1), ("mode", 3), (None, 2))``."""
    fields: list[tuple[str | None, int]] = []
    for spec in specs:
        name, _, width_text = spec.partition(":")
        if name and not (name.replace("_", "a").isalnum() and name.isascii()):
            raise ValueError(f"invalid bit field name in {spec!r}")
        if name == "native":
            raise ValueError("'native' is not an allowed bit field name")
        if width_text and not (width_text.isascii() and width_text.isdigit()):
            raise ValueError(f"invalid bit field width in {spec!r}")
        width = int(width_text) if width_text else 1
        if width < 1:
            raise ValueError(f"bit field width must be positive in {spec!r}")
        fields.append((name or None, width))
    if sum(width for _, width in fields) > 32:
        raise ValueError("bit fields are longer than 32 bits in total")
    return tuple(fields)


@dataclass(frozen=True)
class BitsType(_IntegerType):
    """opscore ``Bits``: a uint with named fields (lowest bits first)."""

    kind: ClassVar[str] = "bits"
    extra_fields: ClassVar[tuple[str, ...]] = ("fields",)
    minimum: ClassVar[int | None] = 0
    maximum: ClassVar[int | None] = UINT32_MAX

    fields: tuple[tuple[str | None, int], ...] = ()

    def parse(self, text: str) -> int:
        return _parse_uint(text)

    def decode(self, value: int) -> dict[str, int]:
        """The named fields of ``value``."""
        result: dict[str, int] = {}
        offset = 0
        for name, width in self.fields:
            if name:
                result[name] = (value >> offset) & ((1 << width) - 1)
            offset += width
        return result

    def description(self) -> str:
        layout = ", ".join(f"{name or '-'}:{width}" for name, width in self.fields)
        base = super().description()
        return f"{base}; bit fields (from bit 0): {layout}" if base else f"bit fields (from bit 0): {layout}"

    def extra_spec(self) -> dict[str, Any]:
        return {"fields": [f"{name or ''}:{width}" for name, width in self.fields]}


def _float_from_json(kind: str, value: Any) -> float:
    if isinstance(value, float):
        return value
    if _is_int(value):
        try:
            return float(value)
        except OverflowError:
            raise ConversionError(f"{value} is too large for {kind}") from None
    if isinstance(value, str) and value in NONFINITE_STRINGS:
        return NONFINITE_STRINGS[value]
    raise ConversionError(f"{kind} needs a number, not {value!r}")


class _FloatingType(ValueType):
    def format_value(self, value: Any) -> Wire:
        number = _float_from_json(self.kind, value)
        if self.format and math.isfinite(number):
            return format(number, self.format), False
        return repr(number), False

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        if nonfinite == "string":
            return {"anyOf": [{"type": "number"}, {"enum": list(NONFINITE_STRINGS)}]}
        return {"type": "number"}


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConversionError(f"not a float literal: {text!r}") from None


@dataclass(frozen=True)
class FloatType(_FloatingType):
    """opscore ``Float``: ``float(text)``, at most float32's largest finite magnitude."""

    kind: ClassVar[str] = "float"

    def parse(self, text: str) -> float:
        value = _parse_float(text)
        if abs(value) > FLOAT32_MAX and not math.isinf(value):
            raise ConversionError(f"out of the float range: {text!r}")
        return value


@dataclass(frozen=True)
class DoubleType(_FloatingType):
    """opscore ``Double``: ``float(text)``."""

    kind: ClassVar[str] = "double"

    def parse(self, text: str) -> float:
        return _parse_float(text)


@dataclass(frozen=True)
class StringType(ValueType):
    """opscore ``String``: any text (always written quoted)."""

    kind: ClassVar[str] = "string"
    quote_strings: ClassVar[bool] = True

    def parse(self, text: str) -> str:
        return text

    def format_value(self, value: Any) -> Wire:
        if not isinstance(value, str):
            raise ConversionError(f"string needs a string, not {value!r}")
        return value, True

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        return {"type": "string"}


@dataclass(frozen=True)
class EnumType(ValueType):
    """opscore ``Enum``: one of ``labels``, matched ignoring case."""

    kind: ClassVar[str] = "enum"
    extra_fields: ClassVar[tuple[str, ...]] = ("labels", "label_help")

    labels: tuple[str, ...] = ()
    label_help: tuple[str, ...] | None = None
    _by_key: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        by_key: dict[str, str] = {}
        for label in self.labels:
            by_key.setdefault(label.lower(), label)
        object.__setattr__(self, "_by_key", by_key)

    def parse(self, text: str) -> str:
        try:
            return self._by_key[text.lower()]
        except KeyError:
            raise ConversionError(f"not one of the labels {list(self.labels)}: {text!r}") from None

    def format_value(self, value: Any) -> Wire:
        if not isinstance(value, str) or value.lower() not in self._by_key:
            raise ConversionError(f"not one of the labels {list(self.labels)}: {value!r}")
        label = self._by_key[value.lower()]
        return label, needs_quotes(label)

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.labels)}

    def extra_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"labels": list(self.labels)}
        if self.label_help is not None:
            spec["label_help"] = list(self.label_help)
        return spec


@dataclass(frozen=True)
class BoolType(ValueType):
    """opscore ``Bool(false_label, true_label)``: exactly one of the labels, case-sensitive."""

    kind: ClassVar[str] = "bool"
    extra_fields: ClassVar[tuple[str, ...]] = ("labels",)

    labels: tuple[str, str] = ("F", "T")

    def parse(self, text: str) -> bool:
        if text == self.labels[1]:
            return True
        if text == self.labels[0]:
            return False
        raise ConversionError(f"not {self.labels[0]!r} or {self.labels[1]!r}: {text!r}")

    def format_value(self, value: Any) -> Wire:
        if not isinstance(value, bool):
            raise ConversionError(f"bool needs true or false, not {value!r}")
        label = self.labels[1] if value else self.labels[0]
        return label, needs_quotes(label)

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        return {"type": "boolean"}

    def description(self) -> str:
        base = super().description()
        labels = f"labels: false={self.labels[0]!r}, true={self.labels[1]!r}"
        return f"{base}; {labels}" if base else labels

    def extra_spec(self) -> dict[str, Any]:
        return {"labels": list(self.labels)}


_PVT_COMPONENTS = (FloatType(), FloatType(), DoubleType())


@dataclass(frozen=True)
class PVTType(ValueType):
    """opscore ``PVT``: position (float), velocity (float), time (double) -> ``(p, v, t)``.

    An ``invalid`` marker applies to each of the three values.
    """

    kind: ClassVar[str] = "pvt"
    width: ClassVar[int] = 3

    def parse(self, text: str) -> Any:  # pragma: no cover - pvt converts groups only
        raise ConversionError("a pvt takes three values")

    def convert_group(self, texts: Sequence[str]) -> tuple[float | None, ...]:
        key = self._invalid_key
        return tuple(
            None if key is not None and text.lower() == key else component.parse(text)
            for component, text in zip(_PVT_COMPONENTS, texts)
        )

    def to_wire_group(self, value: Any) -> list[Wire]:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise ConversionError(f"pvt needs [position, velocity, time], not {value!r}")
        return [self.to_wire(item) for item in value]

    def format_value(self, value: Any) -> Wire:
        number = _float_from_json(self.kind, value)
        if self.format and math.isfinite(number):
            return format(number, self.format), False
        return repr(number), False

    def base_schema(self, nonfinite: str) -> dict[str, Any]:
        number: dict[str, Any] = _FloatingType.base_schema(self, nonfinite)
        if self.invalid is not None:
            number = {"anyOf": [number, {"type": "null"}]}
        return {
            "type": "array",
            "items": [dict(number, title=t) for t in ("position", "velocity", "time")],
            "minItems": 3,
            "maxItems": 3,
            "additionalItems": False,
        }

    def json_schema(self, nonfinite: str = "float") -> dict[str, Any]:
        schema = self.base_schema(nonfinite)
        if self.name:
            schema["title"] = self.name
        description = self.description()
        if description:
            schema["description"] = description
        return schema


#: The value types by their name in the dictionary format.
VALUE_TYPES: dict[str, type[ValueType]] = {
    cls.kind: cls
    for cls in (
        IntType, UIntType, LongType, HexType, BitsType, FloatType, DoubleType,
        StringType, EnumType, BoolType, PVTType,
    )
}

#: Types that accept a ``format`` (a Python format spec used when writing values).
NUMERIC_KINDS = frozenset({"int", "uint", "long", "hex", "bits", "float", "double", "pvt"})

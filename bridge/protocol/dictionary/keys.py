"""Keys of a dictionary: whole-keyword validation, JSON shape, and writing JSON back as text.

A key lists value specs positionally; each spec is a value type with a repeat
count ``min..max`` (``max`` None: unbounded). Only the last spec may vary in
count. A keyword validates when its value count fits and every value converts;
otherwise it does not match at all (opscore's rule), and callers fall back to the
untyped mapping.

JSON shape of a validated keyword: a key with one spec and no ``repeat`` gives
the native value itself; any other key gives the list of natives (a declared
repeat stays a list even with one element); a key without specs gives ``[]``.
Invalid values are ``null``; a pvt is ``[p, v, t]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..model import Keyword
from .errors import ConversionError
from .types import ValueType

#: How non-finite floats appear in JSON: as floats (``json.dumps`` writes the
#: ``NaN``/``Infinity`` tokens, as clu does) or as the strings ``"NaN"``,
#: ``"Infinity"``, ``"-Infinity"`` (strict JSON).
NonFinite = Literal["float", "string"]


@dataclass(frozen=True)
class ValueSpec:
    """One positional value type of a key, repeated ``min``..``max`` times."""

    type: ValueType
    min: int = 1
    max: int | None = 1
    #: True if the dictionary declared a ``repeat`` (the JSON value is then a list).
    repeated: bool = False

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def to_spec(self) -> dict[str, Any]:
        spec = self.type.to_spec()
        if self.repeated:
            if self.fixed:
                spec["repeat"] = self.min
            elif self.max is None:
                spec["repeat"] = [self.min]
            else:
                spec["repeat"] = [self.min, self.max]
        return spec


@dataclass(frozen=True)
class KeyDef:
    """One keyword of a dictionary (``name`` spelled as in the dictionary)."""

    name: str
    values: tuple[ValueSpec, ...] = ()
    help: str | None = None
    do_cache: bool | None = None
    refresh_cmd: str | None = None
    #: The key's JSON value is a scalar (one spec, no repeat) rather than a list.
    scalar: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        scalar = len(self.values) == 1 and not self.values[0].repeated
        object.__setattr__(self, "scalar", scalar)

    @property
    def min_values(self) -> int:
        return sum(spec.min * spec.type.width for spec in self.values)

    @property
    def max_values(self) -> int | None:
        total = 0
        for spec in self.values:
            if spec.max is None:
                return None
            total += spec.max * spec.type.width
        return total

    def describe_count(self) -> str:
        low, high = self.min_values, self.max_values
        if high == low:
            return str(low)
        if high is None:
            return f"at least {low}"
        return f"{low} to {high}"

    # -- text -> natives --------------------------------------------------------
    def convert_values(self, texts: Sequence[str]) -> tuple[Any, ...]:
        """The natives of a keyword's value texts; raise ConversionError if they do not fit."""
        count = len(texts)
        natives: list[Any] = []
        index = 0
        last = len(self.values) - 1
        for position, spec in enumerate(self.values):
            width = spec.type.width
            if spec.fixed or position != last:
                repeat = spec.min
            else:
                remaining = count - index
                repeat = remaining // width
                if remaining % width or repeat < spec.min or (
                    spec.max is not None and repeat > spec.max
                ):
                    raise self._count_error(count)
            if index + repeat * width > count:
                raise self._count_error(count)
            for _ in range(repeat):
                try:
                    if width == 1:
                        natives.append(spec.type.convert(texts[index]))
                    else:
                        natives.append(spec.type.convert_group(texts[index : index + width]))
                except ConversionError as exc:
                    raise ConversionError(f"value {index + 1}: {exc}") from None
                index += width
        if index != count:
            raise self._count_error(count)
        return tuple(natives)

    def _count_error(self, count: int) -> ConversionError:
        return ConversionError(f"expected {self.describe_count()} values, got {count}")

    # -- natives -> JSON ----------------------------------------------------------
    def natives_to_json(self, natives: Sequence[Any], nonfinite: NonFinite = "float") -> Any:
        """The JSON value of converted natives (scalar or list, see the module docstring)."""
        items = [native_to_json(v, nonfinite) for v in natives]
        if self.scalar:
            return items[0]
        return items

    # -- JSON -> text -------------------------------------------------------------
    def json_to_values(self, value: Any) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        """Value texts and quoted flags for a JSON value; raise ConversionError if it does not fit."""
        if self.scalar:
            items: Sequence[Any] = [value]
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            raise ConversionError(f"{self.name} needs a list, not {value!r}")
        groups = self._assign(items)
        wires = [w for spec, item in groups for w in spec.type.to_wire_group(item)]
        texts = tuple(w[0] for w in wires)
        self.convert_values(texts)  # what we write must read back
        return texts, tuple(w[1] for w in wires)

    def _assign(self, items: Sequence[Any]) -> list[tuple[ValueSpec, Any]]:
        """Pair each JSON item with its value spec."""
        count = len(items)
        pairs: list[tuple[ValueSpec, Any]] = []
        index = 0
        last = len(self.values) - 1
        for position, spec in enumerate(self.values):
            if spec.fixed or position != last:
                repeat = spec.min
            else:
                repeat = count - index
                if repeat < spec.min or (spec.max is not None and repeat > spec.max):
                    repeat = -1
            if repeat < 0 or index + repeat > count:
                raise ConversionError(f"{self.name}: wrong number of items: {count}")
            pairs.extend((spec, items[index + i]) for i in range(repeat))
            index += repeat
        if index != count:
            raise ConversionError(f"{self.name}: wrong number of items: {count}")
        return pairs

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.help is not None:
            spec["help"] = self.help
        spec["values"] = [v.to_spec() for v in self.values]
        if self.do_cache is not None:
            spec["do_cache"] = self.do_cache
        if self.refresh_cmd is not None:
            spec["refresh_cmd"] = self.refresh_cmd
        return spec


def native_to_json(value: Any, nonfinite: NonFinite = "float") -> Any:
    """A native value as JSON: tuples become lists; non-finite floats per ``nonfinite``."""
    if isinstance(value, float):
        if nonfinite == "string" and not math.isfinite(value):
            if math.isnan(value):
                return "NaN"
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, tuple):
        return [native_to_json(v, nonfinite) for v in value]
    return value


@dataclass(frozen=True)
class TypedKeyword:
    """The result of applying a dictionary key to a wire keyword.

    ``ok`` is False when the keyword's values do not validate; then ``values`` is
    empty and ``error`` says why (callers use the untyped mapping and warn).
    ``values`` are the natives in wire order (a pvt is one tuple ``(p, v, t)``,
    invalid values are None).
    """

    keyword: Keyword
    key: KeyDef
    ok: bool
    values: tuple[Any, ...] = ()
    error: str | None = None

    @property
    def name(self) -> str:
        """The keyword name as spelled in the dictionary."""
        return self.key.name

    def to_json(self, nonfinite: NonFinite = "float") -> Any:
        """The typed JSON value (only meaningful when ``ok``)."""
        if not self.ok:
            raise ValueError(f"keyword {self.keyword.name} did not validate: {self.error}")
        return self.key.natives_to_json(self.values, nonfinite)

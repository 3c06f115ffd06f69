"""Command arguments derived from a function signature (a small, dependency-free parser).

The signature of a command function is its command-line syntax::

    async def expose(cmd, exptime: float, *, count: int = 1, dark: bool = False,
                     shutter: Literal["auto", "open"] = "auto", *filters: str)

reads ``expose EXPTIME [--count INT] [--dark] [--shutter {auto,open}] [FILTERS...]``:

* parameters without a default (before ``*``) are positional arguments;
* parameters with a default, and keyword-only ones, are options ``--name VALUE``
  (``--name=VALUE`` works too; ``_`` and ``-`` are interchangeable in names); a
  keyword-only parameter without a default is a required option;
* a ``bool`` option is a flag: ``--name`` sets True, ``--no-name`` sets False;
* ``*args`` takes all remaining words (``nargs=-1``);
* values are converted with the annotation (``int``, ``float``, ``str``, ``bool``,
  ``Literal[...]`` choices, an ``Enum`` by name or value, ``Optional[X]`` as ``X``);
  without an annotation, with the type of the default, else ``str``.

Words are split like a shell does (:func:`shlex.split`): ``echo "a b" c`` has two
words. ``--`` ends the options; a word like ``-5`` is a value, not an option.
Errors raise :class:`ArgumentError` with a message for the user.
"""

from __future__ import annotations

import enum
import inspect
import shlex
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

_TRUE = frozenset({"t", "true", "yes", "y", "on", "1"})
_FALSE = frozenset({"f", "false", "no", "n", "off", "0"})


class ArgumentError(ValueError):
    """The words of a command do not fit its signature (the message is for the user)."""


def split_words(text: str) -> list[str]:
    """Split a command's argument text into words, shell-style (quotes group words)."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise ArgumentError(f"cannot split arguments: {exc}") from None


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _parse_int(word: str) -> int:
    try:
        return int(word)
    except ValueError:
        return int(word, 0)  # 0x1F, 0o17, 0b101


def _parse_bool(word: str) -> bool:
    lowered = word.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {word!r}")


@dataclass(frozen=True)
class Converter:
    """Turns one word into a value of the parameter's type."""

    convert: Callable[[str], Any]
    metavar: str
    is_bool: bool = False
    choices: tuple[Any, ...] = ()

    def __call__(self, word: str, what: str) -> Any:
        try:
            return self.convert(word)
        except (ValueError, TypeError, KeyError):
            if self.choices:
                options = ", ".join(str(c) for c in self.choices)
                raise ArgumentError(f"invalid value {word!r} for {what}; choose from {options}") \
                    from None
            raise ArgumentError(
                f"invalid value {word!r} for {what} (expected {self.metavar.lower()})") from None


def _literal_converter(choices: tuple[Any, ...]) -> Converter:
    def convert(word: str) -> Any:
        for choice in choices:
            try:
                value = _scalar(type(choice))(word)
            except (ValueError, TypeError):
                continue
            if value == choice:
                return choice
        raise ValueError(word)

    return Converter(convert, "{" + ",".join(str(c) for c in choices) + "}", choices=choices)


def _enum_converter(cls: type[enum.Enum]) -> Converter:
    members = tuple(cls)

    def convert(word: str) -> Any:
        for member in members:
            if word == member.name or word == str(member.value):
                return member
        lowered = word.lower()
        for member in members:
            if lowered == member.name.lower():
                return member
        raise ValueError(word)

    names = tuple(m.name for m in members)
    return Converter(convert, "{" + ",".join(names) + "}", choices=names)


def _scalar(tp: type) -> Callable[[str], Any]:
    if tp is bool:
        return _parse_bool
    if tp is int:
        return _parse_int
    if tp is float:
        return float
    if tp is str:
        return str
    raise TypeError(f"unsupported argument type {tp!r}")


def converter_for(annotation: Any, default: Any = inspect.Parameter.empty) -> Converter:
    """The converter for a parameter annotation (or the type of its default)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        if default is inspect.Parameter.empty or default is None:
            return Converter(str, "TEXT")
        annotation = type(default)
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return converter_for(args[0])
        raise TypeError(f"unsupported argument type {annotation!r} (unions of several types)")
    if origin is Literal:
        return _literal_converter(typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_converter(annotation)
    if annotation in (bool, int, float, str):
        metavar = {bool: "BOOL", int: "INT", float: "FLOAT", str: "TEXT"}[annotation]
        return Converter(_scalar(annotation), metavar, is_bool=annotation is bool)
    raise TypeError(f"unsupported argument type {annotation!r}; use int, float, str, bool, "
                    "Literal[...] or an Enum")


@dataclass(frozen=True)
class Argument:
    """One parameter of a command, as the command line sees it."""

    name: str
    kind: Literal["positional", "option", "variadic"]
    converter: Converter
    default: Any = None
    required: bool = False
    passed_positionally: bool = True

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_flag(self) -> bool:
        return self.kind == "option" and self.converter.is_bool

    def usage(self) -> str:
        if self.kind == "positional":
            return self.name.upper()
        if self.kind == "variadic":
            return f"[{self.name.upper()}...]"
        if self.is_flag:
            text = f"--no-{self.name.replace('_', '-')}" if self.default is True else self.option
        else:
            text = f"{self.option} {self.converter.metavar}"
        return text if self.required else f"[{text}]"


@dataclass
class ParsedArguments:
    """Values ready for the call: ``function(cmd, *args, **kwargs)``."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    target = inspect.unwrap(function)
    target = getattr(target, "__func__", target)
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable string annotations: fall back to the raw ones
        return dict(getattr(target, "__annotations__", {}))


class Signature:
    """The command-line syntax of one command function (see the module docstring)."""

    def __init__(self, arguments: Sequence[Argument]) -> None:
        self.arguments = list(arguments)
        self._options: dict[str, Argument] = {}
        for argument in self.arguments:
            if argument.kind == "option":
                self._options[argument.name.replace("_", "-")] = argument

    @classmethod
    def from_function(cls, function: Callable[..., Any], skip: int = 1) -> Signature:
        """Read the signature of ``function``, skipping its first ``skip`` parameters (cmd)."""
        params = list(inspect.signature(function).parameters.values())
        if len(params) < skip or any(
            p.kind in (p.VAR_POSITIONAL, p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[:skip]
        ):
            raise TypeError(f"command function {function!r} must take the command as its "
                            "first positional parameter")
        hints = _type_hints(function)
        arguments: list[Argument] = []
        for p in params[skip:]:
            annotation = hints.get(p.name, p.annotation)
            conv = converter_for(annotation, p.default)
            has_default = p.default is not p.empty
            if p.kind is p.VAR_KEYWORD:
                raise TypeError(f"command function {function!r}: **{p.name} is not supported")
            if p.kind is p.VAR_POSITIONAL:
                arguments.append(Argument(p.name, "variadic", conv, (), False))
            elif p.kind is p.KEYWORD_ONLY or has_default:
                default = p.default if has_default else None
                if conv.is_bool and not has_default:
                    default = False
                required = not has_default and not conv.is_bool
                arguments.append(Argument(p.name, "option", conv, default, required,
                                          passed_positionally=p.kind is not p.KEYWORD_ONLY))
            else:
                arguments.append(Argument(p.name, "positional", conv, None, True))
        return cls(arguments)

    def usage(self) -> str:
        """``POS [--opt TYPE] [--flag] [REST...]``."""
        order = {"positional": 0, "option": 1, "variadic": 2}
        parts = [a.usage() for a in sorted(self.arguments, key=lambda a: order[a.kind])]
        return " ".join(parts)

    def parse(self, words: Sequence[str]) -> ParsedArguments:
        """Match ``words`` against the signature; raise :class:`ArgumentError` if they do not fit."""
        values: dict[str, Any] = {}
        positional_words: list[str] = []
        only_positional = False
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            if only_positional or not word.startswith("-") or word == "-" or _is_number(word):
                positional_words.append(word)
                continue
            if word == "--":
                only_positional = True
                continue
            if not word.startswith("--"):
                raise ArgumentError(f"unknown option {word!r}")
            name, has_value, value = word[2:].partition("=")
            key = name.replace("_", "-")
            argument = self._options.get(key)
            negated = False
            if argument is None and key.startswith("no-"):
                candidate = self._options.get(key[3:])
                if candidate is not None and candidate.is_flag:
                    argument, negated = candidate, True
            if argument is None:
                raise ArgumentError(f"unknown option --{name}")
            if argument.is_flag:
                if has_value:
                    flag = argument.converter(value, argument.option)
                    values[argument.name] = (not flag) if negated else flag
                else:
                    values[argument.name] = not negated
                continue
            if not has_value:
                if index >= len(words):
                    raise ArgumentError(f"option {argument.option} needs a value")
                value = words[index]
                index += 1
            values[argument.name] = argument.converter(value, argument.option)

        parsed = ParsedArguments()
        remaining = list(positional_words)
        for argument in self.arguments:
            if argument.kind == "positional":
                if not remaining:
                    raise ArgumentError(f"missing argument {argument.name.upper()}")
                parsed.args.append(argument.converter(remaining.pop(0), argument.name.upper()))
            elif argument.kind == "variadic":
                what = argument.name.upper()
                parsed.args.extend(argument.converter(w, what) for w in remaining)
                remaining = []
            elif argument.name in values:
                self._place(parsed, argument, values[argument.name])
            elif argument.required:
                raise ArgumentError(f"missing option {argument.option}")
            else:
                self._place(parsed, argument, argument.default)
        if remaining:
            extra = " ".join(remaining)
            raise ArgumentError(f"unexpected extra argument{'s' if len(remaining) > 1 else ''}: "
                                f"{extra}")
        return parsed

    @staticmethod
    def _place(parsed: ParsedArguments, argument: Argument, value: Any) -> None:
        if argument.passed_positionally:
            parsed.args.append(value)
        else:
            parsed.kwargs[argument.name] = value


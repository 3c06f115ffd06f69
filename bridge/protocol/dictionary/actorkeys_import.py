"""Convert an actorkeys Python file into our dictionary format, reading its syntax tree only.

An actorkeys file is one expression ``KeysDictionary("tcc", (2, 1), Key(...), ...)``
(opscore ``eval``-s it). We parse it with :func:`ast.parse` and accept literal
nodes only (strings, numbers, tuples, ``"a" + "b"``, ``"fmt" % literals``,
``T * n``, ``T * (min, max)``, ``*(Key(...), ...)``), so nothing in the file is ever
executed. ``ByName("x")`` is resolved to the type named ``x`` in an earlier key, as
opscore does. ``reprFmt`` and ``strFmt`` (printf formats for display) are dropped, as
are Key metadata other than ``help``, ``doCache`` and ``refreshCmd``.

What the sdss5 dictionaries use beyond that, read as opscore reads it:

* positional arguments to value types that take none (``String("camera")``,
  ``Int("configuration_id", help=...)``): opscore's ``ValueType.__new__`` accepts
  and ignores them for every type but ``Enum``, ``Bool`` and ``Bits`` (whose
  ``init`` reads them as labels or fields), so they are ignored here too (the value
  gets no name from them); they must still be literals;
* ``Key(name="x", ...)``: the name as a keyword argument;
* computed lists ``*[T(..., name="sp%d_%s" % (n, axis)) for n in (1,) for axis in
  ("A", "B", "C")]`` (values of a key, or keys of the dictionary): a list or
  generator comprehension whose ``for`` clauses bind plain names to literal tuples or
  lists (no ``if``), at most :data:`MAX_EXPANDED` items, evaluated here by
  substitution; ``%`` formats only literal strings, with small field widths.

Anything else is refused with the file, the line and the construct.
"""

from __future__ import annotations

import ast
import copy
import itertools
import re
from collections.abc import Iterator
from typing import Any

from .errors import DictionaryError
from .loader import check_document

_KINDS = {
    "Int": "int", "UInt": "uint", "Long": "long", "Float": "float", "Double": "double",
    "String": "string", "Enum": "enum", "Bool": "bool", "Hex": "hex", "Bits": "bits",
    "PVT": "pvt",
}
_TEXT_META = ("name", "help", "units")
_DROPPED_META = {"reprFmt", "strFmt"}
#: Value types whose positional arguments opscore ignores (no ``init`` of their own).
_IGNORES_POSITIONAL = {"int", "uint", "long", "float", "double", "string", "hex"}
#: Most items one comprehension may produce, and the widest ``%`` field it may format.
MAX_EXPANDED = 1000
_MAX_FIELD = 100
_FORMAT_FIELD = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|[0-9]*)(?:\.(\*|[0-9]*))?[a-zA-Z%]")


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.named: dict[str, dict[str, Any]] = {}
        #: Names bound by the comprehension being expanded (none outside one).
        self.bound: dict[str, Any] = {}

    def fail(self, node: ast.AST | None, reason: str) -> DictionaryError:
        where = f"line {node.lineno}" if node is not None and hasattr(node, "lineno") else ""
        return DictionaryError(reason, where, self.source)

    # -- literals -----------------------------------------------------------------
    def literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self.literal(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.literal(node.operand)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.literal(node.left), self.literal(node.right)
            if isinstance(left, str) and isinstance(right, str):
                return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return self.formatted(node)
        if isinstance(node, ast.Name) and node.id in self.bound:
            return self.bound[node.id]
        raise self.fail(node, f"expected a literal, got {ast.unparse(node)[:60]!r}")

    def formatted(self, node: ast.BinOp) -> str:
        """``"fmt" % literal`` or ``"fmt" % (literals, ...)``, with small fields only."""
        fmt, args = self.literal(node.left), self.literal(node.right)
        if not isinstance(fmt, str):
            raise self.fail(node, f"% needs a literal format string: {ast.unparse(node)[:60]!r}")
        for m in _FORMAT_FIELD.finditer(fmt):
            for size in m.groups():
                if size == "*" or (size and int(size) > _MAX_FIELD):
                    raise self.fail(node, f"unsupported format field {m.group()!r}")
        values = tuple(args) if isinstance(args, list) else args
        try:
            return fmt % values
        except (TypeError, ValueError, KeyError) as exc:
            raise self.fail(node, f"bad format {ast.unparse(node)[:60]!r}: {exc}") from None

    # -- computed lists ----------------------------------------------------------
    def expand(self, args: list[ast.expr]) -> Iterator[ast.expr]:
        """The arguments with ``*(...)``, ``*[...]`` and ``*[x for ...]`` spread out; while
        an item of a comprehension is handled, :attr:`bound` holds its names."""
        for arg in args:
            if not isinstance(arg, ast.Starred):
                yield arg
            elif isinstance(arg.value, (ast.Tuple, ast.List)):
                yield from self.expand(list(arg.value.elts))
            elif isinstance(arg.value, (ast.ListComp, ast.GeneratorExp)):
                yield from self.comprehension(arg.value)
            else:
                raise self.fail(arg, f"unsupported construct {ast.unparse(arg)[:60]!r}: "
                                     "* takes a literal tuple, list or comprehension")

    def comprehension(self, node: ast.ListComp | ast.GeneratorExp) -> Iterator[ast.expr]:
        names: list[str] = []
        for gen in node.generators:
            if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
                raise self.fail(node, f"unsupported comprehension {ast.unparse(node)[:60]!r}: "
                                      "only 'for NAME in (literals)' clauses")
            names.append(gen.target.id)
        outer = self.bound
        try:
            for values in self.bindings(node.generators, 0, dict(outer), [0]):
                self.bound = {**outer, **dict(zip(names, values))}
                yield node.elt
        finally:
            self.bound = outer

    def bindings(self, gens: list[ast.comprehension], i: int, bound: dict[str, Any],
                 count: list[int]) -> Iterator[tuple[Any, ...]]:
        """Every combination of values of the ``for`` clauses from the ``i``-th on."""
        if i == len(gens):
            count[0] += 1
            if count[0] > MAX_EXPANDED:
                raise self.fail(gens[0].iter, f"a comprehension gives more than {MAX_EXPANDED} items")
            yield ()
            return
        saved, self.bound = self.bound, bound
        try:
            items = self.literal(gens[i].iter)
        finally:
            self.bound = saved
        if not isinstance(items, list):
            raise self.fail(gens[i].iter, f"a comprehension runs over a literal tuple or list, "
                                          f"not {ast.unparse(gens[i].iter)[:60]!r}")
        name = gens[i].target.id  # type: ignore[attr-defined]
        for item in items:
            for rest in self.bindings(gens, i + 1, {**bound, name: item}, count):
                yield (item, *rest)

    def text(self, node: ast.AST) -> str:
        value = self.literal(node)
        if not isinstance(value, str):
            raise self.fail(node, f"expected a string, got {value!r}")
        return value

    @staticmethod
    def call_name(node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id
        return None

    # -- structure ----------------------------------------------------------------
    def document(self, text: str) -> dict[str, Any]:
        try:
            tree = ast.parse(text, filename=self.source, mode="exec")
        except SyntaxError as exc:
            raise DictionaryError(f"not valid Python: {exc.msg}", f"line {exc.lineno}", self.source) from None
        body = [
            stmt for stmt in tree.body
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str))
        ]
        if len(body) != 1 or not isinstance(body[0], ast.Expr) or self.call_name(body[0].value) != "KeysDictionary":
            raise self.fail(body[0] if body else None, "expected one KeysDictionary(...) expression")
        call = body[0].value
        assert isinstance(call, ast.Call)
        if call.keywords or len(call.args) < 2:
            raise self.fail(call, "expected KeysDictionary(name, (major, minor), Key(...), ...)")
        actor = self.text(call.args[0])
        version = self.literal(call.args[1])
        if not (isinstance(version, list) and len(version) == 2):
            raise self.fail(call.args[1], "expected a (major, minor) version")
        keys: dict[str, Any] = {}
        for node in self.expand(call.args[2:]):
            if self.call_name(node) != "Key":
                raise self.fail(node, "expected Key(...)")
            assert isinstance(node, ast.Call)
            name, spec = self.key(node)
            if name in keys:
                raise self.fail(node, f"duplicate key {name!r}")
            keys[name] = spec
        return {"actor": actor, "version": version, "keys": keys}

    def key_name(self, call: ast.Call) -> str:
        """``Key("x", ...)`` or ``Key(name="x", ...)`` (then it has no values)."""
        named = [kw for kw in call.keywords if kw.arg == "name"]
        if call.args and named:
            raise self.fail(call, "Key(...) got its name twice")
        if named:
            return self.text(named[0].value)
        if not call.args or isinstance(call.args[0], ast.Starred):
            raise self.fail(call, "Key(...) needs a name")
        return self.text(call.args[0])

    def key(self, call: ast.Call) -> tuple[str, dict[str, Any]]:
        name = self.key_name(call)
        spec: dict[str, Any] = {}
        local_names: dict[str, dict[str, Any]] = {}
        values = []
        for node in self.expand(call.args[1:]):
            value = self.value(node)
            values.append(value)
            if "name" in value and "repeat" not in value:
                local_names[value["name"]] = value
        for kw in call.keywords:
            if kw.arg == "help":
                spec["help"] = self.text(kw.value)
            elif kw.arg == "doCache":
                flag = self.literal(kw.value)
                if not isinstance(flag, (bool, int)):
                    raise self.fail(kw.value, "doCache must be a boolean")
                spec["do_cache"] = bool(flag)
            elif kw.arg == "refreshCmd":
                spec["refresh_cmd"] = self.text(kw.value)
            elif kw.arg is None:
                raise self.fail(kw.value, "**kwargs are not supported in Key(...)")
            elif kw.arg == "name":
                continue  # read by key_name
        spec["values"] = values
        self.named.update(local_names)
        return name, spec

    def value(self, node: ast.AST) -> dict[str, Any]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            spec = self.value_type(node.left)
            spec["repeat"] = self.repeat(node.right)
            return spec
        return self.value_type(node)

    def repeat(self, node: ast.AST) -> Any:
        value = self.literal(node)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, list) and len(value) == 1:
            return [value[0]]
        if isinstance(value, list) and len(value) == 2:
            return [value[0]] if value[1] is None else value
        raise self.fail(node, "repeat must be n, (min,) or (min, max)")

    def value_type(self, node: ast.AST) -> dict[str, Any]:
        kind_name = self.call_name(node)
        assert kind_name is None or isinstance(node, ast.Call)
        if kind_name == "ByName":
            assert isinstance(node, ast.Call)
            if len(node.args) != 1 or node.keywords:
                raise self.fail(node, 'expected ByName("name")')
            ref = self.text(node.args[0])
            if ref not in self.named:
                raise self.fail(node, f'unresolved type ByName("{ref}")')
            return copy.deepcopy(self.named[ref])
        if kind_name not in _KINDS:
            raise self.fail(node, f"expected a value type, got {ast.unparse(node)[:60]!r}")
        assert isinstance(node, ast.Call)
        kind = _KINDS[kind_name]
        spec: dict[str, Any] = {"type": kind}
        args = [self.literal(a) for a in node.args]
        if kind in _IGNORES_POSITIONAL:
            args = []  # opscore ignores them (see the module docstring)
        if kind == "enum":
            if not args:
                raise self.fail(node, "Enum(...) needs labels")
            spec["labels"] = [str(a) for a in args]
        elif kind == "bool":
            if len(args) != 2:
                raise self.fail(node, "Bool(...) needs a false and a true label")
            spec["labels"] = [str(a) for a in args]
        elif kind == "bits":
            if not args or not all(isinstance(a, str) for a in args):
                raise self.fail(node, "Bits(...) needs field specs")
            spec["fields"] = args
        elif args:
            raise self.fail(node, f"{kind_name}(...) takes no positional arguments")
        for kw in node.keywords:
            if kw.arg in _TEXT_META:
                spec[kw.arg] = self.text(kw.value)
            elif kw.arg == "invalid":
                spec["invalid"] = str(self.literal(kw.value))
            elif kw.arg == "labelHelp" and kind == "enum":
                helps = self.literal(kw.value)
                if not isinstance(helps, list) or not all(isinstance(h, str) for h in helps):
                    raise self.fail(kw.value, "labelHelp must be a list of strings")
                spec["label_help"] = helps
            elif kw.arg in _DROPPED_META:
                continue
            else:
                raise self.fail(kw.value, f"unsupported argument {kw.arg}= for {kind_name}")
        return spec


def import_actorkeys(source_text: str, *, source: str = "<actorkeys>") -> dict[str, Any]:
    """Our dictionary format (a dict) for an actorkeys file's text; DictionaryError if unusable.

    The file is parsed, never executed. The result passes :meth:`KeywordDictionary.from_dict`.
    """
    document = _Importer(source).document(source_text)
    check_document(document, source)
    return document

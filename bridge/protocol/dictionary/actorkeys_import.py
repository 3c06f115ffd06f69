"""Convert an actorkeys Python file into our dictionary format, reading its syntax tree only.

An actorkeys file is one expression ``KeysDictionary("tcc", (2, 1), Key(...), ...)``
(opscore ``eval``-s it). We parse it with :func:`ast.parse` and accept literal
nodes only (strings, numbers, tuples, ``"a" + "b"``, ``T * n``, ``T * (min, max)``,
``*(Key(...), ...)``), so nothing in the file is ever executed. ``ByName("x")`` is
resolved to the type named ``x`` in an earlier key, as opscore does. ``reprFmt``
and ``strFmt`` (printf formats for display) are dropped, as are Key metadata other
than ``help``, ``doCache`` and ``refreshCmd``.
"""

from __future__ import annotations

import ast
import copy
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


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.named: dict[str, dict[str, Any]] = {}

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
        raise self.fail(node, f"expected a literal, got {ast.unparse(node)[:60]!r}")

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
        for node in self.key_nodes(call.args[2:]):
            name, spec = self.key(node)
            if name in keys:
                raise self.fail(node, f"duplicate key {name!r}")
            keys[name] = spec
        return {"actor": actor, "version": version, "keys": keys}

    def key_nodes(self, args: list[ast.expr]) -> list[ast.Call]:
        nodes: list[ast.Call] = []
        for arg in args:
            if isinstance(arg, ast.Starred) and isinstance(arg.value, (ast.Tuple, ast.List)):
                nodes.extend(self.key_nodes(list(arg.value.elts)))
            elif self.call_name(arg) == "Key":
                assert isinstance(arg, ast.Call)
                nodes.append(arg)
            else:
                raise self.fail(arg, "expected Key(...)")
        return nodes

    def key(self, call: ast.Call) -> tuple[str, dict[str, Any]]:
        if not call.args:
            raise self.fail(call, "Key(...) needs a name")
        name = self.text(call.args[0])
        spec: dict[str, Any] = {}
        local_names: dict[str, dict[str, Any]] = {}
        values = []
        for node in call.args[1:]:
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

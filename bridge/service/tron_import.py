"""A Tron deployment (config directory + nub modules) translated into a bridge configuration.

Tron starts the nubs listed under ``nubs`` in ``<location>.json`` (``apo.json``,
``lco.json``, ``local.json``); each is a module ``tron/Nubs/<name>.py`` whose
``start(poller)`` builds the connection: for an actor a ``SocketActorNub`` with an
``ASCIIReplyDecoder`` and an ``ASCIICmdEncoder``, its ``initCmds``, ``safeCmds``,
``needsAuth``, ``grabCID``, at the host and port of an ``actors`` entry of the same
file; for commanders a ``SocketListener`` whose accept function builds a ``StdinNub``
(plain commanders) or an ``AuthStdinNub`` (logins, TUI/STUI). ``hub.json``'s
``vocabulary`` names the hub's own actors, ``httpHost``/``httpRoot`` the image server,
``programs.json`` the initial permissions.

The nub modules are read as source with :mod:`ast` and never executed: a small,
bounded interpreter follows ``start`` (assignments of literals, ``str.format`` and
``str.join`` on literals, ``if`` on the location, ``try`` bodies, the ``cfg.get(...,
'actors')[name]`` lookup, the constructors above) and nothing else. A nub it cannot
follow, or whose settings the bridge cannot express, is reported with the reason,
never silently dropped.

Sans-IO: :func:`translate` takes the parsed JSON and the nub sources and returns an
:class:`ImportResult`; :func:`render_toml` writes it as a bridge TOML file;
:func:`read_deployment` is the only part that reads files.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCATIONS = ("APO", "LCO", "LOCAL")
#: The hub's own actors that the bridge's hub port provides.
BRIDGE_VOCABULARY = frozenset({"hub", "keys", "msg", "perms"})
#: A pattern that matches no command: an actor nub without ``safeCmds`` (tron: None).
NO_SAFE_COMMANDS = "(?!)"
#: Where tron reads the passwords of its authenticated listener (``NubAuth``).
TRON_PASSWORDS = "~/.tronpass.cfg"

_KNOWN_CLASSES = frozenset({
    "ASCIIReplyDecoder", "ASCIICmdEncoder", "SocketActorNub", "SocketListener",
    "StdinNub", "AuthStdinNub", "ASCIICmdDecoder", "ASCIIReplyEncoder",
})
_DECODER_OPTIONS = {"EOL", "stripChars", "CIDfirst", "debug", "name"}
_ENCODER_OPTIONS = {"EOL", "useCID", "CIDfirst", "useTarget", "sendCommander",
                    "sendCommanderCID", "debug", "name"}
_NUB_OPTIONS = {"name", "encoder", "decoder", "grabCID", "initCmds", "safeCmds", "needsAuth",
                "logDir", "debug"}
#: Statements interpreted per function at most (a bound, not a limit real nubs reach).
_MAX_STEPS = 500


class NubError(Exception):
    """A nub the importer cannot translate; ``line`` is where in its module (if known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")


@dataclass(frozen=True)
class ActorSettings:
    """One actor nub, in the bridge's terms (``[actors.<name>]``)."""

    name: str
    host: str
    port: int
    mid_first: bool
    command_header: str
    eol: str
    init_commands: tuple[str, ...]
    safe_commands: str
    needs_auth: bool
    nub: str                          # the nub module it came from
    config_key: str                   # its entry in <location>.json's actors
    notes: tuple[str, ...] = ()       # what differs from tron, or what tron ignores


@dataclass(frozen=True)
class Listener:
    """A commander listener nub: ``auth`` (logins: TUI) or plain (``client``)."""

    nub: str
    port: int
    auth: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Untranslated:
    """A nub that was not translated, and why."""

    nub: str
    reason: str


@dataclass
class ImportResult:
    """Everything :func:`render_toml` writes."""

    location: str
    actors: list[ActorSettings] = field(default_factory=list)
    plain_listener: Listener | None = None
    auth_listener: Listener | None = None
    untranslated: list[Untranslated] = field(default_factory=list)
    http_host: str = "localhost"
    http_root: str = "/"
    programs: str | None = None       # path of programs.json as it should be written
    notes: list[str] = field(default_factory=list)
    source: str = ""                  # where the deployment was read from (a comment)


# -- the interpreter ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Unknown:
    what: str
    line: int


@dataclass(frozen=True)
class _CfgSpace:
    var: str


@dataclass(frozen=True)
class _ActorCfg:
    key: str


@dataclass(frozen=True)
class _CfgField:
    key: str
    field: str


@dataclass(frozen=True)
class _Construct:
    cls: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class _Function:
    node: ast.FunctionDef


_CONST_TYPES = (str, int, float, bool, type(None))


def _is_const(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_const(v) for v in value)
    return isinstance(value, _CONST_TYPES)


class _Interpreter:
    """Follows a nub module's ``start`` without running it (see the module docstring)."""

    def __init__(self, tree: ast.Module, location: str) -> None:
        self.location = location
        self.module_env: dict[str, Any] = {}
        self.actors: list[_Construct] = []
        self.acceptors: list[_Construct] = []
        self.commanders: list[_Construct] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                self.module_env[node.name] = _Function(node)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                value = self.eval(node.value, {})
                if _is_const(value):
                    self.module_env[node.targets[0].id] = value

    def run(self, function: str, env: dict[str, Any] | None = None) -> None:
        fn = self.module_env.get(function)
        if not isinstance(fn, _Function):
            raise NubError(f"no function {function}()")
        local = dict(env or {})
        self._block(fn.node.body, local, [0])

    # statements
    def _block(self, body: Sequence[ast.stmt], env: dict[str, Any], steps: list[int]) -> None:
        for stmt in body:
            steps[0] += 1
            if steps[0] > _MAX_STEPS:
                raise NubError("too many statements to follow", stmt.lineno)
            if isinstance(stmt, ast.Assign):
                value = self.eval(stmt.value, env)
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        env[target.id] = value
            elif isinstance(stmt, ast.Expr):
                if isinstance(stmt.value, ast.Call):
                    self._call_statement(stmt.value, env)
                # other expression statements (docstrings) do nothing
            elif isinstance(stmt, ast.Try):
                self._block(stmt.body, env, steps)  # as tron runs it when nothing raises
            elif isinstance(stmt, ast.If):
                test = self.eval(stmt.test, env)
                if isinstance(test, _Unknown) or not _is_const(test):
                    raise NubError(f"'if' on something not known before it runs "
                                   f"({ast.unparse(stmt.test)})", stmt.lineno)
                self._block(stmt.body if test else stmt.orelse, env, steps)
            elif isinstance(stmt, (ast.Pass, ast.Return, ast.Global, ast.Import,
                                   ast.ImportFrom, ast.Delete)):
                continue
            else:
                raise NubError(f"statement {type(stmt).__name__} is not followed "
                               "(only assignments, calls, if and try)", stmt.lineno)

    def _call_statement(self, call: ast.Call, env: dict[str, Any]) -> None:
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == "hub" and call.args:
            value = self.eval(call.args[0], env)
            bucket = {"addActor": self.actors, "addAcceptor": self.acceptors,
                      "addCommander": self.commanders}.get(func.attr)
            if bucket is not None:
                if not isinstance(value, _Construct):
                    raise NubError(f"hub.{func.attr}() of something not followed "
                                   f"({ast.unparse(call.args[0])})", call.lineno)
                bucket.append(value)
        # other calls (stop(), hub.dropActor(...), time.sleep(...)) change nothing here

    # expressions
    def eval(self, node: ast.expr, env: Mapping[str, Any]) -> Any:
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self.eval(e, env) for e in node.elts)
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in self.module_env:
                return self.module_env[node.id]
            return _Unknown(node.id, line)
        if isinstance(node, ast.Attribute):
            if node.attr == "location":  # g.location, hub_globals.location
                return self.location
            return _Unknown(ast.unparse(node), line)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left = self.eval(node.left, env)
            right = self.eval(node.comparators[0], env)
            if _is_const(left) and _is_const(right):
                op = node.ops[0]
                if isinstance(op, ast.Eq):
                    return left == right
                if isinstance(op, ast.NotEq):
                    return left != right
            return _Unknown(ast.unparse(node), line)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            value = self.eval(node.operand, env)
            return (not value) if _is_const(value) else _Unknown(ast.unparse(node), line)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
            left, right = self.eval(node.left, env), self.eval(node.right, env)
            if isinstance(left, str) and _is_const(right):
                try:
                    return left % right if isinstance(node.op, ast.Mod) else left + right
                except (TypeError, ValueError):
                    pass
            return _Unknown(ast.unparse(node), line)
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value, env)
            key = self.eval(node.slice, env)
            if isinstance(base, _CfgSpace) and base.var == "actors" and isinstance(key, str):
                return _ActorCfg(key)
            if isinstance(base, _ActorCfg) and isinstance(key, str):
                return _CfgField(base.key, key)
            return _Unknown(ast.unparse(node), line)
        if isinstance(node, ast.Call):
            return self._call(node, env)
        return _Unknown(ast.unparse(node), line)

    def _call(self, node: ast.Call, env: Mapping[str, Any]) -> Any:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else (
            func.id if isinstance(func, ast.Name) else "")
        line = node.lineno
        if name in _KNOWN_CLASSES:
            if any(isinstance(a, ast.Starred) for a in node.args) \
                    or any(k.arg is None for k in node.keywords):
                raise NubError(f"{name}(*args/**kwargs) is not followed", line)
            args = tuple(self.eval(a, env) for a in node.args)
            kwargs = {k.arg: self.eval(k.value, env) for k in node.keywords if k.arg}
            return _Construct(name, args, kwargs, line)
        if isinstance(func, ast.Attribute):
            owner = self.eval(func.value, env) if not isinstance(func.value, ast.Attribute) \
                else None
            if name == "get" and ast.unparse(func.value).split(".")[-1] == "cfg" \
                    and len(node.args) >= 2:
                var = self.eval(node.args[1], env)
                if isinstance(var, str):
                    return _CfgSpace(var)
            if name == "format" and isinstance(owner, str):
                args = [self.eval(a, env) for a in node.args]
                if all(_is_const(a) for a in args) and not node.keywords:
                    return owner.format(*args)
            if name == "join" and isinstance(owner, str) and len(node.args) == 1:
                items = self.eval(node.args[0], env)
                if isinstance(items, tuple) and all(isinstance(i, str) for i in items):
                    return owner.join(items)
        return _Unknown(ast.unparse(node), line)


# -- translation -------------------------------------------------------------------------
def _option(construct: _Construct, name: str, default: Any, allowed: set[str]) -> Any:
    unknown = sorted(set(construct.kwargs) - allowed)
    if unknown:
        raise NubError(f"{construct.cls}: option(s) {', '.join(unknown)} not translated",
                       construct.line)
    value = construct.kwargs.get(name, default)
    if isinstance(value, (_Unknown, _Construct, _CfgField, _ActorCfg, _CfgSpace)):
        raise NubError(f"{construct.cls}({name}=...) is not known before it runs",
                       construct.line)
    return value


def _eol(value: Any, what: str, line: int) -> str:
    if value not in ("\n", "\r"):
        raise NubError(f"{what} EOL={value!r}: the bridge speaks '\\n' or '\\r' lines", line)
    return value


def _command_header(encoder: _Construct) -> str:
    send_cid = _option(encoder, "sendCommanderCID", False, _ENCODER_OPTIONS)
    send_cmdr = _option(encoder, "sendCommander", False, _ENCODER_OPTIONS)
    use_cid = _option(encoder, "useCID", True, _ENCODER_OPTIONS)
    cid_first = _option(encoder, "CIDfirst", True, _ENCODER_OPTIONS)
    if _option(encoder, "useTarget", False, _ENCODER_OPTIONS):
        raise NubError("ASCIICmdEncoder(useTarget=True) (the actor's name in each command) "
                       "has no bridge equivalent", encoder.line)
    if send_cid:
        raise NubError("ASCIICmdEncoder(sendCommanderCID=True) (the commander's cid before "
                       "each command) has no bridge equivalent", encoder.line)
    if not use_cid:
        return "commander" if send_cmdr else "mid"
    if send_cmdr:
        raise NubError("ASCIICmdEncoder(sendCommander=True, useCID=True) (commander, cid "
                       "and mid) has no bridge equivalent", encoder.line)
    if not cid_first:
        raise NubError("ASCIICmdEncoder(useCID=True, CIDfirst=False) ('mid cid text') has "
                       "no bridge equivalent", encoder.line)
    return "cid-mid"


def _actor(nub: str, construct: _Construct, actors_cfg: Mapping[str, Any],
           location_file: str, overrides: Mapping[str, tuple[str, int]],
           host_override: str | None) -> ActorSettings:
    notes: list[str] = []
    unknown = sorted(set(construct.kwargs) - _NUB_OPTIONS)
    if unknown:
        raise NubError(f"SocketActorNub option(s) {', '.join(unknown)} not translated",
                       construct.line)
    if len(construct.args) < 3:
        raise NubError("SocketActorNub(poller, host, port, ...) expected", construct.line)
    name = construct.kwargs.get("name")
    if not isinstance(name, str) or not re.match(r"[A-Za-z][A-Za-z0-9_]*\Z", name):
        raise NubError(f"actor name {name!r} is not known or not usable", construct.line)
    host_arg, port_arg = construct.args[1], construct.args[2]
    keys = {a.key for a in (host_arg, port_arg) if isinstance(a, _CfgField)}
    if not (isinstance(host_arg, _CfgField) and host_arg.field == "host"
            and isinstance(port_arg, _CfgField) and port_arg.field == "port" and len(keys) == 1):
        raise NubError("host and port do not come from one actors entry of the config",
                       construct.line)
    key = keys.pop()
    if name in overrides:
        host, port = overrides[name]
        notes.append(f"host and port given on the command line (config: actors.{key})")
    else:
        entry = actors_cfg.get(key)
        if not isinstance(entry, Mapping):
            raise NubError(f"{location_file} has no actors.{key} entry (tron fails to start "
                           f"this nub: KeyError {key!r}); give it with --actor {name}=HOST:PORT")
        host, port = entry.get("host"), entry.get("port")
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise NubError(f"{location_file}: actors.{key} needs a host string and a port "
                           "number")
        if host_override is not None:
            host = host_override
        if key != name:
            notes.append(f"host and port of actors.{key} in {location_file}, as tron's nub")
    decoder, encoder = construct.kwargs.get("decoder"), construct.kwargs.get("encoder")
    if not (isinstance(decoder, _Construct) and decoder.cls == "ASCIIReplyDecoder"):
        raise NubError("the reply decoder is not an ASCIIReplyDecoder", construct.line)
    if not (isinstance(encoder, _Construct) and encoder.cls == "ASCIICmdEncoder"):
        raise NubError("the command encoder is not an ASCIICmdEncoder", construct.line)
    if "cidFirst" in decoder.kwargs:
        notes.append(f"ASCIIReplyDecoder(cidFirst={decoder.kwargs['cidFirst']!r}) is not an "
                     "option tron reads (it reads CIDfirst): CIDfirst's default True applies")
    decoder_options = dict(decoder.kwargs)
    decoder_options.pop("cidFirst", None)
    decoder = _Construct(decoder.cls, decoder.args, decoder_options, decoder.line)
    eol = _eol(_option(decoder, "EOL", "\n", _DECODER_OPTIONS), "ASCIIReplyDecoder", decoder.line)
    cmd_eol = _eol(_option(encoder, "EOL", "\n", _ENCODER_OPTIONS), "ASCIICmdEncoder",
                   encoder.line)
    if cmd_eol != eol:
        raise NubError(f"commands end with {cmd_eol!r} but replies with {eol!r}; the bridge "
                       "uses one line terminator per actor", encoder.line)
    strip = _option(decoder, "stripChars", "", _DECODER_OPTIONS)
    if eol == "\r" and strip not in ("\n", ""):
        raise NubError(f"ASCIIReplyDecoder(stripChars={strip!r}) has no bridge equivalent "
                       "(with EOL '\\r' the bridge drops '\\n')", decoder.line)
    if eol == "\r" and strip == "":
        notes.append("tron keeps '\\n' in replies (no stripChars); the bridge drops it")
    if eol == "\n" and strip:
        raise NubError(f"ASCIIReplyDecoder(stripChars={strip!r}) has no bridge equivalent",
                       decoder.line)
    mid_first = not _option(decoder, "CIDfirst", True, _DECODER_OPTIONS)
    header = _command_header(encoder)
    grab = construct.kwargs.get("grabCID", False)
    if isinstance(grab, str):
        raise NubError(f"grabCID={grab!r} (a command sent to learn the cid) has no bridge "
                       "equivalent", construct.line)
    if not grab:
        notes.append("grabCID is off in tron (cid 0 until the actor says otherwise); the "
                     "bridge takes the cid of the actor's first line in any case")
    init = construct.kwargs.get("initCmds", ())
    if not (isinstance(init, tuple) and all(isinstance(c, str) for c in init)):
        raise NubError("initCmds is not a list of literal strings", construct.line)
    for command in init:
        if not command.strip() or "\n" in command or "\r" in command:
            raise NubError(f"init command {command!r} is not one non-empty line", construct.line)
    safe = construct.kwargs.get("safeCmds")
    if safe is None:
        safe = NO_SAFE_COMMANDS
        notes.append("no safeCmds in tron: no command is safe")
    elif not isinstance(safe, str):
        raise NubError("safeCmds is not a literal string", construct.line)
    try:
        re.compile(safe)
    except re.error as exc:
        raise NubError(f"safeCmds {safe!r} is not a valid regular expression: {exc}",
                       construct.line) from None
    needs_auth = construct.kwargs.get("needsAuth", False)
    if not isinstance(needs_auth, bool):
        raise NubError("needsAuth is not a literal True/False", construct.line)
    return ActorSettings(name, host, port, mid_first, header, eol, tuple(init), safe,
                         needs_auth, nub, key, tuple(notes))


def _listener(nub: str, interp: _Interpreter, acceptor: _Construct) -> Listener:
    if acceptor.cls != "SocketListener" or len(acceptor.args) < 4:
        raise NubError(f"{acceptor.cls} is not a SocketListener(poller, port, name, accept)",
                       acceptor.line)
    port, accept = acceptor.args[1], acceptor.args[3]
    if isinstance(port, bool) or not isinstance(port, int):
        raise NubError("the listener's port is not a literal number", acceptor.line)
    if not isinstance(accept, _Function):
        raise NubError("the listener's accept function is not a function of the module",
                       acceptor.line)
    interp.commanders.clear()
    interp.run(accept.node.name, {a.arg: _Unknown(a.arg, accept.node.lineno)
                                  for a in accept.node.args.args})
    if len(interp.commanders) != 1:
        raise NubError(f"{accept.node.name}() adds {len(interp.commanders)} commanders "
                       "(expected one)", accept.node.lineno)
    commander = interp.commanders[0]
    decoder, encoder = commander.kwargs.get("decoder"), commander.kwargs.get("encoder")
    if not (isinstance(decoder, _Construct) and decoder.cls == "ASCIICmdDecoder"
            and isinstance(encoder, _Construct) and encoder.cls == "ASCIIReplyEncoder"):
        raise NubError("the commander does not use ASCIICmdDecoder/ASCIIReplyEncoder",
                       commander.line)
    notes: list[str] = []
    if commander.cls == "AuthStdinNub":
        if decoder.kwargs.get("needCID", True) is not False:
            raise NubError("a login listener whose commands carry a commander id",
                           decoder.line)
        return Listener(nub, port, True, tuple(notes))
    if commander.cls != "StdinNub":
        raise NubError(f"commanders of class {commander.cls} are not translated",
                       commander.line)
    if decoder.kwargs.get("needCID", True) is not True or \
            decoder.kwargs.get("needMID", True) is not True:
        raise NubError("a commander listener whose commands carry no commander id or mid "
                       "(the bridge's hub port reads 'cmdr mid actor text')", decoder.line)
    if encoder.kwargs.get("simple") is not True:
        raise NubError("replies not in tron's simple form (ASCIIReplyEncoder without "
                       "simple=True)", encoder.line)
    return Listener(nub, port, False, tuple(notes))


def translate_nub(nub: str, source: str, location: str, actors_cfg: Mapping[str, Any], *,
                  location_file: str = "",
                  overrides: Mapping[str, tuple[str, int]] | None = None,
                  host: str | None = None) -> ActorSettings | Listener:
    """One nub module's source, translated; raises :class:`NubError` with the reason."""
    overrides = overrides or {}
    try:
        tree = ast.parse(source, filename=f"{nub}.py")
    except SyntaxError as exc:
        raise NubError(f"not valid Python: {exc.msg}", exc.lineno) from None
    interp = _Interpreter(tree, location)
    interp.run("start", {"poller": _Unknown("poller", 0)})
    found = len(interp.actors) + len(interp.acceptors)
    if found != 1:
        raise NubError(f"start() adds {found} actors/listeners to the hub (expected one)")
    if interp.actors:
        return _actor(nub, interp.actors[0], actors_cfg, location_file, overrides, host)
    return _listener(nub, interp, interp.acceptors[0])


def translate(location: str, location_config: Mapping[str, Any],
              hub_config: Mapping[str, Any], nub_sources: Mapping[str, str | None], *,
              programs: str | None = None,
              overrides: Mapping[str, tuple[str, int]] | None = None,
              host: str | None = None, source: str = "") -> ImportResult:
    """Translate a Tron deployment (see the module docstring).

    ``location_config``: the parsed ``<location>.json``; ``hub_config``: ``hub.json``;
    ``nub_sources``: nub name -> module source (None: no such module). ``overrides``:
    actor -> (host, port) used instead of the config's; ``host``: every actor's host.
    """
    overrides = overrides or {}
    location = location.upper()
    if location not in LOCATIONS:
        raise ValueError(f"location must be one of {', '.join(LOCATIONS)}, not {location!r}")
    location_file = f"{location.lower()}.json"
    result = ImportResult(location, programs=programs, source=source)
    http_host, http_root = location_config.get("httpHost"), location_config.get("httpRoot")
    result.http_host = http_host if isinstance(http_host, str) else "localhost"
    result.http_root = http_root if isinstance(http_root, str) else "/"
    vocabulary = hub_config.get("vocabulary", [])
    extra = [w for w in vocabulary if w not in BRIDGE_VOCABULARY] \
        if isinstance(vocabulary, list) else []
    if extra:
        result.notes.append(f"hub.json vocabulary {extra} not provided by the bridge's hub "
                            f"port (it provides {sorted(BRIDGE_VOCABULARY)})")
    actors_cfg = location_config.get("actors", {})
    if not isinstance(actors_cfg, Mapping):
        raise ValueError(f"{location_file}: 'actors' must be an object")
    nubs = location_config.get("nubs", [])
    if not isinstance(nubs, list) or not all(isinstance(n, str) for n in nubs):
        raise ValueError(f"{location_file}: 'nubs' must be a list of names")
    seen: set[str] = set()
    for nub in nubs:
        if nub in seen:
            continue
        seen.add(nub)
        src = nub_sources.get(nub)
        if src is None:
            result.untranslated.append(Untranslated(
                nub, f"no nub module tron/Nubs/{nub}.py (tron fails to start it)"))
            continue
        try:
            got = translate_nub(nub, src, location, actors_cfg, location_file=location_file,
                                overrides=overrides, host=host)
        except NubError as exc:
            where = f" (tron/Nubs/{nub}.py line {exc.line})" if exc.line else ""
            result.untranslated.append(Untranslated(nub, exc.reason + where))
            continue
        if isinstance(got, ActorSettings):
            if any(a.name == got.name for a in result.actors):
                result.untranslated.append(Untranslated(nub, f"actor {got.name} twice"))
            else:
                result.actors.append(got)
        elif got.auth:
            if result.auth_listener is None:
                result.auth_listener = got
            else:
                result.untranslated.append(Untranslated(nub, (
                    f"a second login listener (port {got.port}); the bridge's hub port has "
                    f"one ({result.auth_listener.nub}'s port {result.auth_listener.port})")))
        elif result.plain_listener is None:
            result.plain_listener = got
        else:
            result.untranslated.append(Untranslated(nub, (
                f"a second commander listener (port {got.port}); the bridge's hub port has "
                f"one ({result.plain_listener.nub}'s port {result.plain_listener.port})")))
    ports: dict[tuple[str, int], str] = {}
    for actor in result.actors:
        other = ports.setdefault((actor.host, actor.port), actor.name)
        if other != actor.name:
            result.notes.append(f"actors {other} and {actor.name} are both at "
                                f"{actor.host}:{actor.port}")
    return result


# -- output --------------------------------------------------------------------------------
def _toml_string(value: str) -> str:
    """A TOML string: literal ('...') when that is exact and readable, else basic."""
    if "'" not in value and value.isprintable():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines())


def render_toml(result: ImportResult, *, name: str = "bridge", hub_host: str = "127.0.0.1",
                passwords: str = TRON_PASSWORDS, hub_port: int | None = None,
                auth_port: int | None = None) -> str:
    """The bridge configuration of an :class:`ImportResult`, with comments saying where
    each setting came from and which nubs were not translated (and why). ``hub_port``,
    ``auth_port``: instead of the listener nubs' ports (e.g. beside a running tron)."""
    out: list[str] = [
        _comment(f"Generated by `bridge import-tron` from {result.source or 'a Tron deployment'}"
                 f" (location {result.location})."),
        "# Each [actors.X] is one of tron's actor nubs (tron/Nubs/X.py); [hub] its listeners.",
    ]
    if result.untranslated:
        out.append("#\n# Nubs NOT translated:")
        out.extend(f"#   {u.nub}: {u.reason}" for u in result.untranslated)
    for note in result.notes:
        out.append(_comment(f"Note: {note}"))
    out += ["", f"name = {_toml_string(name)}", ""]
    out.append("[hub]")
    out.append(f"host = {_toml_string(hub_host)}  # tron listens on every interface")
    plain, auth = result.plain_listener, result.auth_listener
    if hub_port is not None:
        out.append(f"port = {hub_port}" + (f"  # tron's {plain.nub} nub: {plain.port}"
                                           if plain else ""))
    else:
        out.append(f"port = {plain.port if plain else 0}" + (
            f"  # tron's {plain.nub} nub" if plain else
            "  # no plain commander listener in tron: any free port"))
    if auth is not None or auth_port is not None:
        if auth_port is not None:
            out.append(f"auth_port = {auth_port}" + (
                f"  # tron's {auth.nub} nub (logins): {auth.port}" if auth else ""))
        else:
            assert auth is not None
            out.append(f"auth_port = {auth.port}  # tron's {auth.nub} nub (logins)")
        out.append(f"passwords = {_toml_string(passwords)}  # tron's NubAuth reads ~/.tronpass.cfg")
    if result.programs is not None:
        out.append(f"programs = {_toml_string(result.programs)}")
    out.append(f"http_host = {_toml_string(result.http_host)}")
    out.append(f"http_root = {_toml_string(result.http_root)}")
    for actor in result.actors:
        out += ["", f"[actors.{actor.name}]",
                f"# tron/Nubs/{actor.nub}.py, actors.{actor.config_key} of "
                f"{result.location.lower()}.json"]
        out.extend(_comment(note) for note in actor.notes)
        out += ["lives = 'legacy'", f"host = {_toml_string(actor.host)}",
                f"port = {actor.port}"]
        if actor.mid_first:
            out.append("mid_first = true")
        out.append(f"command_header = {_toml_string(actor.command_header)}")
        if actor.eol != "\n":
            out.append(f"eol = {json.dumps(actor.eol)}")
        commands = ", ".join(_toml_string(c) for c in actor.init_commands)
        out.append(f"init_commands = [{commands}]")
        out.append(f"safe_commands = {_toml_string(actor.safe_commands)}")
        out.append(f"needs_auth = {'true' if actor.needs_auth else 'false'}")
    return "\n".join(out) + "\n"


# -- reading a deployment --------------------------------------------------------------------
def installed_tron_dir() -> Path:
    """The directory of the installed ``tron`` package (found, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("tron")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("sdss-tron is not installed (no 'tron' package)")
    return Path(spec.origin).parent


def read_deployment(config_dir: Path, location: str, nubs_dir: Path) -> tuple[
        dict[str, Any], dict[str, Any], dict[str, str | None]]:
    """``(<location>.json, hub.json, {nub: source or None})`` read from disk."""
    def load(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} not found") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return data

    location_config = load(config_dir / f"{location.lower()}.json")
    hub_path = config_dir / "hub.json"
    hub_config = load(hub_path) if hub_path.exists() else {}
    sources: dict[str, str | None] = {}
    for nub in location_config.get("nubs", []) if isinstance(
            location_config.get("nubs"), list) else []:
        path = nubs_dir / f"{nub}.py"
        sources[str(nub)] = path.read_text(encoding="utf-8") if path.is_file() else None
    return location_config, hub_config, sources

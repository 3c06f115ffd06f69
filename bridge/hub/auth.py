"""The authenticated hub port: tron's ``knockKnock``/``login`` handshake.

Sans-IO: :class:`Login` is the per-connection state machine, :class:`AuthConfig` the
passwords and the initial permission tables (enforced by :mod:`bridge.hub.perms`). The
server feeds it the text of every ``auth`` command and writes the replies it returns.

Handshake (tron's ``NubAuth``)::

    C: 1 auth knockKnock
    S: .unnamed 1 auth : nonce="<base64 of 64 random bytes>"
    C: 2 auth login program="APO" username="john" password="<hex sha1(nonce + password)>"
    S: APO.john 2 auth : loggedIn; cmdrID="APO.john"

Every login attempt consumes the nonce (success or failure), so a captured login line
can never be replayed: not on the same connection, not on another one (whose nonce
differs), and a nonce is never issued twice by one server.
"""

from __future__ import annotations

import base64
import configparser
import enum
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import Keyword
from .perms import GODS, program_actors

#: Hub verbs any logged-in commander may use (tron's ``hubCommands.safeCmds``).
HUB_SAFE_COMMANDS = r"^\s*(actors|commanders|actorInfo|version|status|ping)\s*$"
#: Actor commands any logged-in commander may send (tron's SDSS nubs' ``safeCmds``).
ACTOR_SAFE_COMMANDS = r"^\s*(ping|status|version)\s*$"

_ARG = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\S+)""")
_NAME_JUNK = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class AuthConfig:
    """Passwords and permissions of the authenticated port.

    ``passwords``: program -> password (program names are case-insensitive, as tron
    upper-cases them). ``programs``: program -> the actors it may command, either in
    tron's ``programs.json`` form (``{"prog": {"actors": [...]}}``) or as plain lists:
    the hub's :class:`~bridge.hub.perms.Permissions` start with them. ``gods`` may
    command every actor (also locked ones); ``safe_commands``: the pattern of commands
    any logged-in commander may send to an actor that has no pattern of its own.
    ``port``/``host``: where the authenticated port listens (host: the server's host if
    None). ``reply_eol``: the line end of replies on that port (tron writes a bare
    ``"\\r"``; opscore reads any).
    """

    passwords: Mapping[str, str]
    programs: Mapping[str, Any] = field(default_factory=dict)
    port: int = 0
    host: str | None = None
    gods: tuple[str, ...] = GODS
    safe_commands: str | None = ACTOR_SAFE_COMMANDS
    reply_eol: str = "\n"

    def password_for(self, program: str) -> str | None:
        """The password of ``program`` (case-insensitive), or None if it has none."""
        wanted = program.upper()
        for name, password in self.passwords.items():
            if name.upper() == wanted:
                return password
        return None

    @classmethod
    def load(cls, passwords_file: str | os.PathLike[str],
             programs_file: str | os.PathLike[str] | None = None, **kwargs: Any) -> "AuthConfig":
        """Read tron's files: ``~/.tronpass.cfg`` (section ``[hub]``) and ``programs.json``."""
        parser = configparser.ConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(passwords_file)
        passwords = dict(parser["hub"]) if parser.has_section("hub") else {}
        programs = load_programs(programs_file) if programs_file else {}
        return cls(passwords, programs, **kwargs)


def load_programs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read tron's ``programs.json`` (``{"PROGRAM": {"actors": [...]}, ...}``); a file of
    another shape raises ValueError naming it."""
    try:
        programs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read programs: {exc}") from None
    if not isinstance(programs, dict):
        raise ValueError(f"{path}: expected an object of programs, got {type(programs).__name__}")
    for name, entry in programs.items():
        try:
            program_actors(entry)
        except ValueError as exc:
            raise ValueError(f"{path}: program {name!r}: {exc}") from None
    return programs


def password_digest(nonce: str, password: str) -> str:
    """What a client sends as ``password``: hex SHA-1 of ``nonce + password``."""
    return hashlib.sha1((nonce + password).encode()).hexdigest()


def new_nonce() -> str:
    """Base64 of 64 random bytes, without newlines (tron's ``makeMyNonce``)."""
    return base64.b64encode(os.urandom(64)).decode()


def commander_name(program: str, username: str, taken: Iterable[str] = ()) -> str:
    """``PROGRAM.user`` made safe and unique as tron does (``_2``, ``_3``... on collision)."""
    parts = []
    for part in (program, username):
        part = _NAME_JUNK.sub("_", part)
        if not re.match(r"[A-Za-z_]", part):
            part = "_" + part
        parts.append(part)
    base = ".".join(parts)
    taken = set(taken)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def parse_login_args(text: str) -> dict[str, str]:
    """``k="v" k2=v2 ...`` -> ``{k: v}`` with quotes and backslash escapes removed."""
    args: dict[str, str] = {}
    for match in _ARG.finditer(text):
        name, value = match.groups()
        if value[:1] in "\"'":
            value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
            value = re.sub(r"\\(.)", r"\1", value)
        args[name] = value
    return args


class LoginState(str, enum.Enum):
    NOT_CONNECTED = "not connected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


@dataclass(frozen=True)
class AuthReply:
    """What to answer an ``auth`` command: code and keywords (source ``auth``)."""

    code: str
    keywords: tuple[Keyword, ...] = ()
    logged_in: bool = False


def _why(text: str) -> AuthReply:
    return AuthReply("f", (Keyword("why", (text,), (True,)),))


@dataclass
class ClientInfo:
    """What a client said about itself at login (tron's ``user=`` keyword)."""

    program: str
    username: str
    type: str = "unknown"
    version: str = "unknown"
    platform: str = "unknown"


class Login:
    """The login state machine of one connection.

    ``issued`` is the server-wide set of nonces ever handed out, so that no nonce is
    issued twice. :meth:`handle` returns the reply; on a successful login
    :attr:`client` says who logged in, and the server picks the commander name.
    """

    def __init__(self, config: AuthConfig, issued: set[str] | None = None) -> None:
        self.config = config
        self.issued = issued if issued is not None else set()
        self.state = LoginState.NOT_CONNECTED
        self.nonce: str | None = None
        self.client: ClientInfo | None = None

    @property
    def logged_in(self) -> bool:
        return self.state is LoginState.CONNECTED

    def handle(self, text: str) -> AuthReply:
        """Answer the ``auth`` command ``text`` (``knockKnock``, ``login ...``, ``logout``)."""
        words = text.split(None, 1)
        verb = words[0] if words else ""
        if self.state is LoginState.CONNECTED:
            if verb == "logout":
                self.state, self.client = LoginState.NOT_CONNECTED, None
                return AuthReply(":", (Keyword("bye"),))
            return _why("already logged in.")
        if self.state is LoginState.NOT_CONNECTED:
            if verb != "knockKnock":
                return _why("please log in.")
            self.nonce = self._fresh_nonce()
            self.state = LoginState.CONNECTING
            return AuthReply(":", (Keyword("nonce", (self.nonce,), (True,)),))
        # CONNECTING: exactly one login attempt per nonce.
        nonce, self.nonce = self.nonce, None
        self.state = LoginState.NOT_CONNECTED
        if verb != "login" or nonce is None:
            return _why("please play by the rules.")
        problem = self._check(nonce, parse_login_args(words[1] if len(words) > 1 else ""))
        if problem is not None:
            return _why(problem)
        self.state = LoginState.CONNECTED
        return AuthReply(":", (), logged_in=True)

    def _check(self, nonce: str, args: dict[str, str]) -> str | None:
        if "program" not in args or "password" not in args:
            return "not all arguments to login were found."
        if not self.config.passwords:
            return "password not configured in server"
        program = args["program"].upper()
        password = self.config.password_for(program)
        if password is None:
            return "unknown program"
        expected = password_digest(nonce, password)
        if not hmac.compare_digest(expected.encode(), args["password"].lower().encode()):
            return "incorrect password"
        self.client = ClientInfo(program, args.get("username") or program,
                                 args.get("type", "unknown"), args.get("version", "unknown"),
                                 args.get("platform", "unknown"))
        return None

    def _fresh_nonce(self) -> str:
        while True:
            nonce = new_nonce()
            if nonce not in self.issued:
                self.issued.add(nonce)
                return nonce

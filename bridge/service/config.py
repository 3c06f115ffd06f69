"""The bridge's configuration: a TOML file, validated with errors that name the key.

One ``[actors.<name>]`` entry per actor says where it lives, so moving an actor
from legacy to AMQP changes one line (``lives``). See ``examples/bridge.toml`` for a
commented example and the README for the whole model.

Environment variables override the file: ``BRIDGE_AMQP_URL`` (the broker; several
nodes of a cluster separated by commas) and ``BRIDGE_TRON`` (``host:port`` of a Tron hub).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.backoff import ReconnectPolicy
from ..core.routing import Route, RoutingTable

LIVES = ("legacy", "hub", "amqp", "local")
COMMAND_HEADERS = ("commander", "mid", "cid-mid")
#: Line terminators of a legacy actor (``[actors.X] eol``): LF, or CR as the TCC's.
EOLS = ("\n", "\r")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: ``[timeouts] drain``: seconds a reload lets the commands a changed or removed actor's
#: old face had accepted finish on their old path before they are failed.
DEFAULT_DRAIN = 30.0


class ConfigError(ValueError):
    """A configuration problem; ``key`` is the dotted path of the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


@dataclass(frozen=True)
class ActorConfig:
    """Where one actor lives and how the bridge serves it."""

    name: str
    lives: str
    host: str = "127.0.0.1"
    port: int | None = None          # legacy: the actor's port; local: the port it listens on
    mid_first: bool = False
    command_header: str = "commander"
    dictionary: Path | None = None
    amqp: bool = True                # serve a legacy/hub/local actor on AMQP
    legacy_port: int | None = None   # serve the actor to legacy clients on this port (by route)
    register: bool = False           # ask the Tron hub to connect to our face (hub startNubs)
    prefer_amqp: bool = False
    spec: str | None = None          # local actors: "module:callable" returning a LegacyActor
    time_limit: float | None = None
    safe_commands: str | None = None  # hub port: commands any logged-in program may send
    eol: str = "\n"                  # line terminator both ways ("\r": the TCC's framing)
    init_commands: tuple[str, ...] | None = None  # sent when the link comes up (None: hub's)
    needs_auth: bool = True          # hub port: locked unless a program is allowed (tron)
    ha: bool = False                 # AMQP face on a replicated queue, several bridges

    def route(self) -> Route:
        """This actor's entry in the routing table."""
        kind = "legacy" if self.lives == "local" else self.lives
        host, port = (self.host, self.port) if self.lives in ("legacy", "local") else (None, None)
        options: dict[str, Any] = {
            "command_header": self.command_header,
            "dictionary": str(self.dictionary) if self.dictionary else None,
            "safe_commands": self.safe_commands, "eol": self.eol,
            "needs_auth": self.needs_auth}
        if self.init_commands is not None:
            options["init_cmds"] = self.init_commands
        return Route(self.name, kind, host, port, self.mid_first, self.prefer_amqp, options)


@dataclass(frozen=True)
class HubPortConfig:
    """The built-in hub port (``[hub]``): where it listens, logins, permissions, images."""

    host: str = "127.0.0.1"
    port: int = 6093
    auth_port: int | None = None
    passwords: Path | None = None     # tron's ~/.tronpass.cfg ([hub] PROGRAM = password)
    programs: Path | None = None      # tron's programs.json (perms' initial tables)
    http_host: str = "localhost"      # hub httpRoot=[http_host, http_root] (tron's local.json)
    http_root: str = "/"


@dataclass(frozen=True)
class HttpConfig:
    """The optional HTTP endpoint: ``/healthz`` and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = 8093


@dataclass(frozen=True)
class LogsConfig:
    """Log files: the main log (``file``), their rotation, per-actor traffic logs."""

    file: Path | None = None
    rotate: str = "size"               # size | mjd
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    mjd_offset: float = 0.3
    traffic: Path | None = None        # directory of the per-actor traffic logs; None: off
    commands: bool = True              # one line per command at its end (bridge.commands)

    def rotation(self) -> Any:
        """The :class:`~bridge.service.logs.Rotation` these settings describe."""
        from .logs import Rotation

        return Rotation(self.rotate, self.max_bytes, self.backups, self.mjd_offset)


@dataclass(frozen=True)
class ProcessConfig:
    """A helper program ``bridge serve`` starts once the broker is up (see processes.py)."""

    name: str
    command: tuple[str, ...]
    wait_ready: bool = True


@dataclass(frozen=True)
class BridgeConfig:
    """Everything ``bridge serve`` needs."""

    name: str = "bridge"
    amqp_url: str | None = None            # None: start a private broker; else the first of:
    amqp_urls: tuple[str, ...] = ()        # every broker URL (cluster nodes), tried in turn
    reconnect: ReconnectPolicy = ReconnectPolicy()
    fail_fast: bool = False                # exit at start if no node answers (else wait)
    tron_host: str | None = None
    tron_port: int | None = None
    discover: bool = False
    hub: HubPortConfig | None = None
    actors: tuple[ActorConfig, ...] = ()
    processes: tuple[ProcessConfig, ...] = ()
    command_time_limit: float | None = None
    connect_timeout: float = 10.0
    publish_timeout: float = 10.0  # an AMQP publish waits this long for the broker's confirm
    reply_hold: float = 60.0       # replies wait this long for a lost broker to come back
    drain_timeout: float = DEFAULT_DRAIN  # a reload lets a retired face's commands finish
    http: HttpConfig | None = None
    logs: LogsConfig = LogsConfig()
    metrics: bool = True           # count commands (metrics, status keywords)
    heartbeat: float = 60.0        # the control actor broadcasts alive_at this often; 0: never
    source: Path | None = field(default=None, compare=False)

    @property
    def tron(self) -> tuple[str, int] | None:
        if self.tron_host and self.tron_port:
            return self.tron_host, self.tron_port
        return None

    def actor(self, name: str) -> ActorConfig | None:
        return next((a for a in self.actors if a.name == name), None)

    def routing_table(self) -> RoutingTable:
        return RoutingTable(a.route() for a in self.actors)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> BridgeConfig:
    """Read and validate a TOML config file; raise :class:`ConfigError` naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("", f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, env=os.environ if env is None else env, base=path.parent,
                        source=path)


def parse_config(data: Mapping[str, Any], *, env: Mapping[str, str] | None = None,
                 base: Path | None = None, source: Path | None = None) -> BridgeConfig:
    """Validate a config mapping (as read from TOML)."""
    env = env or {}
    base = base or Path.cwd()
    r = _Reader(data, "")
    name = r.string("name", "bridge")
    if not _NAME.match(name):
        raise ConfigError("name", "must start with a letter and contain only letters, digits, _")
    amqp = r.table("amqp")
    urls = _amqp_urls(amqp, env.get("BRIDGE_AMQP_URL"))
    defaults = ReconnectPolicy()
    try:
        reconnect = ReconnectPolicy(
            initial=amqp.positive("reconnect_initial", defaults.initial),
            maximum=amqp.positive("reconnect_max", defaults.maximum),
            factor=amqp.number("reconnect_factor", defaults.factor),
            jitter=amqp.number("reconnect_jitter", defaults.jitter))
    except ValueError as exc:
        raise ConfigError("amqp", str(exc)) from None
    fail_fast = amqp.boolean("fail_fast", False)
    tron = r.table("tron")
    tron_host, tron_port = tron.string("host", None), tron.port("port", None)
    if env.get("BRIDGE_TRON"):
        tron_host, tron_port = _host_port(env["BRIDGE_TRON"], "BRIDGE_TRON")
    elif tron_port is not None and tron_host is None:
        tron_host = "127.0.0.1"
    hub = None
    if "hub" in data:
        h = r.table("hub")
        hub = HubPortConfig(h.string("host", "127.0.0.1"), h.port("port", 6093),
                            h.port("auth_port", None), h.path("passwords", None, base),
                            h.path("programs", None, base), h.string("http_host", "localhost"),
                            h.string("http_root", "/"))
        if hub.programs is not None and not hub.programs.is_file():
            raise ConfigError("hub.programs", f"file {str(hub.programs)!r} not found")
        h.done()
    http = None
    if "http" in data:
        t = r.table("http")
        http = HttpConfig(t.string("host", "127.0.0.1"), t.port("port", 8093))
        t.done()
    logs = _logs(r.table("logs"), base)
    metrics = r.table("metrics")
    control = r.table("control")
    timeouts = r.table("timeouts")
    command = timeouts.number("command", 0.0)
    config = BridgeConfig(
        name=name, amqp_url=urls[0] if urls else None, amqp_urls=urls,
        reconnect=reconnect, fail_fast=fail_fast, tron_host=tron_host, tron_port=tron_port,
        discover=tron.boolean("discover", False), hub=hub,
        actors=_actors(r.table("actors"), base),
        processes=_processes(r.table("processes")),
        command_time_limit=command or None,
        connect_timeout=timeouts.number("connect", 10.0),
        publish_timeout=timeouts.positive("publish", 10.0),
        reply_hold=timeouts.number("reply_hold", 60.0),
        drain_timeout=timeouts.number("drain", DEFAULT_DRAIN), http=http, logs=logs,
        metrics=metrics.boolean("enabled", True), heartbeat=control.number("heartbeat", 60.0),
        source=source,
    )
    for t in (amqp, tron, timeouts, metrics, control):
        t.done()
    r.done()
    _check(config)
    return config


def _amqp_urls(amqp: "_Reader", from_env: str | None) -> tuple[str, ...]:
    """``[amqp] url`` (a string or a list of strings), or BRIDGE_AMQP_URL (comma-separated)."""
    if from_env:
        key, urls = "BRIDGE_AMQP_URL", [u.strip() for u in from_env.split(",")]
        amqp._get("url", None)
    else:
        key, value = "amqp.url", amqp._get("url", None)
        if value is None:
            return ()
        if isinstance(value, str):
            urls = [value]
        elif isinstance(value, list) and value and all(isinstance(u, str) for u in value):
            urls = list(value)
        else:
            raise ConfigError(key, f"must be a URL or a non-empty list of URLs, not {value!r}")
    for url in urls:
        if not url.startswith(("amqp://", "amqps://")):
            raise ConfigError(key, f"expected an amqp:// URL, got {url!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError(key, "the same URL is given twice")
    return tuple(urls)


def _actors(table: "_Reader", base: Path) -> tuple[ActorConfig, ...]:
    actors = []
    for name in table.keys():
        a = table.table(name)
        key = f"actors.{name}"
        if not _NAME.match(name):
            raise ConfigError(key, "actor names start with a letter and contain letters, "
                                   "digits and _ only")
        lives = a.choice("lives", LIVES, None)
        if lives is None:
            raise ConfigError(f"{key}.lives", f"required: one of {', '.join(LIVES)}")
        actor = ActorConfig(
            name=name, lives=lives, host=a.string("host", "127.0.0.1"),
            port=a.port("port", None), mid_first=a.boolean("mid_first", False),
            command_header=a.choice("command_header", COMMAND_HEADERS, "commander"),
            dictionary=a.path("dictionary", None, base),
            amqp=a.boolean("amqp", lives != "amqp"), legacy_port=a.port("legacy_port", None),
            register=a.boolean("register", False), prefer_amqp=a.boolean("prefer_amqp", False),
            spec=a.string("spec", None), time_limit=a.number("time_limit", 0.0) or None,
            safe_commands=a.string("safe_commands", None),
            eol=a.choice("eol", EOLS, "\n"), init_commands=a.strings("init_commands", None),
            needs_auth=a.boolean("needs_auth", True), ha=a.boolean("ha", False),
        )
        if actor.safe_commands is not None:
            try:
                re.compile(actor.safe_commands)
            except re.error as exc:
                raise ConfigError(f"{key}.safe_commands",
                                  f"not a valid regular expression: {exc}") from None
        a.done()
        if lives in ("legacy", "local") and actor.port is None:
            raise ConfigError(f"{key}.port", f"required for an actor that lives {lives!r}")
        if lives == "local" and not actor.spec:
            raise ConfigError(f"{key}.spec", "required for a local actor: 'module:callable'")
        if lives == "amqp" and actor.port is not None:
            raise ConfigError(f"{key}.port", "an AMQP actor has no port; use legacy_port for "
                                             "its legacy face")
        if actor.eol != "\n" and (lives in ("local", "hub")
                                   or (lives == "amqp" and actor.legacy_port is None)):
            raise ConfigError(f"{key}.eol", "applies to a legacy actor's link or an AMQP "
                                            "actor's legacy face (legacy_port) only")
        if actor.init_commands is not None and lives in ("amqp", "hub"):
            raise ConfigError(f"{key}.init_commands", "applies to a legacy or local actor "
                              "only (a Tron hub sends its own nubs' init commands)")
        if actor.prefer_amqp and (lives == "amqp" or actor.amqp):
            raise ConfigError(f"{key}.prefer_amqp", "needs a legacy/hub actor with amqp = false "
                              "(a bridge that serves the actor on AMQP holds its AMQP name)")
        if actor.ha and (lives == "amqp" or not actor.amqp):
            raise ConfigError(f"{key}.ha", "applies to an actor this bridge serves on AMQP "
                                           "(a legacy, hub or local actor with amqp = true)")
        if actor.dictionary is not None and not actor.dictionary.is_file():
            raise ConfigError(f"{key}.dictionary", f"file {str(actor.dictionary)!r} not found")
        actors.append(actor)
    return tuple(actors)


def _logs(t: "_Reader", base: Path) -> LogsConfig:
    from .logs import ROTATIONS

    max_bytes = t.number("max_bytes", 10 * 1024 * 1024)
    if max_bytes != int(max_bytes):
        raise ConfigError(t.key("max_bytes"), f"must be a whole number, not {max_bytes!r}")
    backups = t.number("backups", 5)
    if backups != int(backups):
        raise ConfigError(t.key("backups"), f"must be a whole number, not {backups!r}")
    offset = t._get("mjd_offset", 0.3)
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not -1 < offset < 1:
        raise ConfigError(t.key("mjd_offset"), f"must be a number between -1 and 1 (a fraction "
                                               f"of a day), not {offset!r}")
    logs = LogsConfig(file=t.path("file", None, base), rotate=t.choice("rotate", ROTATIONS, "size"),
                      max_bytes=int(max_bytes), backups=int(backups), mjd_offset=float(offset),
                      traffic=t.path("traffic", None, base), commands=t.boolean("commands", True))
    t.done()
    return logs


def _processes(table: "_Reader") -> tuple[ProcessConfig, ...]:
    out = []
    for name in table.keys():
        t = table.table(name)
        command = t._get("command", None)
        if (not isinstance(command, list) or not command
                or not all(isinstance(c, str) for c in command)):
            raise ConfigError(f"processes.{name}.command", "must be a non-empty list of strings")
        out.append(ProcessConfig(name, tuple(command), t.boolean("wait_ready", True)))
        t.done()
    return tuple(out)


def _check(config: BridgeConfig) -> None:
    for actor in config.actors:
        key = f"actors.{actor.name}"
        if actor.lives == "hub" and config.tron is None:
            raise ConfigError(f"{key}.lives", "'hub' needs a [tron] hub to connect to")
        if actor.register and config.tron is None:
            raise ConfigError(f"{key}.register", "needs a [tron] hub to register with")
        if actor.register and actor.legacy_port is None and actor.lives == "amqp":
            raise ConfigError(f"{key}.register", "needs legacy_port (the face the hub connects to)")
    ports: dict[int, str] = {}
    for actor in config.actors:
        for port, what in ((actor.legacy_port, "legacy_port"),
                           (actor.port if actor.lives == "local" else None, "port")):
            if port is None or port == 0:
                continue
            if port in ports:
                raise ConfigError(f"actors.{actor.name}.{what}",
                                  f"port {port} is also used by {ports[port]}")
            ports[port] = f"actors.{actor.name}.{what}"


def _host_port(text: str, key: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"expected host:port, got {text!r}")
    return host, int(port)


class _Reader:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, data: Any, prefix: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(prefix, "must be a table")
        self.data, self.prefix, self.read = data, prefix, set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def keys(self) -> list[str]:
        return list(self.data)

    def _get(self, name: str, default: Any) -> Any:
        self.read.add(name)
        return self.data.get(name, default)

    def table(self, name: str) -> "_Reader":
        return _Reader(self._get(name, {}), self.key(name))

    def string(self, name: str, default: Any) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, not {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, not {value!r}")
        return value

    def number(self, name: str, default: float) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(self.key(name), f"must be a non-negative number, not {value!r}")
        return float(value)

    def positive(self, name: str, default: float) -> float:
        value = self.number(name, default)
        if value <= 0:
            raise ConfigError(self.key(name), f"must be a positive number, not {value!r}")
        return value

    def port(self, name: str, default: int | None) -> int | None:
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 65536:
            raise ConfigError(self.key(name), f"must be a port number (0-65535), not {value!r}")
        return value

    def strings(self, name: str, default: Any) -> Any:
        """A list of strings (as a tuple); each one a single line."""
        value = self._get(name, default)
        if value is default:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.key(name), f"must be a list of strings, not {value!r}")
        for v in value:
            if "\n" in v or "\r" in v or not v.strip():
                raise ConfigError(self.key(name), f"each entry must be one non-empty line, "
                                                  f"not {v!r}")
        return tuple(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> Any:
        value = self._get(name, default)
        if value is not default and value not in choices:
            shown = ", ".join(c if c.isprintable() else repr(c) for c in choices)
            raise ConfigError(self.key(name), f"must be one of {shown}, "
                                              f"not {value!r}")
        return value

    def path(self, name: str, default: Any, base: Path) -> Path | None:
        value = self.string(name, default)
        if value is default or value is None:
            return value
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.read]
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown setting")

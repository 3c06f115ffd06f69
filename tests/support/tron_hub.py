"""The REAL Tron hub (sdss-tron) as a test peer, plus a raw-socket commander client.

:class:`TronHub` owns a state dir (config, logs, generated nub modules) and runs
``tests/peers/run_tron_hub.py`` as a :class:`~tests.support.processes.ManagedProcess`.
Commanders connect to ``hub.host:hub.port`` (our ``loopclient`` nub, loopback only).
Actors are registered with :meth:`TronHub.add_actor` (writes ``local.json`` and the nub
module ``<name>.py``) and connected with :meth:`TronHub.start_nubs` or, as in a real
deployment, by the actor itself sending ``hub startNubs <name>``.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.ports import LOOPBACK, free_port
from tests.support.processes import ManagedProcess

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"
LAUNCHER = PEERS_DIR / "run_tron_hub.py"
LISTENER_NUB = "loopclient"
AUTH_LISTENER_NUB = "loopauth"
DEFAULT_INIT_CMDS = ("ping", "status", "version")
TERMINAL_CODES = frozenset(":fF")

_cid_numbers = itertools.count(1)


@dataclass
class ActorEntry:
    """One actor the hub can connect to (an ``actors`` entry of ``local.json``)."""

    name: str
    host: str
    port: int
    mid_first: bool = False
    init_cmds: tuple[str, ...] = DEFAULT_INIT_CMDS
    boot: bool = False
    grab_cid: bool = True
    send_commander: bool = True

    def config(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "actorName": self.name,
            "midFirst": self.mid_first,
            "initCmds": list(self.init_cmds),
            "grabCID": self.grab_cid,
            "sendCommander": self.send_commander,
        }


class HubCommandError(RuntimeError):
    """A hub command failed (``f`` reply, warning about a nub) or timed out."""


class LineClient:
    """Blocking newline-delimited TCP client (for raw protocol checks in tests).

    Every received line is kept in :attr:`lines`; :meth:`read_line` raises
    ``TimeoutError`` when nothing complete arrives in time.
    """

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.timeout = timeout
        self.lines: list[str] = []
        self._buffer = b""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_raw(self, line: str) -> None:
        """Send ``line`` plus a newline as it is."""
        self.sock.sendall(line.encode() + b"\n")

    def read_line(self, timeout: float | None = None) -> str:
        """Next line (without the newline)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete line; got so far: {self._buffer!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout as exc:
                raise TimeoutError(f"no complete line; got so far: {self._buffer!r}") from exc
            if not chunk:
                raise ConnectionError(f"peer closed the connection; partial: {self._buffer!r}")
            self._quickack()
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n", 1)
        line = raw.decode(errors="replace").rstrip("\r")
        self.lines.append(line)
        return line

    def read_until(self, done: Callable[[str], bool], timeout: float | None = None) -> list[str]:
        """Read lines until ``done(line)`` is true; return them all (that one last)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        got: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met; lines so far: {got}")
            got.append(self.read_line(remaining))
            if done(got[-1]):
                return got

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _quickack(self) -> None:
        # Tron does not set TCP_NODELAY; acking at once avoids ~40 ms Nagle stalls.
        quickack = getattr(socket, "TCP_QUICKACK", None)
        if quickack is not None:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            except OSError:
                pass


class HubCommander(LineClient):
    """Raw commander: ``<cid> <mid> <actor> <command>`` out, hub reply lines in.

    The hub sends every commander every reply of every actor; :meth:`call` returns only
    the lines of its own command (same cid and mid), up to and including the terminal one.
    """

    def __init__(self, host: str, port: int, cid: str | None = None, timeout: float = 10.0):
        super().__init__(host, port, timeout)
        self.cid = cid or f"tests.c{next(_cid_numbers)}"
        self._mids = itertools.count(1)

    def send(self, actor: str, command: str, mid: int | None = None) -> int:
        """Send one command line; return the mid used."""
        mid = next(self._mids) if mid is None else mid
        self.send_raw(f"{self.cid} {mid} {actor} {command}")
        return mid

    def wait_for(self, mid: int, timeout: float | None = None) -> list[str]:
        """Lines for (our cid, ``mid``) until a terminal code (``:``/``f``/``F``)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        mine: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no terminal reply for {self.cid} {mid}; got {mine}")
            line = self.read_line(remaining)
            parts = line.split(None, 4)
            if len(parts) >= 4 and parts[0] == self.cid and parts[1] == str(mid):
                mine.append(line)
                if parts[3] in TERMINAL_CODES:
                    return mine

    def call(self, actor: str, command: str, timeout: float | None = None) -> list[str]:
        """Send a command and return its reply lines (the last one is terminal)."""
        return self.wait_for(self.send(actor, command), timeout)


def _quoted(name: str) -> str:
    return f'"{name}"'


def reply_code(line: str) -> str:
    """The code field of a hub reply line ``<cid> <mid> <actor> <code> ...``."""
    parts = line.split(None, 4)
    return parts[3] if len(parts) >= 4 else ""


@dataclass
class TronHub:
    """The real Tron hub on ``host:port`` with its state in ``state_dir``."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    host: str = LOOPBACK
    ready_timeout: float = 30.0
    actors: dict[str, ActorEntry] = field(default_factory=dict)
    #: With a port: also tron's authenticated TUI listener (``loopauth``) there, with
    #: ``passwords`` (program -> password) in ``~/.tronpass.cfg`` (HOME = state dir).
    auth_port: int | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        for sub in (self.config_dir, self.log_dir, self.nub_dir):
            sub.mkdir(parents=True, exist_ok=True)
        env = None
        if self.auth_port is not None:
            home = self.state_dir / "home"
            home.mkdir(exist_ok=True)
            lines = [f"{program} = {password}" for program, password in self.passwords.items()]
            (home / ".tronpass.cfg").write_text("[hub]\n" + "\n".join(lines) + "\n")
            env = {"HOME": str(home)}
        self.process = ManagedProcess(
            [sys.executable, str(LAUNCHER), "--state-dir", str(self.state_dir)],
            name="tron",
            log_dir=self.state_dir,
            env=env,
            cwd=self.state_dir,
            ready_timeout=self.ready_timeout,
        )
        self._write_config()

    # -- paths ---------------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        return self.state_dir / "config"

    @property
    def log_dir(self) -> Path:
        """``TRON_LOG_DIR``: the hub's own logs (one sub-dir per actor nub)."""
        return self.state_dir / "logs"

    @property
    def nub_dir(self) -> Path:
        return self.state_dir / "nubs"

    @property
    def process_log(self) -> Path:
        """stdout/stderr of the hub process."""
        return self.process.log_path

    @property
    def running(self) -> bool:
        return self.process.running

    def hub_log_text(self) -> str:
        """The hub's own debug log (``log_dir/hub/*.log``, all runs): every command it saw."""
        files = sorted((self.log_dir / "hub").glob("*.log"))
        return "".join(f.read_text(errors="replace") for f in files)

    # -- actors --------------------------------------------------------------------------

    def add_actor(
        self,
        name: str,
        host: str,
        port: int,
        mid_first: bool = False,
        init_cmds: Sequence[str] = DEFAULT_INIT_CMDS,
        *,
        boot: bool = False,
        grab_cid: bool = True,
        send_commander: bool = True,
    ) -> None:
        """Make actor ``name`` at ``host:port`` known to the hub (config + nub module).

        Takes effect at the next ``hub startNubs name`` (:meth:`start_nubs`, or the actor
        asking itself); with ``boot=True`` also at every hub (re)start. ``mid_first``:
        the actor writes ``<mid> <cid> <code>`` reply headers instead of clu's
        ``<cid> <mid> <code>``.
        """
        if not name.isidentifier() or name == LISTENER_NUB or name == "actornub":
            raise ValueError(f"unusable actor/nub name {name!r}")
        self.actors[name] = ActorEntry(
            name, host, int(port), mid_first, tuple(init_cmds), boot, grab_cid, send_commander
        )
        module = (
            f'"""Generated by tests/support/tron_hub.py: tron actor nub for {name!r}."""\n\n'
            "from tron.Nubs.actornub import start_actor_nub, stop_actor_nub\n\n"
            f"name = {name!r}\n\n\n"
            "def start(poller):\n    start_actor_nub(poller, name)\n\n\n"
            "def stop():\n    stop_actor_nub(name)\n"
        )
        self._write_atomic(self.nub_dir / f"{name}.py", module)
        self._write_config()

    def add_stock_actor(self, name: str, host: str, port: int, *, boot: bool = False) -> None:
        """Make actor ``name`` known to the hub for tron's OWN nub of that name
        (``tron/Nubs/<name>.py``, e.g. ``tcc``: its framing, initCmds and safeCmds), which
        reads only host and port from ``local.json``. No nub module is generated. With
        ``boot`` the nub is in ``local.json``'s ``nubs`` (started with the hub)."""
        stale = self.nub_dir / f"{name}.py"
        if stale.exists():
            stale.unlink()
        self.actors[name] = ActorEntry(name, host, int(port), boot=boot)
        self._write_config()

    def start_nubs(self, *names: str, timeout: float = 15.0) -> list[str]:
        """Send ``hub startNubs NAMES``, wait for its ``:`` and for each nub to be usable.

        Returns the reply lines of ``startNubs``. Raises :class:`HubCommandError` if the
        hub fails the command or warns that a nub could not be started (e.g. the actor
        is not listening). See :meth:`wait_actor_ready` for why the extra wait.
        """
        lines = self._nub_command("startNubs", names, timeout)
        for name in names:
            self.wait_actor_ready(name, timeout)
        return lines

    def wait_actor_ready(self, name: str, timeout: float = 15.0) -> None:
        """Wait until the hub's nub for ``name`` has read the actor's greeting.

        Tron finishes ``startNubs`` as soon as the socket is connected; a ``grabCID``
        nub learns the actor's connection id only from the first line it reads. A
        command relayed before that is registered under cid 0 and its replies never
        reach the commander (a real tron race). ``hub actorInfo`` shows the nub's read
        count, so poll it (no-op for actors registered with ``grab_cid=False``).
        """
        entry = self.actors.get(name)
        if entry is not None and not entry.grab_cid:
            return
        deadline = time.monotonic() + timeout
        with self.commander(cid="tests.ready", timeout=timeout) as cmdr:
            while True:
                lines = cmdr.call("hub", f"actorInfo {name}", timeout)
                reads = [ln for ln in lines if f"ioReads={_quoted(name)}," in ln]
                if reads and int(reads[0].rsplit("ioReads=", 1)[1].split(",")[1]) > 0:
                    return
                if time.monotonic() >= deadline:
                    raise HubCommandError(
                        f"hub nub {name} read nothing from its actor within {timeout} s: {lines}"
                    )
                time.sleep(0.02)

    def stop_nubs(self, *names: str, timeout: float = 15.0) -> list[str]:
        """Send ``hub stopNubs NAMES`` (disconnect those actors) and wait for its ``:``."""
        return self._nub_command("stopNubs", names, timeout)

    # -- commanders ----------------------------------------------------------------------

    def commander(self, cid: str | None = None, timeout: float = 10.0) -> HubCommander:
        """A new raw commander connection to this hub (close it, or use ``with``)."""
        return HubCommander(self.host, self.port, cid=cid, timeout=timeout)

    def call(self, actor: str, command: str, timeout: float = 10.0) -> list[str]:
        """One command through a fresh commander connection; return its reply lines."""
        with self.commander(timeout=timeout) as cmdr:
            return cmdr.call(actor, command, timeout)

    # -- life cycle ----------------------------------------------------------------------

    def start(self, require_boot_actors: bool = True) -> str:
        """Start the hub (boots the listener and ``boot=True`` actors); return READY line.

        With ``require_boot_actors`` a boot actor that could not be connected raises
        :class:`HubCommandError` (the hub keeps running).
        """
        ready = self.process.start()
        if require_boot_actors:
            this_run = self.process.log_text().rsplit("=== start #", 1)[-1]
            failed = [ln for ln in this_run.splitlines() if "FAILED to start nub" in ln]
            if failed:
                raise HubCommandError(f"hub started without boot actors: {failed}")
            for entry in self.actors.values():
                if entry.boot:
                    self.wait_actor_ready(entry.name)
        return ready

    def stop(self) -> int | None:
        """SIGTERM (then SIGKILL) the hub; return its exit status."""
        return self.process.stop()

    def kill(self) -> int | None:
        """SIGKILL the hub (crash simulation)."""
        return self.process.kill()

    def restart(self, require_boot_actors: bool = True) -> str:
        """Stop and start again on the same port (actors with ``boot=True`` reconnect)."""
        self.process.stop()
        return self.start(require_boot_actors)

    # -- internals -----------------------------------------------------------------------

    def _nub_command(self, verb: str, names: Iterable[str], timeout: float) -> list[str]:
        names = list(names)
        if not names:
            raise ValueError(f"{verb} needs at least one nub name")
        with self.commander(cid="tests.nubs", timeout=timeout) as cmdr:
            lines = cmdr.call("hub", f"{verb} {' '.join(names)}", timeout)
        problems = [ln for ln in lines if reply_code(ln) in ("w", "f", "F", "e")]
        if problems:
            raise HubCommandError(
                f"hub {verb} {' '.join(names)} reported: {problems}\n"
                f"hub log: {self.process_log}; nub logs: {self.log_dir}"
            )
        return lines

    def _write_config(self) -> None:
        hub_cfg = {"logDir": "$TRON_LOG_DIR", "vocabulary": ["perms", "hub", "keys", "msg"]}
        boot = [a.name for a in self.actors.values() if a.boot]
        auth = [AUTH_LISTENER_NUB] if self.auth_port is not None else []
        local_cfg = {
            # The listener last: its READY line then means "booted".
            "nubs": [*boot, *auth, LISTENER_NUB],
            "actors": {a.name: a.config() for a in self.actors.values()},
            "commanderListener": {"host": self.host, "port": self.port},
            "authListener": {"host": self.host, "port": self.auth_port},
            "httpHost": LOOPBACK,
            "httpRoot": "/",
        }
        self._write_atomic(self.config_dir / "hub.json", json.dumps(hub_cfg, indent=2))
        self._write_atomic(self.config_dir / "local.json", json.dumps(local_cfg, indent=2))

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

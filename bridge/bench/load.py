"""Load: many legacy and AMQP clients command legacy and AMQP actors through one bridge.

Started here, all on 127.0.0.1 (and stopped again, also on Ctrl-C or an error): a
private RabbitMQ broker (unless ``amqp_url`` is given), a real clu ``LegacyActor``
(``lshutter``), a real clu ``AMQPActor`` (``camera``), and the bridge as a separate
process (``bridge serve``): ``lshutter`` lives on legacy TCP and is served on AMQP,
``camera`` lives on AMQP and is served on a legacy port, and the hub port routes to both.

Clients (all in this process, one asyncio loop):

* ``legacy_clients - hub_clients`` raw sockets on the camera's legacy face
  (legacy -> bridge -> AMQP actor);
* ``hub_clients`` raw sockets on the hub port, alternating ``lshutter`` (legacy -> bridge
  -> legacy actor) and ``camera`` (legacy -> bridge -> AMQP actor); with ``hub_actors =
  "legacy"`` only ``lshutter``;
* ``amqp_clients`` plain aio-pika clients, each with its own connection and replies
  queue, commanding ``lshutter`` (AMQP -> bridge -> legacy actor).

Every client sends its share of ``commands`` (``spam N``: N ``i spam_index=k`` replies,
then ``: spam_count=N``), at most ``window`` at a time, and checks every reply it gets:
each command must end with exactly one terminal reply, addressed to the right commander
(legacy face: the connection's user id; hub: the client's commander name; AMQP: its
``commander_id`` and ``command_id``), with its ``spam_index`` replies in order before it.
Nothing may arrive for a command after its end.

Memory is the bridge *process*'s RSS (``/proc/<pid>/status``): the baseline after a
warm-up round (``warmup`` commands per client, at the same concurrency, so that the
buffers and allocator arenas a burst needs are already there: Python rarely gives
memory back to the system; measured: after 1,200 warm-up commands the RSS still grew by
12 MB over the next 10,000 commands and by 13 MB over 30,000, after 3,600 by 2.4 MB over
10,000, hence 30 per client), the peak sampled every 20 ms during the load, and the value
after the load once the bridge is idle again (same clients connected). It must be
within :data:`RSS_MARGIN_KB` of the most the warm-up took (its high-water mark, or the
idle value after it if higher): a leak of 1 kB per command would add
10 MB over 10,000 commands. ``bridge status`` then must report no command in flight.

``python -m bridge.bench.load`` or ``bridge bench load`` print the figures.

``--metrics-overhead N``: instead, N cycles of one block of ``commands`` commands in
each of three modes: metrics off (``[metrics] enabled = false``), metrics on, and metrics
on with the per-command log line (``[logs] commands``, at INFO in the bridge's log). One
broker, pair of actors, bridge process and set of clients serve every block; before each,
the bridge's file is rewritten and the control actor's ``reload`` (as ``bridge reload``)
switches the mode. Reports each
block's command rate and the bridge's CPU time per command, and the ratio of each cycle's
blocks to its "off" block (median, quartiles, range: the spread shows what the run can
resolve).
"""

from __future__ import annotations

import abc
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ..service.broker import free_port
from .programs import (
    BenchError,
    Program,
    child_environment,
    private_broker,
    process_cpu_seconds,
    python_module,
    rss_kb,
    state_dir,
)

#: A load run that could not be carried out (a peer did not start, no broker...).
LoadError = BenchError


def _cpu(pid: int) -> float:
    return process_cpu_seconds(pid) or 0.0


def _broker_cpu(node: str | None) -> float:
    """CPU seconds of the private broker's processes so far (0 if it is not ours)."""
    from ..service.broker import node_pids

    return sum(_cpu(pid) for pid in node_pids(node)) if node else 0.0

LOOPBACK = "127.0.0.1"
BRIDGE_NAME = "loadbridge"
LEGACY_ACTOR = "lshutter"
AMQP_ACTOR = "camera"
EXCHANGE = "sdss_exchange"
#: Values of ``LoadSettings.hub_actors``.
HUB_ACTORS = ("both", "legacy")
TIMEOUT = 600.0
#: RSS may stay above the warm-up baseline by this much after the load (Python's
#: allocator keeps some freed arenas; a leak of ~1 kB per command is 10 MB per 10,000).
RSS_MARGIN_KB = 8 * 1024


@dataclass
class LoadSettings:
    """How much load, and how it is spread."""

    commands: int = 10_000
    legacy_clients: int = 100
    hub_clients: int = 20  # of the legacy clients, those on the hub port
    amqp_clients: int = 20
    window: int = 4  # commands in flight per client
    spam: int = 2  # info replies per command
    warmup: int = 30  # commands per client in the warm-up round (before the baseline)
    #: The actors the hub-port clients command in turn: "both" (lshutter and camera) or
    #: "legacy" (only lshutter; with legacy_clients == hub_clients no command reaches the
    #: clu camera, whose ~3 ms of CPU per command otherwise sets the pace of a 2-vCPU
    #: machine, so that the bridge's own cost decides the rate).
    hub_actors: str = "both"

    def check(self) -> None:
        """Raise ValueError if these settings cannot make a run."""
        if not 0 <= self.hub_clients <= self.legacy_clients or self.commands < 1 \
                or self.window < 1 or self.legacy_clients + self.amqp_clients < 1 \
                or self.hub_actors not in HUB_ACTORS:
            raise ValueError("need 0 <= hub_clients <= legacy_clients, some clients, "
                             f"commands >= 1, window >= 1, hub_actors one of {HUB_ACTORS}")

    def hub_targets(self) -> tuple[str, ...]:
        """The actors of :attr:`hub_actors`, in the order the hub clients use them."""
        return (LEGACY_ACTOR,) if self.hub_actors == "legacy" else (LEGACY_ACTOR, AMQP_ACTOR)


@dataclass
class Tally:
    """What one kind of client saw."""

    clients: int = 0
    sent: int = 0
    done: int = 0  # exactly one terminal reply, ':' and everything in order
    failed: int = 0  # one terminal reply, but 'f' (an error of the actor or the bridge)
    lost: int = 0  # no terminal reply
    duplicates: int = 0  # replies after the terminal one
    wrong_commander: int = 0  # replies addressed to another client or to no command of ours
    out_of_order: int = 0  # spam_index replies missing, repeated or out of order
    errors: list[str] = field(default_factory=list)  # first few failure texts

    def add(self, other: "Tally") -> None:
        for name in ("clients", "sent", "done", "failed", "lost", "duplicates",
                     "wrong_commander", "out_of_order"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors[: max(0, 5 - len(self.errors))])


@dataclass
class LoadResult:
    """Counts per client kind, timing, the bridge's memory and its state afterwards."""

    settings: LoadSettings
    tallies: dict[str, Tally]  # the measured round, by path
    warmup: dict[str, Tally]  # the warm-up round, by path
    seconds: float
    rss_kb: dict[str, int]  # start, baseline, warmup_hwm, peak, after, hwm
    status_after: dict[str, Any]
    log_problems: list[str]
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> Tally:
        return _sum(self.tallies.values())

    @property
    def rss_reference(self) -> int:
        """What memory must return to: the most the warm-up took (idle or at its peak;
        Python keeps the arenas a burst needed, so the idle value after a burst is
        about its peak)."""
        return max(self.rss_kb["baseline"], self.rss_kb.get("warmup_hwm", 0))

    @property
    def in_flight_after(self) -> int:
        return sum(int(a[4]) for a in self.status_after.get("actors", []))

    def problems(self) -> list[str]:
        """Everything that is not as it must be (empty: the run proves the claims)."""
        t = self.total
        out = []
        for label, tally in (("", t), ("warm-up ", _sum(self.warmup.values()))):
            for name in ("lost", "duplicates", "wrong_commander", "out_of_order", "failed"):
                if getattr(tally, name):
                    out.append(f"{label}{name}: {getattr(tally, name)}")
            out.extend(f"{label}error: {e}" for e in tally.errors)
        if t.sent != self.settings.commands or t.done != t.sent:
            out.append(f"{t.done} of {t.sent} commands done (wanted {self.settings.commands})")
        if self.rss_kb["after"] > self.rss_reference + RSS_MARGIN_KB:
            out.append(f"RSS after the load {self.rss_kb['after']} kB > what the warm-up "
                       f"reached {self.rss_reference} kB + {RSS_MARGIN_KB} kB")
        if self.in_flight_after:
            out.append(f"bridge status: {self.in_flight_after} command(s) still in flight")
        if self.status_after.get("amqp") != "connected":
            out.append(f"bridge status: amqp {self.status_after.get('amqp')!r}")
        out.extend(self.log_problems)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings),
                "tallies": {k: asdict(v) for k, v in self.tallies.items()},
                "warmup": {k: asdict(v) for k, v in self.warmup.items()},
                "total": asdict(self.total), "seconds": self.seconds,
                "commands_per_second": self.total.sent / self.seconds if self.seconds else 0.0,
                "rss_kb": self.rss_kb, "cpu_seconds": self.cpu_seconds,
                "status_after": self.status_after,
                "in_flight_after": self.in_flight_after, "log_problems": self.log_problems,
                "problems": self.problems()}


def _sum(tallies: Any) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


def _clients_line(s: LoadSettings) -> str:
    return (f"{s.legacy_clients} legacy clients ({s.hub_clients} on the hub port, "
            f"commanding {'+'.join(s.hub_targets())}), {s.amqp_clients} AMQP clients, "
            f"window {s.window}")


def format_load(result: LoadResult) -> str:
    """A plain-text report."""
    s = result.settings
    lines = [f"{s.commands:,} commands (spam {s.spam}), {_clients_line(s)}: "
             f"{result.seconds:.1f} s, "
             f"{result.total.sent / max(result.seconds, 1e-9):,.0f} commands/s"]
    lines.append(f"{'path':<34} {'clients':>7} {'sent':>6} {'done':>6} {'failed':>6} "
                 f"{'lost':>5} {'dup':>4} {'wrong':>5} {'order':>5}")
    for name, t in [*result.tallies.items(), ("total", result.total)]:
        lines.append(f"{name:<34} {t.clients:>7} {t.sent:>6} {t.done:>6} {t.failed:>6} "
                     f"{t.lost:>5} {t.duplicates:>4} {t.wrong_commander:>5} "
                     f"{t.out_of_order:>5}")
    w = _sum(result.warmup.values())
    lines.append(f"warm-up: {w.sent} commands, {w.done} done, {w.failed} failed, {w.lost} lost, "
                 f"{w.duplicates} duplicates, {w.wrong_commander} misaddressed")
    r = result.rss_kb
    lines.append(f"bridge RSS: start {r['start'] / 1024:.1f} MB, after warm-up "
                 f"{r['baseline'] / 1024:.1f} MB (its peak {r.get('warmup_hwm', 0) / 1024:.1f} MB),"
                 f" peak {r['peak'] / 1024:.1f} MB, after "
                 f"{r['after'] / 1024:.1f} MB (allowed: {result.rss_reference / 1024:.1f} + "
                 f"{RSS_MARGIN_KB / 1024:.0f} MB)")
    lines.append("CPU seconds during the load: " + ", ".join(
        f"{k} {v:.1f}" for k, v in result.cpu_seconds.items()))
    lines.append(f"bridge status after: {result.in_flight_after} in flight; amqp "
                 f"{result.status_after.get('amqp')}")
    problems = result.problems()
    lines.append("OK: every command had exactly one terminal reply" if not problems
                 else "PROBLEMS: " + "; ".join(problems))
    return "\n".join(lines)


# -- processes -----------------------------------------------------------------------------

class RssSampler:
    """Samples a process's RSS every ``interval`` s in a thread; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, BenchError):
                return
            self._stop.wait(self.interval)


def bridge_config(amqp_url: str, shutter_port: int, face_port: int, hub_port: int,
                  mode: str = "metrics+log") -> str:
    """The TOML configuration of the bridge under load; ``mode`` one of :data:`MODES`."""
    metrics, log = mode != "off", mode == "metrics+log"
    return (f'name = "{BRIDGE_NAME}"\n\n[amqp]\nurl = "{amqp_url}"\n\n'
            f'[hub]\nport = {hub_port}\n\n'
            f'[metrics]\nenabled = {str(metrics).lower()}\n\n'
            f'[logs]\ncommands = {str(log).lower()}\n\n'
            f'[actors.{LEGACY_ACTOR}]\nlives = "legacy"\nport = {shutter_port}\n\n'
            f'[actors.{AMQP_ACTOR}]\nlives = "amqp"\nlegacy_port = {face_port}\n')


@dataclass
class Setup:
    """Where everything runs."""

    amqp_url: str
    face_port: int
    hub_port: int
    bridge: Program
    programs: list[Program]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s of each program in the load
    broker_node: str | None = None  # the private broker's node (None: a given broker)
    config_path: Path | None = None  # the bridge's configuration file
    shutter_port: int = 0  # the clu legacy shutter's port


@dataclass
class Peers:
    """The broker and the two clu actors, shared by the bridges of one run."""

    amqp_url: str
    shutter_port: int
    actors: list[Program]
    broker_node: str | None = None  # the private broker's node (None: a given broker)


@contextmanager
def running_setup(state: Path, amqp_url: str | None,
                  say: Callable[[str], Any]) -> Iterator[Setup]:
    """Broker (unless given), the two clu actors and the bridge; all stopped on exit."""
    with running_peers(state, amqp_url, say) as peers, \
            running_bridge(state, peers, say) as setup:
        yield setup


@contextmanager
def running_peers(state: Path, amqp_url: str | None,
                  say: Callable[[str], Any]) -> Iterator[Peers]:
    """Broker (unless given) and the two clu actors; stopped on exit."""
    env = child_environment()
    with ExitStack() as stack:
        node = None
        if amqp_url is None:
            broker = private_broker(stack, "loadbench", say)
            amqp_url, node = broker.url, broker.node
        say("starting the clu actors")
        shutter_port = free_port()
        actors = [
            Program(LEGACY_ACTOR, python_module("bridge.bench.peers.clu_shutter", "--port",
                                                str(shutter_port), "--name", LEGACY_ACTOR),
                    state, env=env),
            Program(AMQP_ACTOR, python_module("bridge.bench.peers.clu_camera", "--url", amqp_url,
                                              "--name", AMQP_ACTOR), state, env=env),
        ]
        for program in actors:
            program.start()
            stack.callback(program.stop)
        for program in actors:
            program.wait_ready(timeout=90)
        yield Peers(amqp_url, shutter_port, actors, node)


@contextmanager
def running_bridge(state: Path, peers: Peers, say: Callable[[str], Any], *,
                   mode: str = "metrics+log", tag: str = "") -> Iterator[Setup]:
    """A ``bridge serve`` process in front of ``peers``; stopped on exit."""
    env = child_environment()
    face_port, hub_port = free_port(), free_port()
    with ExitStack() as stack:
        say(f"starting the bridge{tag}")
        config = state / f"bridge{tag.strip().replace(' ', '-')}.toml"
        config.write_text(bridge_config(peers.amqp_url, peers.shutter_port, face_port, hub_port,
                                        mode))
        ready = state / "bridge.ready"
        ready.unlink(missing_ok=True)
        bridge = Program("bridge" + tag.strip().replace(" ", "-"),
                         python_module("bridge.cli.main", "serve", "--config",
                                       str(config), "--ready-file", str(ready)),
                         state, env=env)
        bridge.start()
        stack.callback(bridge.stop)
        bridge.wait_ready(timeout=90, ready_file=ready)
        yield Setup(peers.amqp_url, face_port, hub_port, bridge, [*peers.actors, bridge],
                    broker_node=peers.broker_node, config_path=config,
                    shutter_port=peers.shutter_port)


def bridge_status(amqp_url: str, timeout: float = 60.0) -> dict[str, Any]:
    """``bridge status --json`` of the bridge under load."""
    out = subprocess.run([sys.executable, "-m", "bridge.cli.main", "status", "--amqp", amqp_url,
                          "--name", BRIDGE_NAME, "--json"], capture_output=True, text=True,
                         timeout=timeout, env=child_environment())
    if out.returncode != 0:
        raise BenchError(f"bridge status failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout)


def wait_connected(amqp_url: str, timeout: float = 60.0) -> None:
    """Until ``bridge status`` shows every actor connected (the legacy link connects in
    the background after ``bridge serve`` is ready)."""
    deadline = time.monotonic() + timeout
    while True:
        actors = bridge_status(amqp_url).get("actors", [])
        if actors and all(a[3] == "connected" for a in actors):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"actors not connected after {timeout:g} s: {actors}")
        time.sleep(0.2)


def log_problems(text: str) -> list[str]:
    """Lines of the bridge's log that show an error or an exception."""
    bad = [l for l in text.splitlines()
           if "Traceback" in l or " ERROR " in l or " CRITICAL " in l]
    shown = [f"bridge log: {l.strip()[:400]}" for l in bad[:5]]
    if len(bad) > len(shown):
        shown.append(f"bridge log: {len(bad) - len(shown)} more such lines")
    return shown


# -- clients ---------------------------------------------------------------------------------

class _Command:
    __slots__ = ("indices", "ended", "code")

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.ended = False
        self.code = ""


class _Client(abc.ABC):
    """Sends its commands ``window`` at a time and checks every reply (subclasses: I/O)."""

    def __init__(self, tally: Tally, spam: int, window: int) -> None:
        self.tally = tally
        self.measured = tally
        self.spam = spam
        self.window = window
        self.commands: dict[Any, _Command] = {}
        self.pending = 0
        self.todo = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def run(self, count: int) -> None:
        """Send ``count`` commands; return when each has ended (or on timeout)."""
        self.todo = count
        self.idle.clear()
        while self.pending < self.window and self.todo:
            self._next()
        if count == 0:
            self.idle.set()
        await self.idle.wait()

    def _next(self) -> None:
        self.todo -= 1
        self.pending += 1
        self.tally.sent += 1
        key = self.send(f"spam {self.spam}")
        self.commands[key] = _Command()

    @abc.abstractmethod
    def send(self, text: str) -> Any:
        """Send one command; return the key its replies will carry."""

    def reply(self, key: Any, code: str, values: dict[str, Any]) -> None:
        """One reply for our command ``key``."""
        cmd = self.commands.get(key)
        if cmd is None:
            self.tally.wrong_commander += 1
            return
        if cmd.ended:
            self.tally.duplicates += 1
            return
        if "spam_index" in values:
            cmd.indices.append(values["spam_index"])
        if code not in (":", "f", "F", "!"):
            return
        cmd.ended = True
        cmd.code = code
        if code == ":":
            if cmd.indices == list(range(self.spam)) and values.get("spam_count") == self.spam:
                self.tally.done += 1
            else:
                self.tally.out_of_order += 1
        else:
            self.tally.failed += 1
            if len(self.tally.errors) < 5:
                self.tally.errors.append(f"{code} {values}")
        self.pending -= 1
        if self.todo:
            self._next()
        elif not self.pending:
            self.idle.set()

    def lost(self) -> int:
        return sum(1 for c in self.commands.values() if not c.ended)


def _values(text: str) -> dict[str, Any]:
    """``spam_index``/``spam_count``/``error`` of a keyword text (enough for checking)."""
    out: dict[str, Any] = {}
    for part in text.split(";"):
        key, _, value = part.strip().partition("=")
        if key in ("spam_index", "spam_count"):
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value
        elif key in ("error", "NoTarget", "text") and value:
            out[key] = value
    return out


class LegacyFaceClient(_Client):
    """A raw socket on an actor's legacy face: ``<commander> <mid> <text>`` out,
    ``<cid> <mid> <code> <keywords>`` in; cid must be this connection's user id."""

    def __init__(self, tally: Tally, spam: int, window: int, name: str) -> None:
        super().__init__(tally, spam, window)
        self.name = name
        self.user_id: int | None = None
        self.mid = 0
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.greeted = asyncio.Event()

    async def connect(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(LOOPBACK, port, limit=1 << 20)
        self.reader_task = asyncio.ensure_future(self._read(reader))
        await asyncio.wait_for(self.greeted.wait(), 60)

    def send(self, text: str) -> Any:
        assert self.writer is not None
        self.mid += 1
        self.writer.write(f"{self.name} {self.mid} {text}\n".encode())
        return self.mid

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            parts = raw.decode(errors="replace").rstrip("\n").split(" ", 3)
            if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
                self.tally.wrong_commander += 1
                continue
            cid, mid, code = int(parts[0]), int(parts[1]), parts[2]
            text = parts[3] if len(parts) > 3 else ""
            if self.user_id is None and mid == 0 and text.startswith("yourUserID="):
                self.user_id = cid
                self.greeted.set()
                continue
            if cid == 0 or mid == 0:
                continue  # broadcasts (UserInfo, the actor's unsolicited output)
            if cid != self.user_id:
                self.tally.wrong_commander += 1
                continue
            self.reply(mid, code, _values(text))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()


class HubClient(LegacyFaceClient):
    """A raw socket on the hub port: ``<commander> <mid> <actor> <text>`` out; every line of
    the hub comes in (``<commander> <mid> <actor> <code> ...``), ours are checked."""

    def __init__(self, tally: Tally, spam: int, window: int, name: str,
                 actors: tuple[str, ...]) -> None:
        super().__init__(tally, spam, window, name)
        self.actors = actors
        self.actor_of: dict[int, str] = {}

    async def connect(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(LOOPBACK, port, limit=1 << 20)
        self.reader_task = asyncio.ensure_future(self._read(reader))

    def send(self, text: str) -> Any:
        assert self.writer is not None
        self.mid += 1
        actor = self.actors[self.mid % len(self.actors)]
        self.actor_of[self.mid] = actor
        self.writer.write(f"{self.name} {self.mid} {actor} {text}\n".encode())
        return self.mid

    async def _read(self, reader: asyncio.StreamReader) -> None:
        prefix = self.name + " "
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\n")
            if not line.startswith(prefix):
                continue  # other commanders' traffic, the hub's own broadcasts
            parts = line.split(" ", 4)
            if len(parts) < 4 or not parts[1].isdigit():
                self.tally.wrong_commander += 1
                continue
            mid, source, code = int(parts[1]), parts[2], parts[3]
            if self.actor_of.get(mid) not in (source, None) and source != "hub":
                self.tally.wrong_commander += 1
                continue
            self.reply(mid, code, _values(parts[4] if len(parts) > 4 else ""))


class AmqpClient(_Client):
    """A plain aio-pika client: publishes clu commands to ``command.<actor>`` and reads the
    replies routed to ``reply.<name>.#`` on its own exclusive queue."""

    def __init__(self, tally: Tally, spam: int, window: int, name: str, actor: str) -> None:
        super().__init__(tally, spam, window)
        self.name, self.actor = name, actor
        self.connection: Any = None
        self.exchange: Any = None
        self.queue_name = f"{name}_replies"

    async def connect(self, url: str) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(url)
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(EXCHANGE, type="topic",
                                                       auto_delete=True, durable=False)
        queue = await channel.declare_queue(self.queue_name, exclusive=True)
        await queue.bind(self.exchange, routing_key=f"reply.{self.name}.#")
        await queue.consume(self._on_message, no_ack=True)
        self._publishing: set[asyncio.Task[None]] = set()

    def send(self, text: str) -> Any:
        import aio_pika

        command_id = str(uuid.uuid4())
        message = aio_pika.Message(
            json.dumps({"command_string": text}).encode(), content_type="text/json",
            correlation_id=command_id, reply_to=self.queue_name,
            headers={"command_id": command_id, "commander_id": f"{self.name}.{self.actor}",
                     "internal": False})
        task = asyncio.ensure_future(self.exchange.publish(message, f"command.{self.actor}"))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)
        return command_id

    async def _on_message(self, message: Any) -> None:
        headers = message.headers or {}
        if (headers.get("commander_id") != f"{self.name}.{self.actor}"
                or headers.get("sender") != self.actor
                or headers.get("command_id") != message.correlation_id):
            self.tally.wrong_commander += 1
            return
        try:
            values = json.loads(message.body)
        except ValueError:
            values = {}
        self.reply(headers.get("command_id"), str(headers.get("message_code")),
                   values if isinstance(values, dict) else {})

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


class ControlClient:
    """Commands to the bridge's control actor over AMQP (as ``bridge reload`` sends them),
    from the clients' own loop: a mode switch between two blocks then takes milliseconds
    instead of a new Python process."""

    def __init__(self, name: str = "load_control") -> None:
        self.name = name
        self.connection: Any = None
        self.exchange: Any = None
        self.waiting: dict[str, asyncio.Future[tuple[str, dict[str, Any]]]] = {}

    async def connect(self, url: str) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(url)
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(EXCHANGE, type="topic",
                                                       auto_delete=True, durable=False)
        queue = await channel.declare_queue(f"{self.name}_replies", exclusive=True)
        await queue.bind(self.exchange, routing_key=f"reply.{self.name}.#")
        await queue.consume(self._on_message, no_ack=True)

    async def command(self, text: str, timeout: float = 60.0) -> tuple[str, dict[str, Any]]:
        """Send ``text`` to the control actor; its terminal code and keywords."""
        import aio_pika

        command_id = str(uuid.uuid4())
        future = self.waiting[command_id] = asyncio.get_running_loop().create_future()
        await self.exchange.publish(aio_pika.Message(
            json.dumps({"command_string": text}).encode(), content_type="text/json",
            correlation_id=command_id, reply_to=f"{self.name}_replies",
            headers={"command_id": command_id, "commander_id": f"{self.name}.{BRIDGE_NAME}",
                     "internal": False}), f"command.{BRIDGE_NAME}")
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.waiting.pop(command_id, None)

    async def _on_message(self, message: Any) -> None:
        headers = message.headers or {}
        future = self.waiting.get(str(headers.get("command_id")))
        code = str(headers.get("message_code"))
        if future is None or future.done() or code not in (":", "f", "F", "!"):
            return
        try:
            values = json.loads(message.body)
        except ValueError:
            values = {}
        future.set_result((code, values if isinstance(values, dict) else {}))

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


FACE = f"legacy face -> {AMQP_ACTOR} (AMQP)"
HUB = f"hub port -> {LEGACY_ACTOR}+{AMQP_ACTOR}"
AMQP = f"AMQP -> {LEGACY_ACTOR} (legacy)"


async def _connect(setup: Setup, settings: LoadSettings, tallies: dict[str, Tally],
                   clients: list["_Client"], say: Callable[[str], Any]) -> None:
    """Make and connect every client (into ``clients``, so that the caller closes even
    those connected before a failure), counting them in ``tallies``."""
    s = settings
    faces = [LegacyFaceClient(tallies[FACE], s.spam, s.window, f"load.f{i}")
             for i in range(s.legacy_clients - s.hub_clients)]
    hubs = [HubClient(tallies[HUB], s.spam, s.window, f"load.h{i}", s.hub_targets())
            for i in range(s.hub_clients)]
    amqps = [AmqpClient(tallies[AMQP], s.spam, s.window, f"load_a{i}", LEGACY_ACTOR)
             for i in range(s.amqp_clients)]
    say(f"connecting {len(faces) + len(hubs)} legacy and {len(amqps)} AMQP clients")
    for face in faces:
        await face.connect(setup.face_port)
        clients.append(face)
    for hub in hubs:
        await hub.connect(setup.hub_port)
        clients.append(hub)
    for amqp in amqps:
        await amqp.connect(setup.amqp_url)
        clients.append(amqp)
    for tally, group in ((tallies[FACE], faces), (tallies[HUB], hubs), (tallies[AMQP], amqps)):
        tally.clients = len(group)


async def _measured(clients: list["_Client"], counts: list[int]) -> dict[str, Tally]:
    """One round counted apart (``counts`` commands per client), its lost commands too;
    the clients' own tallies are left as they were."""
    tallies = {name: Tally() for name in (FACE, HUB, AMQP)}
    lost_before = [c.lost() for c in clients]
    for client in clients:
        client.tally, client.measured = tallies[_kind(client)], client.tally
        client.tally.clients += 1
    try:
        await _round(clients, counts, TIMEOUT)
    finally:
        for client, before in zip(clients, lost_before):
            client.tally.lost += client.lost() - before
            client.tally = client.measured
    return tallies


def _shares(total: int, clients: int) -> list[int]:
    """``total`` commands spread over ``clients`` as evenly as can be."""
    shares = [total // clients] * clients
    for i in range(total - sum(shares)):
        shares[i] += 1
    return shares


async def _drive(setup: Setup, settings: LoadSettings,
                 say: Callable[[str], Any]
                 ) -> tuple[dict[str, Tally], dict[str, Tally], float, dict[str, int]]:
    s = settings
    tallies = {FACE: Tally(), HUB: Tally(), AMQP: Tally()}
    clients: list[_Client] = []
    rss: dict[str, int] = {"start": rss_kb(setup.bridge.pid)}
    cpu = setup.cpu
    try:
        await _connect(setup, s, tallies, clients, say)
        say("warm-up")
        warm = {name: Tally(clients=t.clients) for name, t in tallies.items()}
        for client in clients:
            client.tally, client.measured = warm[_kind(client)], client.tally
        await _round(clients, [s.warmup] * len(clients), TIMEOUT)
        for client in clients:
            client.tally = client.measured
        await asyncio.sleep(1.0)
        rss["baseline"] = rss_kb(setup.bridge.pid)
        rss["warmup_hwm"] = rss_kb(setup.bridge.pid, "VmHWM")  # the most the warm-up took
        say(f"load: {s.commands:,} commands")
        shares = _shares(s.commands, len(clients))
        cpu0 = _cpu_now(setup)
        with RssSampler(setup.bridge.pid) as sampler:
            t0 = time.perf_counter()
            await _round(clients, shares, TIMEOUT)
            seconds = time.perf_counter() - t0
            cpu.update(_cpu_since(setup, cpu0))
            await asyncio.sleep(1.0)  # late duplicates would arrive now
        rss["peak"] = sampler.peak
        for client in clients:
            client.tally.lost += client.lost()
        await asyncio.sleep(1.0)
        rss["after"] = rss_kb(setup.bridge.pid)
        rss["hwm"] = rss_kb(setup.bridge.pid, "VmHWM")
    finally:
        for client in clients:
            await client.close()
    return tallies, warm, seconds, rss


def _cpu_now(setup: Setup) -> dict[str, float]:
    """CPU seconds so far of each program, of the broker (if private) and of the clients
    (this process)."""
    out = {p.name: _cpu(p.pid) for p in setup.programs}
    if setup.broker_node:
        out["broker"] = _broker_cpu(setup.broker_node)
    out["clients"] = time.process_time()
    return out


def _cpu_since(setup: Setup, before: dict[str, float]) -> dict[str, float]:
    now = _cpu_now(setup)
    return {name: now[name] - before[name] for name in before}


def _kind(client: _Client) -> str:
    if isinstance(client, HubClient):
        return HUB
    return FACE if isinstance(client, LegacyFaceClient) else AMQP


async def _round(clients: list[_Client], counts: list[int], timeout: float) -> None:
    runs = [asyncio.ensure_future(c.run(n)) for c, n in zip(clients, counts)]
    done, pending = await asyncio.wait(runs, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()


def run_load(settings: LoadSettings | None = None, amqp_url: str | None = None,
             progress: Callable[[str], Any] | None = None,
             log_dir: str | os.PathLike[str] | None = None) -> LoadResult:
    """Start the peers and the bridge, run the load, check the bridge afterwards, stop all.

    ``amqp_url``: use this broker (a virtual host of it) instead of a private one.
    The logs go to ``log_dir`` (kept), else to a temporary directory (removed).
    """
    settings = settings or LoadSettings()
    settings.check()
    say = progress or (lambda _msg: None)
    with state_dir(log_dir, "bench-load-") as state, running_setup(state, amqp_url, say) as setup:
        wait_connected(setup.amqp_url)
        tallies, warmup, seconds, rss = asyncio.run(_drive(setup, settings, say))
        say("bridge status")
        status = bridge_status(setup.amqp_url)
        problems = log_problems(setup.bridge.log_text())
    return LoadResult(settings, tallies, warmup, seconds, rss, status, problems, setup.cpu)


#: The bridge's modes in a metrics-overhead run: nothing counted; metrics; metrics and the
#: per-command log line.
MODES = ("off", "metrics", "metrics+log")
#: Before each block the bridge, the actors and the broker must have been idle (together
#: under SETTLE_CPU CPU seconds in SETTLE_WINDOW s; /proc counts in 10 ms ticks), so that
#: nothing the last block left behind runs into the next; at most SETTLE_LIMIT s.
SETTLE_WINDOW, SETTLE_CPU, SETTLE_LIMIT = 0.5, 0.05, 20.0


#: The orders of the three modes in six cycles: every permutation once, so that each
#: mode runs twice in each position of a cycle (a drift within a cycle, or a block
#: running slower after a reload that changed something than after one that changed
#: nothing, weighs on every mode alike), and each cycle begins with the mode the cycle
#: before ended with (two adjacent blocks of one mode: the A/A ratio of
#: :meth:`OverheadResult.same_mode`). Until 2026-12-05 the order was off, metrics,
#: metrics+log and its reverse, which kept ``metrics`` always in the middle.
CYCLE_ORDERS = ((0, 1, 2), (2, 1, 0), (0, 2, 1), (1, 0, 2), (2, 0, 1), (1, 2, 0))


def block_order(cycles: int) -> list[tuple[int, str]]:
    """(cycle, mode) of each block, the modes of cycle ``c`` in the order
    ``CYCLE_ORDERS[c % 6]``: each cycle has one block of each mode, so its ``metrics``
    block is near its ``off`` block; over six cycles each mode takes each position twice.
    """
    return [(c, MODES[i]) for c in range(cycles) for i in CYCLE_ORDERS[c % len(CYCLE_ORDERS)]]


@dataclass
class OverheadRound:
    """One block of the metrics-overhead run."""

    cycle: int
    mode: str
    commands: int
    seconds: float
    bridge_cpu: float
    problems: list[str]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s of every process in the block
    reload: str = ""  # what `bridge reload` answered before the block

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_command(self) -> float:
        return 1e6 * self.bridge_cpu / self.commands if self.commands else 0.0


@dataclass
class Spread:
    """Median, quartiles, range, mean and its standard error of some ratios."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else 0.0

    @property
    def sem(self) -> float:
        """The standard error of :attr:`mean` (0 with fewer than two values)."""
        n = len(self.values)
        return statistics.stdev(self.values) / n ** 0.5 if n > 1 else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """About 95 %: the mean +- two standard errors."""
        return (self.mean - 2 * self.sem, self.mean + 2 * self.sem)

    @property
    def median_interval(self) -> tuple[float, float]:
        """A distribution-free interval of at least 95 % for the median: the k-th smallest
        and k-th largest value, k the largest rank with P(Binomial(n, 1/2) < k) <= 2.5 %
        (the sign test). Unlike :attr:`interval` it is not widened by a few outlier
        blocks (a block during which something else ran on the machine)."""
        v = sorted(self.values)
        n = len(v)
        k, below = 0, 0.0
        for i in range(n + 1):
            below += math.comb(n, i) / 2 ** n
            if below > 0.025:
                break
            k = i + 1
        if k == 0:
            return (v[0], v[-1]) if v else (0.0, 0.0)
        return (v[k - 1], v[n - k])

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.values) < 2:
            return (self.median, self.median)
        q = statistics.quantiles(self.values, n=4, method="inclusive")
        return (q[0], q[2])

    def as_dict(self) -> dict[str, Any]:
        q1, q3 = self.quartiles
        low, high = self.interval
        return {"median": self.median, "q1": q1, "q3": q3,
                "min": min(self.values, default=0.0), "max": max(self.values, default=0.0),
                "mean": self.mean, "sem": self.sem, "interval": [low, high],
                "median_interval": list(self.median_interval),
                "values": self.values}

    def __str__(self) -> str:
        if not self.values:
            return "no pairs"
        q1, q3 = self.quartiles
        low, high = self.interval
        m_low, m_high = self.median_interval
        return (f"mean {self.mean:.3f} (95 % {low:.3f}-{high:.3f}), median {self.median:.3f} "
                f"(95 % {m_low:.3f}-{m_high:.3f}), "
                f"quartiles {q1:.3f}-{q3:.3f}, range {min(self.values):.3f}-"
                f"{max(self.values):.3f}, {len(self.values)} pairs")


@dataclass
class OverheadResult:
    """The blocks of each mode, and the ratios of each cycle's blocks to its "off" block."""

    settings: LoadSettings
    rounds: list[OverheadRound]
    path_cost: dict[str, float] = field(default_factory=dict)  # metrics_path_cost()
    run_problems: list[str] = field(default_factory=list)  # bridge status and log afterwards

    def mean(self, mode: str, attr: str) -> float:
        values = [getattr(r, attr) for r in self.rounds if r.mode == mode]
        return sum(values) / len(values) if values else 0.0

    def paired(self, mode: str, attr: str) -> Spread:
        """``attr`` of each cycle's ``mode`` block over that of the same cycle's "off"
        block (adjacent blocks of one bridge process, so what drifts hits both)."""
        by = {(r.cycle, r.mode): getattr(r, attr) for r in self.rounds}
        return Spread([by[c, mode] / by[c, "off"] for c in sorted({r.cycle for r in self.rounds})
                       if (c, mode) in by and by.get((c, "off"))])

    def ratio(self, mode: str, attr: str) -> float:
        """The mean paired ratio (see :meth:`paired`)."""
        return self.paired(mode, attr).mean

    def same_mode(self, attr: str) -> Spread:
        """``attr`` of the first block of each cycle over the last block of the cycle
        before, where both are the same mode (:func:`block_order` begins each cycle with
        the mode the cycle before ended with): the spread of a ratio where nothing
        differs, i.e. what this run can resolve."""
        by = {(r.cycle, r.mode): getattr(r, attr) for r in self.rounds}
        out = []
        for c in sorted({r.cycle for r in self.rounds})[1:]:
            first = block_order(c + 1)[-len(MODES)][1]
            if by.get((c - 1, first)) and (c, first) in by:
                out.append(by[c, first] / by[c - 1, first])
        return Spread(out)

    def verdict(self) -> str:
        """The goal (rate with metrics >= 0.95 x off) against the median's distribution-free
        95 % interval (:attr:`Spread.median_interval`): ``met`` when it lies at or above
        0.95, ``NOT met`` when below. The mean's interval is reported beside it; a few
        outlier blocks (whatever else ran on the machine then: pair ratios of 0.45 and 2.1
        were seen) widen it far more than they move the median."""
        rate = self.paired("metrics", "rate")
        if len(rate.values) < 6:
            return "not shown (too few cycles: at least 6)"
        low, high = rate.median_interval
        if low >= 0.95:
            return (f"met (median {rate.median:.3f}, 95 % {low:.3f}-{high:.3f}; the mean's "
                    f"interval {rate.interval[0]:.3f}-{rate.interval[1]:.3f})")
        if high < 0.95:
            return f"NOT met (median {rate.median:.3f}, 95 % {low:.3f}-{high:.3f})"
        return (f"not shown (the median's interval {low:.3f}-{high:.3f} reaches below 0.95: "
                "more cycles needed)")

    def problems(self) -> list[str]:
        return [f"cycle {r.cycle + 1} ({r.mode}): {p}" for r in self.rounds
                for p in r.problems] + self.run_problems

    def as_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings),
                "rounds": [{**asdict(r), "rate": r.rate,
                            "cpu_us_per_command": r.cpu_us_per_command} for r in self.rounds],
                "ratios": {mode: {"rate": self.paired(mode, "rate").as_dict(),
                                  "cpu_per_command":
                                      self.paired(mode, "cpu_us_per_command").as_dict()}
                           for mode in MODES[1:]},
                "same_mode": {"rate": self.same_mode("rate").as_dict(),
                              "cpu_per_command": self.same_mode("cpu_us_per_command").as_dict()},
                "goal": self.verdict(),
                "path_cost_us": self.path_cost, "problems": self.problems()}


def metrics_path_cost(commands: int = 20_000, replies: int = 3) -> dict[str, float]:
    """What counting costs per command, in this process (µs): a handle sent ``replies``
    replies, the last one terminal, with and without :meth:`BridgeMetrics.track`
    (no command log); best of three."""
    from ..core import CommandHandle, Reply
    from ..service.metrics import BridgeMetrics

    async def run(track: bool) -> float:
        metrics = BridgeMetrics(command_log=False)
        info = Reply("i", "a", ())
        done = Reply(":", "a", ())
        t0 = time.perf_counter()
        for i in range(commands):
            handle = CommandHandle("a", "spam 2", commander="c", command_id=i)
            if track:
                metrics.track("a", "amqp", handle, "c", i)
            for _ in range(replies - 1):
                handle.add_reply(info)
            handle.add_reply(done)
        return (time.perf_counter() - t0) / commands * 1e6

    def best(track: bool) -> float:
        return min(asyncio.run(run(track)) for _ in range(3))

    off, on = best(False), best(True)
    return {"without_us": off, "with_us": on, "added_us": on - off}


def format_overhead(result: OverheadResult) -> str:
    cycles = len({r.cycle for r in result.rounds})
    lines = [f"metrics overhead: {cycles} cycles of {len(MODES)} blocks of "
             f"{result.settings.commands:,} commands, one bridge process switched between "
             f"modes by its control actor's reload",
             _clients_line(result.settings)]
    for r in result.rounds:
        lines.append(f"  cycle {r.cycle + 1:>2} {r.mode:<11} {r.rate:8,.0f} commands/s  bridge "
                     f"CPU {r.cpu_us_per_command:6.0f} us/command"
                     f"{'  PROBLEMS' if r.problems else ''}")
    for mode in MODES[1:]:
        lines.append(f"{mode} / off, rate: {result.paired(mode, 'rate')}")
        lines.append(f"{mode} / off, bridge CPU per command: "
                     f"{result.paired(mode, 'cpu_us_per_command')}")
    lines.append(f"same mode, adjacent blocks of two cycles (no difference: the noise), rate: "
                 f"{result.same_mode('rate')}")
    lines.append("goal (the rate with metrics within 5 % of off: the median of metrics / off "
                 f">= 0.95 over its whole 95 % interval): {result.verdict()}")
    total = {name: sum(r.cpu.get(name, 0.0) for r in result.rounds)
             for name in (result.rounds[0].cpu if result.rounds else {})}
    seconds = sum(r.seconds for r in result.rounds)
    if total and seconds:
        lines.append("CPU share during the blocks (1.0 = one CPU): " + ", ".join(
            f"{k} {v / seconds:.2f}" for k, v in total.items()) +
            f"; all {sum(total.values()) / seconds:.2f} of {os.cpu_count()}")
    if result.path_cost:
        c = result.path_cost
        cpu_off = result.mean("off", "cpu_us_per_command")
        lines.append(f"counting in-process: {c['added_us']:.2f} us per command with 3 replies "
                     f"({c['without_us']:.2f} -> {c['with_us']:.2f} us for a bare handle)"
                     + (f", {100 * c['added_us'] / cpu_off:.2f} % of the bridge's CPU per "
                        f"command" if cpu_off else ""))
    problems = result.problems()
    lines.append("OK: every command had exactly one terminal reply" if not problems
                 else "PROBLEMS: " + "; ".join(problems[:10]))
    return "\n".join(lines)


async def reload_bridge(setup: Setup, control: ControlClient, mode: str) -> str:
    """Write ``mode``'s configuration over the bridge's file and have it re-read it (its
    control actor's ``reload``, which answers once the new configuration is in effect);
    what it answered."""
    assert setup.config_path is not None
    setup.config_path.write_text(bridge_config(setup.amqp_url, setup.shutter_port,
                                               setup.face_port, setup.hub_port, mode))
    code, values = await control.command("reload")
    if code != ":":
        raise BenchError(f"bridge reload to {mode!r} failed: {code} {values}")
    return str(values.get("text", ""))


async def _settle(setup: Setup) -> float:
    """Wait until the bridge, the actors and the broker are idle (see SETTLE_WINDOW);
    the seconds waited."""
    def busy() -> float:
        now = _cpu_now(setup)
        return sum(v for k, v in now.items() if k != "clients")

    t0 = time.monotonic()
    before = busy()
    while time.monotonic() - t0 < SETTLE_LIMIT:
        await asyncio.sleep(SETTLE_WINDOW)
        now = busy()
        if now - before < SETTLE_CPU:
            break
        before = now
    return time.monotonic() - t0


async def _drive_blocks(setup: Setup, settings: LoadSettings, order: list[tuple[int, str]],
                        say: Callable[[str], Any]) -> list[OverheadRound]:
    """Connect the clients once, warm up, then one block per (cycle, mode) of ``order``,
    the bridge reloaded into that mode before it."""
    tallies = {FACE: Tally(), HUB: Tally(), AMQP: Tally()}
    clients: list[_Client] = []
    done: list[OverheadRound] = []
    control = ControlClient()
    try:
        await control.connect(setup.amqp_url)
        await _connect(setup, settings, tallies, clients, say)
        say("warm-up")
        warm = await _measured(clients, [settings.warmup] * len(clients))
        warm_problems = _tally_problems(_sum(warm.values()), None)
        if warm_problems:
            raise BenchError("warm-up: " + "; ".join(warm_problems))
        shares = _shares(settings.commands, len(clients))
        for cycle, mode in order:
            answer = await reload_bridge(setup, control, mode)
            waited = await _settle(setup)
            cpu0 = _cpu_now(setup)
            t0 = time.perf_counter()
            block = await _measured(clients, shares)
            seconds = time.perf_counter() - t0
            cpu = _cpu_since(setup, cpu0)
            total = _sum(block.values())
            done.append(OverheadRound(cycle, mode, total.sent, seconds,
                                      cpu.get(setup.bridge.name, 0.0),
                                      _tally_problems(total, settings.commands), cpu, answer))
            say(f"cycle {cycle + 1} {mode}: {done[-1].rate:,.0f} commands/s, bridge CPU "
                f"{done[-1].cpu_us_per_command:.0f} us/command ({answer}; settled in "
                f"{waited:.1f} s)")
        await asyncio.sleep(1.0)  # late duplicates would arrive now
        late = _sum(t for t in tallies.values())
        if late.duplicates or late.wrong_commander:
            done[-1].problems.append(f"after the last block: {late.duplicates} duplicates, "
                                     f"{late.wrong_commander} misaddressed")
    finally:
        for client in clients:
            await client.close()
        await control.close()
    return done


def _tally_problems(t: Tally, wanted: int | None) -> list[str]:
    out = [f"{name}: {getattr(t, name)}" for name in
           ("lost", "duplicates", "wrong_commander", "out_of_order", "failed")
           if getattr(t, name)]
    out.extend(f"error: {e}" for e in t.errors)
    if t.done != t.sent or (wanted is not None and t.sent != wanted):
        out.append(f"{t.done} of {t.sent} commands done"
                   + (f" (wanted {wanted})" if wanted is not None else ""))
    return out


def run_overhead(settings: LoadSettings | None = None, amqp_url: str | None = None,
                 progress: Callable[[str], Any] | None = None,
                 log_dir: str | os.PathLike[str] | None = None,
                 rounds: int = 2) -> OverheadResult:
    """``rounds`` cycles of one load block (``settings.commands`` commands) in each of
    :data:`MODES`, in the order of :func:`block_order`, all with one broker (unless
    ``amqp_url``), pair of actors, bridge process and set of clients: before each block
    the bridge is reloaded into the block's mode and the peers left to go idle. The
    ratios are those of each cycle's blocks to its "off" block (:meth:`OverheadResult.paired`).

    Why not a new bridge per round (as this run did until 2026-12-04): the rate of fresh
    setups varied by 25-60 % between two "off" rounds of one run, far more than the 5 %
    to be shown; adjacent blocks of one process share whatever state the peers and the
    machine are in.
    """
    settings = settings or LoadSettings()
    settings.check()
    if rounds < 1:
        raise ValueError("need at least one cycle")
    say = progress or (lambda _msg: None)
    order = block_order(rounds)
    with state_dir(log_dir, "bench-load-") as state, \
            running_peers(state, amqp_url, say) as peers, \
            running_bridge(state, peers, say, mode=order[0][1]) as setup:
        wait_connected(setup.amqp_url)
        done = asyncio.run(_drive_blocks(setup, settings, order, say))
        status = bridge_status(setup.amqp_url)
        problems = log_problems(setup.bridge.log_text())
        in_flight = sum(int(a[4]) for a in status.get("actors", []))
        if in_flight:
            problems.append(f"bridge status: {in_flight} command(s) still in flight")
        if status.get("amqp") != "connected":
            problems.append(f"bridge status: amqp {status.get('amqp')!r}")
    return OverheadResult(settings, done, metrics_path_cost(), problems)


def add_arguments(ap: Any) -> None:
    """The command-line options (shared with ``bridge bench load``)."""
    d = LoadSettings()
    ap.add_argument("--commands", type=int, default=d.commands, help="commands in all")
    ap.add_argument("--legacy-clients", type=int, default=d.legacy_clients)
    ap.add_argument("--hub-clients", type=int, default=d.hub_clients,
                    help="of the legacy clients, how many use the hub port")
    ap.add_argument("--amqp-clients", type=int, default=d.amqp_clients)
    ap.add_argument("--window", type=int, default=d.window, help="commands in flight per client")
    ap.add_argument("--spam", type=int, default=d.spam, help="info replies per command")
    ap.add_argument("--warmup", type=int, default=d.warmup,
                    help="commands per client before the memory baseline")
    ap.add_argument("--hub-actors", choices=HUB_ACTORS, default=d.hub_actors,
                    help="the actors hub-port clients command in turn: both, or only the "
                         "legacy one (with --legacy-clients equal to --hub-clients, nothing "
                         "reaches the clu camera and the bridge's cost sets the rate)")
    ap.add_argument("--amqp", default=None, metavar="URL",
                    help="use this broker instead of starting a private one")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    ap.add_argument("--logs", default=None, metavar="DIR", help="keep the logs in DIR")
    ap.add_argument("--metrics-overhead", type=int, default=0, metavar="N",
                    help="instead: N cycles of one block of --commands commands in each of "
                         "three modes (metrics off, on, on with the per-command log line), "
                         "one bridge reloaded between blocks; report each cycle's ratios "
                         "to 'off' (median, quartiles, range)")


def run_cli(args: Any, out: IO[str] | None = None) -> int:
    """Run with parsed arguments; exit status 0 if the run shows no problem."""
    out = out or sys.stdout
    settings = LoadSettings(args.commands, args.legacy_clients, args.hub_clients,
                            args.amqp_clients, args.window, args.spam, args.warmup,
                            args.hub_actors)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if getattr(args, "metrics_overhead", 0):
            overhead = run_overhead(settings, args.amqp, say, args.logs, args.metrics_overhead)
            print(json.dumps(overhead.as_dict()) if args.json else format_overhead(overhead),
                  file=out)
            return 0 if not overhead.problems() else 1
        result = run_load(settings, args.amqp, say, args.logs)
    except (BenchError, ValueError) as exc:
        print(f"bridge bench load: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict()) if args.json else format_load(result), file=out)
    return 0 if not result.problems() else 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bridge.bench.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

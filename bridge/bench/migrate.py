"""Migration under load: an actor moves from legacy to AMQP (or back) while clients send.

Started here, all on 127.0.0.1 (and stopped again, also on an error): a private RabbitMQ
(unless ``amqp_url`` is given), the legacy ``shutter`` (a real clu ``LegacyActor``), the
bridge as a separate process (``bridge serve``), and, when a phase asks for it, the AMQP
``shutter`` (a real clu ``AMQPActor``); both shutters answer ``whoami`` with
``me="legacy"`` / ``me="amqp"`` and ``slow S`` after S seconds
(:mod:`bridge.bench.peers.migrate_shutter`). With ``mode="hub"`` the legacy shutter is
reached through a real Tron hub (``lives = "hub"``; needs a checkout: the test suite's
Tron launcher).

Clients, each sending at ``rate`` commands/s without waiting for answers (every
``slow_every``-th command is ``slow <slow_seconds>``, the others ``whoami``), so that
commands are in flight at every switch:

* ``hub``: a raw socket on the bridge's hub port (``shutter whoami``);
* ``face``: a raw socket on the shutter's legacy face, served by the bridge in every step
  (``legacy_port``: the face follows the shutter's route);
* ``amqp``: a real clu ``AMQPClient`` (``send_command("shutter", ...)``).

The forward walk-through (``examples/migration/``): legacy, served on AMQP -> reload to
prefer-AMQP -> AMQP shutter started -> stopped (back to legacy) -> started again ->
legacy shutter retired -> reload to ``lives = "amqp"``. The reverse one: ``lives =
"amqp"`` -> reload to legacy preferring AMQP -> AMQP shutter stopped -> reload to legacy
served on AMQP. Reloads are SIGHUPs to ``bridge serve`` (or ``bridge reload``, with
``reload_with="cli"``).

Per phase and client kind: commands sent, answered ``:``, failed ``f`` (with the
reasons), lost (no terminal reply), duplicated (more than one), and the longest wait
for a terminal reply; per reload, how long after the signal it took effect (the
bridge's ``reloaded`` broadcast); per AMQP shutter start, how long after its READY each
kind of client was first served by it. Failures that are allowed: a command running on
an actor that is stopped under it (in flight at the stop), and for AMQP clients clu's
own ``Failed routing`` (no process consumes ``shutter_commands``). Anything else, every
lost or duplicated command, is a problem (exit status 1).
"""

from __future__ import annotations

import abc
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..service.broker import free_port
from .programs import (
    BenchError,
    Program,
    child_environment,
    python_module,
    start_private_broker,
    state_dir,
)

LOOPBACK = "127.0.0.1"
BRIDGE_NAME = "migbridge"
ACTOR = "shutter"
EXCHANGE = "sdss_exchange"
KINDS = ("hub", "face", "amqp")
TERMINAL = (":", "f", "F", "!")
ROUTING_FAILURE = "Failed routing message to consumer"
#: Failures of a command that ran on an actor stopped under it (the bridge's texts).
STOPPED_ACTOR_ERRORS = ("went away", "Lost connection", "not connected")


@dataclass
class MigrateSettings:
    """How the walk-through runs."""

    rate: float = 20.0          # commands/s per client
    phase_seconds: float = 5.0  # how long clients send in each phase
    slow_every: int = 5         # every n-th command is slow
    slow_seconds: float = 0.4
    clients: int = 1            # clients of each kind
    mode: str = "legacy"        # legacy: the bridge reaches the shutter over TCP; hub: via Tron
    direction: str = "forward"  # forward: legacy -> AMQP; reverse: AMQP -> legacy
    drain: float = 30.0         # [timeouts] drain of the bridge
    reload_with: str = "sighup"  # or "cli": `bridge reload`
    grace: float = 20.0         # after the last phase: wait this long for late replies


@dataclass
class Sent:
    """One command and what came back for it."""

    kind: str
    phase: int
    text: str
    at: float
    terminals: list[tuple[str, float, str]] = field(default_factory=list)  # code, when, error
    me: str | None = None

    @property
    def wait(self) -> float | None:
        return self.terminals[0][1] - self.at if self.terminals else None


@dataclass
class Tally:
    """What one kind of client saw in one phase."""

    sent: int = 0
    answered: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    longest_wait: float = 0.0
    by: Counter[str] = field(default_factory=Counter)          # who answered ':' (me=)
    reasons: Counter[str] = field(default_factory=Counter)     # failure texts
    allowed: Counter[str] = field(default_factory=Counter)     # allowed failures/no replies

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "answered": self.answered, "failed": self.failed,
                "lost": self.lost, "duplicated": self.duplicated,
                "longest_wait": round(self.longest_wait, 3), "by": dict(self.by),
                "reasons": dict(self.reasons), "allowed": dict(self.allowed)}


@dataclass
class Phase:
    """One step of the walk-through: what is done at its start, and what it measured."""

    name: str
    action: str | None = None       # reload:<step> | start:amqp | stop:amqp | stop:legacy
    started: float = 0.0
    reload_effect: float | None = None  # s from the signal to the bridge's "reloaded"
    serving_after: dict[str, float] = field(default_factory=dict)  # kind -> s after READY
    tallies: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})


@dataclass
class MigrateResult:
    settings: MigrateSettings
    phases: list[Phase]
    stops: list[tuple[str, float, float]]  # (program, signalled, exited)

    def problems(self) -> list[str]:
        """What breaks the promise: lost, duplicated, failures that are not allowed."""
        out = []
        for i, phase in enumerate(self.phases, 1):
            for kind, t in phase.tallies.items():
                where = f"phase {i} ({phase.name}), {kind} clients"
                if t.lost:
                    out.append(f"{where}: {t.lost} command(s) lost")
                if t.duplicated:
                    out.append(f"{where}: {t.duplicated} command(s) answered twice")
                if t.failed:
                    out.append(f"{where}: {t.failed} failed: {dict(t.reasons)}")
                if t.sent != t.answered + t.failed + t.lost + sum(t.allowed.values()):
                    out.append(f"{where}: counts do not add up: {t.as_dict()}")
        return out

    def as_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "settings": s.__dict__,
            "phases": [{"name": p.name, "action": p.action, "reload_effect": p.reload_effect,
                        "serving_after": p.serving_after,
                        "tallies": {k: t.as_dict() for k, t in p.tallies.items()}}
                       for p in self.phases],
            "problems": self.problems(),
        }


# -- the walk-through -----------------------------------------------------------------

def walkthrough(direction: str) -> list[Phase]:
    """The phases of a forward (legacy -> AMQP) or reverse (AMQP -> legacy) move."""
    if direction == "forward":
        return [Phase("legacy, served on AMQP by the bridge"),
                Phase("prefer AMQP (reload)", "reload:prefer"),
                Phase("AMQP shutter started", "start:amqp"),
                Phase("AMQP shutter stopped", "stop:amqp"),
                Phase("AMQP shutter started again", "start:amqp"),
                Phase("legacy shutter retired", "stop:legacy"),
                Phase('lives = "amqp" (reload)', "reload:amqp")]
    if direction == "reverse":
        return [Phase('lives = "amqp"'),
                Phase("legacy preferring AMQP (reload)", "reload:prefer"),
                Phase("AMQP shutter stopped", "stop:amqp"),
                Phase("legacy, served on AMQP by the bridge (reload)", "reload:legacy")]
    raise ValueError(f"direction must be forward or reverse, not {direction!r}")


def step_config(step: str, *, amqp_url: str, hub_port: int, face_port: int,
                legacy_port: int, tron_port: int | None, drain: float) -> str:
    """The bridge's TOML for one step: ``legacy`` (served on AMQP), ``prefer`` or ``amqp``."""
    head = (f'name = "{BRIDGE_NAME}"\n\n[amqp]\nurl = "{amqp_url}"\n\n'
            f'[hub]\nport = {hub_port}\n\n[timeouts]\ndrain = {drain}\n\n')
    if tron_port is not None:
        head += f'[tron]\nhost = "{LOOPBACK}"\nport = {tron_port}\n\n'
    actor = f"[actors.{ACTOR}]\nlegacy_port = {face_port}\n"
    where = (f'lives = "legacy"\nport = {legacy_port}\n' if tron_port is None
             else 'lives = "hub"\n')
    if step == "legacy":
        return head + actor + where
    if step == "prefer":
        return head + actor + where + "amqp = false\nprefer_amqp = true\n"
    if step == "amqp":
        return head + actor + 'lives = "amqp"\n'
    raise ValueError(f"unknown step {step!r}")


# -- clients ---------------------------------------------------------------------------

class _Client(abc.ABC):
    """Sends at a fixed rate; records every terminal reply of its commands."""

    kind = ""

    def __init__(self, name: str, run: "_Run") -> None:
        self.name = name
        self.run = run
        self.commands: dict[Any, Sent] = {}
        self.count = 0

    def next_text(self) -> str:
        self.count += 1
        s = self.run.settings
        if s.slow_every and self.count % s.slow_every == 0:
            return f"slow {s.slow_seconds:g}"
        return "whoami"

    def record(self, key: Any, text: str) -> None:
        self.commands[key] = Sent(self.kind, self.run.phase, text, time.monotonic())

    def terminal(self, key: Any, code: str, error: str, me: str | None) -> None:
        sent = self.commands.get(key)
        if sent is None:
            return
        sent.terminals.append((code, time.monotonic(), error))
        if me and sent.me is None:
            sent.me = me
            self.run.served(self.kind, me, sent)

    async def send_forever(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.run.settings.rate
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            self.send(self.next_text())
            n += 1
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass

    @abc.abstractmethod
    def send(self, text: str) -> None:
        """Send one command ``text`` (without waiting for its replies)."""

    async def close(self) -> None:
        pass


def _keywords(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            out[key] = value.strip().strip('"')
    return out


class _LineClient(_Client):
    """A raw legacy socket (hub port or legacy face)."""

    async def connect(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(LOOPBACK, port, limit=1 << 20)
        self.reader = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            self.line(raw.decode(errors="replace").rstrip("\r\n"))

    @abc.abstractmethod
    def line(self, line: str) -> None:
        """Handle one line the bridge sent."""

    async def close(self) -> None:
        self.writer.close()
        self.reader.cancel()


class HubClient(_LineClient):
    """``<name> <mid> shutter <text>`` on the hub port; its lines come back to every
    commander as ``<name> <mid> <actor> <code> ...``."""

    kind = "hub"

    def send(self, text: str) -> None:
        mid = self.count
        self.record(mid, text)
        self.writer.write(f"{self.name} {mid} {ACTOR} {text}\n".encode())

    def line(self, line: str) -> None:
        parts = line.split(" ", 4)
        if len(parts) < 4 or parts[0] != self.name or not parts[1].isdigit():
            return
        code = parts[3]
        if code in TERMINAL:
            kw = _keywords(parts[4] if len(parts) > 4 else "")
            self.terminal(int(parts[1]), code, kw.get("error") or kw.get("NoTarget", ""),
                          kw.get("me"))


class FaceClient(_LineClient):
    """``<mid> <text>`` on the shutter's legacy face; ``<cid> <mid> <code> ...`` back, ours
    with this connection's user id."""

    kind = "face"
    user_id: int | None = None

    async def connect(self, port: int) -> None:
        self.greeted = asyncio.Event()
        await super().connect(port)
        await asyncio.wait_for(self.greeted.wait(), 30)

    def send(self, text: str) -> None:
        mid = self.count
        self.record(mid, text)
        self.writer.write(f"{self.name} {mid} {text}\n".encode())

    def line(self, line: str) -> None:
        parts = line.split(" ", 3)
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return
        cid, mid, code = int(parts[0]), int(parts[1]), parts[2]
        text = parts[3] if len(parts) > 3 else ""
        if self.user_id is None and mid == 0 and text.startswith("yourUserID="):
            self.user_id = cid
            self.greeted.set()
            return
        if cid == self.user_id and mid and code in TERMINAL:
            kw = _keywords(text)
            self.terminal(mid, code, kw.get("error", ""), kw.get("me"))


class AmqpClient(_Client):
    """A real clu ``AMQPClient``; every reply is seen through its reply callbacks."""

    kind = "amqp"

    async def connect(self, url: str) -> None:
        import logging

        from clu import AMQPClient

        self.client = AMQPClient(self.name, url=url)
        handler = getattr(getattr(self.client, "log", None), "sh", None)
        if handler is not None:  # clu's console handler: quiet
            handler.setLevel(logging.CRITICAL + 1)
        await self.client.start()
        self.client.add_reply_callback(self._on_reply)
        self.tasks: set[asyncio.Task[Any]] = set()

    def send(self, text: str) -> None:
        task = asyncio.ensure_future(self._send(text))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, text: str) -> None:
        at = time.monotonic()
        phase = self.run.phase
        command = await self.client.send_command(ACTOR, text, await_command=False)
        self.commands[command.command_id] = Sent(self.kind, phase, text, at)
        for reply in list(command.replies):  # replies that came before we knew the id
            code = getattr(reply.message_code, "value", str(reply.message_code))
            if code in TERMINAL:
                body = reply.message if isinstance(reply.message, dict) else {}
                self.terminal(command.command_id, code, str(body.get("error", "")),
                              body.get("me"))

    def _on_reply(self, reply: Any) -> None:
        code = getattr(reply.message_code, "value", str(reply.message_code))
        if reply.command_id in self.commands and code in TERMINAL:
            body = reply.body if isinstance(reply.body, dict) else {}
            self.terminal(reply.command_id, code, str(body.get("error", "")), body.get("me"))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await self.client.stop()


# -- running it -----------------------------------------------------------------------

class _Run:
    """The state of one run (clients, phases, times), on one asyncio loop."""

    def __init__(self, settings: MigrateSettings, phases: list[Phase]) -> None:
        self.settings = settings
        self.phases = phases
        self.phase = 0
        self.reloads: list[float] = []       # when the bridge said "reloaded"
        self.ready_at: dict[int, float] = {}  # phase -> when the AMQP shutter was READY
        self.stops: list[tuple[str, float, float]] = []

    def served(self, kind: str, me: str, sent: Sent) -> None:
        """First answer from ``me`` to a command sent in an AMQP-start phase."""
        ready = self.ready_at.get(sent.phase)
        phase = self.phases[sent.phase]
        if me == "amqp" and ready is not None and kind not in phase.serving_after:
            phase.serving_after[kind] = round(max(0.0, time.monotonic() - ready), 3)


class _Setup:
    """The programs of one run, and how to act on them."""

    def __init__(self, stack: ExitStack, state: Path, amqp_url: str, settings: MigrateSettings,
                 say: Callable[[str], Any]) -> None:
        self.stack, self.state, self.amqp_url, self.settings, self.say = (
            stack, state, amqp_url, settings, say)
        self.env = child_environment()
        self.hub_port, self.face_port, self.legacy_port = free_port(), free_port(), free_port()
        self.tron: Any = None
        self.programs: dict[str, Program] = {}
        self.starts = Counter[str]()
        self.config = state / "bridge.toml"
        self.bridge: Program | None = None

    def start_tron(self) -> None:
        root = Path(__file__).resolve().parents[2]
        if not (root / "tests" / "support" / "tron_hub.py").is_file():
            raise BenchError("mode 'hub' needs a checkout (tests/support/tron_hub.py)")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        from tests.support.tron_hub import TronHub  # the test suite's real-Tron launcher

        self.say("starting the real Tron hub")
        self.tron = TronHub(self.state / "tron")
        self.stack.callback(self.tron.stop)
        self.tron.start()
        self.tron.add_actor(ACTOR, LOOPBACK, self.legacy_port)

    def write_step(self, step: str) -> None:
        text = step_config(step, amqp_url=self.amqp_url, hub_port=self.hub_port,
                           face_port=self.face_port, legacy_port=self.legacy_port,
                           tron_port=self.tron.port if self.tron else None,
                           drain=self.settings.drain)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config)

    def start_program(self, side: str) -> Program:
        """Start a shutter (``legacy`` or ``amqp``), not waiting for READY."""
        self.starts[side] += 1
        args = ["--side", side, "--name", ACTOR]
        if side == "legacy":
            args += ["--port", str(self.legacy_port)]
            if self.tron is not None:
                args += ["--tron-port", str(self.tron.port)]
        else:
            args += ["--url", self.amqp_url]
        program = Program(f"{side}-shutter-{self.starts[side]}",
                          python_module("bridge.bench.peers.migrate_shutter", *args),
                          self.state, env=self.env)
        program.start()
        self.stack.callback(program.stop)
        self.programs[side] = program
        return program

    def start_bridge(self) -> None:
        ready = self.state / "bridge.ready"
        ready.unlink(missing_ok=True)
        self.bridge = Program("bridge", python_module(
            "bridge.cli.main", "serve", "--config", str(self.config), "--ready-file", str(ready)),
            self.state, env=self.env)
        self.bridge.start()
        self.stack.callback(self.bridge.stop)
        self.bridge.wait_ready(timeout=90, ready_file=ready)

    def reload(self) -> None:
        assert self.bridge is not None
        if self.settings.reload_with == "cli":
            subprocess.Popen(python_module("bridge.cli.main", "reload", "--hub",
                                           f"{LOOPBACK}:{self.hub_port}", "--name", BRIDGE_NAME),
                             env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            os.kill(self.bridge.pid, signal.SIGHUP)


async def _listen_reloads(url: str, run: _Run) -> Any:
    """The bridge's ``reloaded`` broadcasts, timed."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, type="topic", auto_delete=True,
                                              durable=False)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="reply.broadcast")

    async def on_message(message: Any) -> None:
        if (message.headers or {}).get("sender") == BRIDGE_NAME and b"reloaded" in message.body:
            run.reloads.append(time.monotonic())

    await queue.consume(on_message, no_ack=True)
    return connection


async def _wait_in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def _act(setup: _Setup, run: _Run, phase: Phase, index: int) -> None:
    """Do what starts ``phase``; record its times."""
    kind, _, what = (phase.action or "").partition(":")
    phase.started = time.monotonic()
    if kind == "reload":
        setup.write_step(what)
        seen = len(run.reloads)
        signalled = time.monotonic()
        setup.reload()
        deadline = signalled + 30
        while len(run.reloads) <= seen and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if len(run.reloads) > seen:
            phase.reload_effect = round(run.reloads[seen] - signalled, 3)
    elif kind == "start":
        program = setup.start_program(what)
        await _wait_in_thread(lambda: program.wait_ready(timeout=60))
        run.ready_at[index] = time.monotonic()
    elif kind == "stop":
        program = setup.programs[what]
        signalled = time.monotonic()
        await _wait_in_thread(program.stop)
        run.stops.append((what, signalled, time.monotonic()))


async def _drive(setup: _Setup, settings: MigrateSettings, phases: list[Phase],
                 say: Callable[[str], Any]) -> _Run:
    run = _Run(settings, phases)
    listener = await _listen_reloads(setup.amqp_url, run)
    clients: list[_Client] = []
    try:
        for i in range(settings.clients):
            hub = HubClient(f"migr.hub{i}", run)
            await hub.connect(setup.hub_port)
            face = FaceClient(f"migr.face{i}", run)
            await face.connect(setup.face_port)
            amqp = AmqpClient(f"migr_amqp{i}", run)
            await amqp.connect(setup.amqp_url)
            clients += [hub, face, amqp]
        stop = asyncio.Event()
        senders = [asyncio.ensure_future(c.send_forever(stop)) for c in clients]
        for index, phase in enumerate(phases):
            run.phase = index
            say(f"phase {index + 1}: {phase.name}")
            if phase.action:
                await _act(setup, run, phase, index)
            await asyncio.sleep(settings.phase_seconds)
        stop.set()
        await asyncio.gather(*senders)
        say("waiting for the last replies")
        deadline = time.monotonic() + settings.grace
        while time.monotonic() < deadline and any(
                not s.terminals and not _died_with_actor(s, run) for c in clients
                for s in c.commands.values()):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # late duplicates would arrive now
    finally:
        for client in clients:
            try:
                await client.close()
            except Exception:
                pass
        await listener.close()
    _tally(clients, run)
    return run


def _in_flight_at_stop(sent: Sent, run: _Run, side: str | None = None) -> bool:
    """True if the command was in flight while a shutter was stopping (from the signal to
    the process's exit: until then it may still take commands it will never answer)."""
    end = sent.terminals[0][1] if sent.terminals else float("inf")
    return any(sent.at <= exited and end >= signalled for what, signalled, exited in run.stops
               if side is None or what == side)


def _died_with_actor(sent: Sent, run: _Run) -> bool:
    """An AMQP client's command that the clu AMQP shutter had when it was stopped: clu
    answers nothing then (the command never reached the bridge)."""
    return sent.kind == "amqp" and not sent.terminals and _in_flight_at_stop(sent, run, "amqp")


def _tally(clients: list[_Client], run: _Run) -> None:
    for client in clients:
        for sent in client.commands.values():
            t = run.phases[sent.phase].tallies[sent.kind]
            t.sent += 1
            if not sent.terminals:
                if _died_with_actor(sent, run):
                    t.allowed["no reply: the AMQP shutter was stopped under it (clu)"] += 1
                else:
                    t.lost += 1
                continue
            if len(sent.terminals) > 1:
                t.duplicated += 1
            t.longest_wait = max(t.longest_wait, sent.wait or 0.0)
            code, _, error = sent.terminals[0]
            if code == ":":
                t.answered += 1
                t.by[sent.me or "?"] += 1
            elif sent.kind == "amqp" and error.startswith(ROUTING_FAILURE):
                t.allowed[f"{error} (no consumer)"] += 1
            elif _in_flight_at_stop(sent, run) and any(e in error for e in STOPPED_ACTOR_ERRORS):
                t.allowed[f"{error} (its actor was stopped under it)"] += 1
            else:
                t.failed += 1
                t.reasons[error or f"code {code}"] += 1


@contextmanager
def _running(settings: MigrateSettings, amqp_url: str | None, state: Path,
             say: Callable[[str], Any]) -> Iterator[_Setup]:
    with ExitStack() as stack:
        if amqp_url is None:
            amqp_url = start_private_broker(stack, "migbench", say)
        setup = _Setup(stack, state, amqp_url, settings, say)
        if settings.mode == "hub":
            setup.start_tron()
        say("starting the shutters and the bridge")
        programs = [setup.start_program("legacy")]
        if settings.direction == "reverse":
            programs.append(setup.start_program("amqp"))
        for program in programs:
            program.wait_ready(timeout=90)
        if setup.tron is not None:  # the hub has read the shutter's greeting (a tron race)
            setup.tron.wait_actor_ready(ACTOR, timeout=60)
        setup.write_step("legacy" if settings.direction == "forward" else "amqp")
        setup.start_bridge()
        yield setup


def run_migrate(settings: MigrateSettings | None = None, amqp_url: str | None = None,
                progress: Callable[[str], Any] | None = None,
                log_dir: str | os.PathLike[str] | None = None) -> MigrateResult:
    """Run the walk-through once; the logs go to ``log_dir`` (kept) or a temporary one."""
    settings = settings or MigrateSettings()
    if settings.rate <= 0 or settings.phase_seconds <= 0 or settings.clients < 1 \
            or settings.mode not in ("legacy", "hub") \
            or settings.reload_with not in ("sighup", "cli"):
        raise ValueError("need rate > 0, phase_seconds > 0, clients >= 1, mode legacy|hub, "
                         "reload_with sighup|cli")
    phases = walkthrough(settings.direction)
    say = progress or (lambda _msg: None)
    with state_dir(log_dir, "bench-migrate-") as state, \
            _running(settings, amqp_url, state, say) as setup:
        _wait_link(setup)
        run = asyncio.run(_drive(setup, settings, phases, say))
    return MigrateResult(settings, phases, run.stops)


def _wait_link(setup: _Setup, timeout: float = 60.0) -> None:
    """Until the bridge's link to the shutter is up (``bridge status``), so the first
    commands are not refused as "not connected" (the bridge connects in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(python_module("bridge.cli.main", "status", "--amqp", setup.amqp_url,
                                           "--name", BRIDGE_NAME, "--json"),
                             capture_output=True, text=True, env=setup.env, timeout=60)
        if out.returncode == 0:
            actors = json.loads(out.stdout).get("actors", [])
            if actors and all(a[3] == "connected" for a in actors):
                return
        if time.monotonic() > deadline:
            raise BenchError(f"the bridge's shutter link is not up after {timeout:g} s: "
                             f"{out.stdout}{out.stderr}")
        time.sleep(0.2)


def format_migrate(result: MigrateResult) -> str:
    """The figures as a text table, per phase and client kind."""
    s = result.settings
    lines = [f"migration ({s.direction}, shutter reached {'through Tron' if s.mode == 'hub' else 'over TCP'}), "
             f"{s.clients} client(s) of each kind at {s.rate:g} commands/s, every "
             f"{s.slow_every}th `slow {s.slow_seconds:g}`, {s.phase_seconds:g} s per phase, "
             f"reloads by {'SIGHUP' if s.reload_with == 'sighup' else 'bridge reload'}"]
    head = (f"  {'client':<6} {'sent':>5} {':':>5} {'f':>4} {'lost':>5} {'dup':>4} "
            f"{'allowed':>8} {'longest wait':>13}  served by")
    for i, phase in enumerate(result.phases, 1):
        extra = []
        if phase.reload_effect is not None:
            extra.append(f"reload in effect {phase.reload_effect * 1000:.0f} ms after the "
                         f"{'SIGHUP' if s.reload_with == 'sighup' else 'command'}")
        elif phase.action and phase.action.startswith("reload"):
            extra.append("reload: no 'reloaded' broadcast seen")
        if phase.serving_after:
            extra.append("served by the new AMQP shutter " + ", ".join(
                f"{k} {v * 1000:.0f} ms" for k, v in sorted(phase.serving_after.items()))
                + " after its READY")
        lines.append(f"phase {i}: {phase.name}" + (f"  [{'; '.join(extra)}]" if extra else ""))
        lines.append(head)
        for kind in KINDS:
            t = phase.tallies[kind]
            by = ", ".join(f"{k} {v}" for k, v in sorted(t.by.items()))
            lines.append(f"  {kind:<6} {t.sent:>5} {t.answered:>5} {t.failed:>4} {t.lost:>5} "
                         f"{t.duplicated:>4} {sum(t.allowed.values()):>8} "
                         f"{t.longest_wait:>11.3f} s  {by}")
            for reason, n in t.reasons.most_common():
                lines.append(f"         f x{n}: {reason}")
            for reason, n in t.allowed.most_common():
                lines.append(f"         allowed x{n}: {reason}")
    problems = result.problems()
    lines.append("problems: " + ("none" if not problems else ""))
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def add_arguments(ap: Any) -> None:
    """The command-line options (shared with ``bridge bench migrate``)."""
    d = MigrateSettings()
    ap.add_argument("--rate", type=float, default=d.rate, help="commands/s per client")
    ap.add_argument("--phase-seconds", type=float, default=d.phase_seconds)
    ap.add_argument("--slow-every", type=int, default=d.slow_every)
    ap.add_argument("--slow-seconds", type=float, default=d.slow_seconds)
    ap.add_argument("--clients", type=int, default=d.clients, help="clients of each kind")
    ap.add_argument("--mode", choices=("legacy", "hub"), default=d.mode,
                    help="legacy: the bridge reaches the legacy shutter over TCP; hub: "
                         "through a real Tron hub (needs a checkout)")
    ap.add_argument("--direction", choices=("forward", "reverse"), default=d.direction)
    ap.add_argument("--drain", type=float, default=d.drain, help="the bridge's [timeouts] drain")
    ap.add_argument("--reload-with", choices=("sighup", "cli"), default=d.reload_with)
    ap.add_argument("--amqp", default=None, metavar="URL",
                    help="use this broker instead of starting a private one")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    ap.add_argument("--logs", default=None, metavar="DIR", help="keep the logs in DIR")


def run_cli(args: Any, out: IO[str] | None = None) -> int:
    """Run with parsed arguments; exit status 0 if the run shows no problem."""
    out = out or sys.stdout
    settings = MigrateSettings(rate=args.rate, phase_seconds=args.phase_seconds,
                               slow_every=args.slow_every, slow_seconds=args.slow_seconds,
                               clients=args.clients, mode=args.mode, direction=args.direction,
                               drain=args.drain, reload_with=args.reload_with)
    try:
        result = run_migrate(settings, args.amqp,
                             lambda msg: print(msg, file=sys.stderr, flush=True), args.logs)
    except (BenchError, ValueError) as exc:
        print(f"bridge bench migrate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict()) if args.json else format_migrate(result), file=out)
    return 0 if not result.problems() else 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bridge.bench.migrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""The bridge's relay paths side by side with the direct paths, measured in one run.

Started here, all on 127.0.0.1 (and all stopped again, also on Ctrl-C or an error):
a private RabbitMQ broker, a real clu ``AMQPActor`` (``camera``), a real clu
``LegacyActor`` (``shutter``), optionally our own LegacyActor (``ourshutter``), and
the bridge as a separate process (``bridge serve`` with a generated configuration:
the legacy actors ``lives = "legacy"`` served on AMQP, the camera ``lives = "amqp"``
with a ``legacy_port``). The peer programs are in :mod:`bridge.bench.peers`.

Paths (each a different client; the actor is the same process wherever two paths
share one):

* ``a``: clu ``AMQPClient`` -> RabbitMQ -> clu AMQPActor (the reference);
* ``b``: clu ``AMQPClient`` -> RabbitMQ -> bridge -> clu LegacyActor;
* ``c``: raw legacy socket (TCP_NODELAY) -> bridge legacy face -> RabbitMQ -> clu AMQPActor;
* ``d``: raw legacy socket -> clu LegacyActor (the legacy reference, for context);
* ``b-ours`` / ``d-ours`` (``ours=True``): as ``b`` / ``d`` with our LegacyActor;
* ``e``: clu ``AMQPClient`` -> RabbitMQ -> a minimal actor written with aio-pika
  (:mod:`bridge.bench.peers.aiopika_actor`) that publishes exactly as the bridge does
  (frames through :mod:`bridge.amqp.writer`, confirms, the same window) and does
  nothing else: the floor. Its raw stream is the most replies/s one publisher working
  the bridge's way gets through this machine's broker, so it bounds the relay.
* ``e-max``: the same actor answering ``blast N`` through aio-pika on a channel without
  publisher confirms (raw stream only): aio-pika's ceiling here.

Metrics, per run: ``round trip`` = median over ``count`` sequential ``ping`` commands
(send to the terminal reply), in ms; ``reply stream`` = ``spam <stream>`` timed from
send to its ``:``, in replies/s (every reply of the command counted), taken ``streams``
times a run (default 3, path after path in turn, like the round trips' blocks) and
recorded as their median; for the AMQP paths
also ``stream, raw AMQP``: the same through a plain aio-pika consumer (``no_ack``, no
prefetch limit, bound to its own replies only; :mod:`bridge.bench.peers.raw_client`,
its own process), because clu's client (prefetch 1, one ack per reply) caps what it
can receive: that row shows what the actor or the bridge delivers, and checks that
the replies arrive in order. During each raw stream clu's hearers, the AMQPActor and
clu's client, which hear every reply on the exchange, are paused (SIGSTOP, then
SIGCONT; never the actor of the stream's own path): on two CPUs their work on a
stream's replies, ~400 us a reply, otherwise falls partly during the stream and partly
after it, a different share each time, and that share rather than the publisher set
the stream's rate (issue 14's eleventh pass). The broker still queues every reply for
them. ``--busy-hearers`` keeps them running; the ``reply stream`` rows always do. The
raw streams of (b-ours) and (b) are also set over (e)'s stream by stream (same run,
same round: the stream pair ratios); their median is the share of the floor the goal
judges, their range how far a single stream strays. For (e) and
(e-max) also ``publish only``: the aio-pika actor publishes ``stream`` reply-sized messages into a
queue nobody reads, with confirms (as the bridge) and without (aio-pika), in messages/s,
and for (e) also ``publish only, aio-pika``: with confirms through aio-pika's own channel
``basic_publish`` (how the bridge published before issue 14): what one process publishes
here with no consumer at all. Each row reports
the median, min and max over ``runs`` runs; round trips also the p99 of all samples.
The last column is the bridge
process's CPU time per command or per reply (from ``/proc``): what relaying costs the
bridge, whatever else runs on the machine (for paths that do not go through the bridge,
what it spends hearing the traffic: every clu client hears every reply). Round trips
also charge every program's CPU to the path that used it (``cpu_us_by_process`` in the
JSON, one line of the table: the peers, the bridge, the broker and this process, which
is the legacy client of the legacy paths): on two CPUs a round trip also waits for
whatever else the path makes busy, such as clu's client hearing the camera's replies to
the bridge on (c) where the bridge hears them on (a). A warm-up run
(small counts) comes first and is not counted. Runs are interleaved path
by path (the order rotates each run) so that machine noise hits every path alike;
within a run the round trips are measured in ``blocks`` blocks (default 10 of 30),
every path's first block, then every path's second, and so on: a slow second of this
shared machine then slows a block of each path instead of one path's whole run (its
ratio to (a) is judged run by run).
Each measurement starts once the peers, the bridge and the broker are quiet again
(together below 5 % of one CPU over 0.1 s, :func:`~bridge.bench.programs.settle`):
every clu client hears every reply, and after a raw stream of a few thousand
replies/s clu's clients keep both CPUs busy for up to a second working through
their queues, which slowed whichever measurement came next.

The clu client runs in its own process (:mod:`bridge.bench.peers.clu_client`), so the
socket clients here and the raw consumer are never slowed by it: every clu client
hears every reply on the exchange and parses it. Legacy sockets connect for each
measurement and close after it, so that no idle connection receives the bridge's
mirrored camera traffic. Each run starts by timing two yardsticks of the machine
(:mod:`bridge.bench.timing`): a pure-Python loop and a round trip to another process.

``python -m bridge.bench.relay`` or ``bridge bench relay`` print the table.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import signal
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from .programs import (
    STATE_VARIABLE,
    BenchError,
    Program,
    child_environment,
    cpu_seconds_between,
    private_broker,
    process_cpu_seconds,
    python_module,
    settle,
    state_dir,
    threads_cpu_ns,
)
from .timing import python_speed_ms, wakeup_cost_us

T = TypeVar("T")  # one round of measurements (a block size, a repeat)
R = TypeVar("R")  # what one measurement returns

LOOPBACK = "127.0.0.1"
CAMERA = "camera"
SHUTTER = "shutter"
OUR_SHUTTER = "ourshutter"
RAW_ACTOR = "rawactor"
CLIENT = "relaybench"
TERMINAL = frozenset(b":fF!")
_SPAM_INDEX = re.compile(rb" i spam_index=(\d+)")
TIMEOUT = 60.0

#: Every path: key -> (description, kind of client, actor name seen by the client).
PATHS: dict[str, tuple[str, str, str]] = {
    "a": ("clu AMQPClient -> clu AMQPActor", "amqp", CAMERA),
    "b": ("clu AMQPClient -> bridge -> clu LegacyActor", "amqp", SHUTTER),
    "c": ("legacy socket -> bridge -> clu AMQPActor", "legacy", CAMERA),
    "d": ("legacy socket -> clu LegacyActor", "legacy", SHUTTER),
    "b-ours": ("clu AMQPClient -> bridge -> our LegacyActor", "amqp", OUR_SHUTTER),
    "d-ours": ("legacy socket -> our LegacyActor", "legacy", OUR_SHUTTER),
    # The floor: an actor written with aio-pika alone, no clu and no bridge. Its raw
    # stream is what one aio-pika publisher gets through this machine's broker, so no
    # relay built on aio-pika (the bridge included) can stream faster here.
    "e": ("clu AMQPClient -> minimal aio-pika actor", "amqp", RAW_ACTOR),
    # The ceiling: the same actor publishing without publisher confirms (``blast N``),
    # never waiting: the most replies/s aio-pika puts through this broker at all.
    "e-max": ("clu AMQPClient -> aio-pika actor, no confirms", "amqp", RAW_ACTOR),
}
ROUND_TRIP, STREAM, RAW_STREAM = "round trip", "reply stream", "stream, raw AMQP"
#: The peers that hear every reply on the exchange without being a path's client or
#: actor in a raw stream: clu's AMQPActor and clu's client (program names).
HEARERS = (CAMERA, "clu-client")
#: The aio-pika actor publishing alone into a queue nobody reads (no consumer at all).
PUBLISH_ONLY = "publish only"
#: The same through aio-pika's channel ``basic_publish`` with confirms (path ``e`` only).
PUBLISH_AIOPIKA = "publish only, aio-pika"
METRICS = (ROUND_TRIP, STREAM, RAW_STREAM, PUBLISH_ONLY, PUBLISH_AIOPIKA)
#: Paths measured with other metrics than those that fit their kind of client.
ONLY_METRICS: dict[str, tuple[str, ...]] = {
    "e": (ROUND_TRIP, STREAM, RAW_STREAM, PUBLISH_ONLY, PUBLISH_AIOPIKA),
    "e-max": (RAW_STREAM, PUBLISH_ONLY),
}
#: The streaming command of a path (default ``spam``).
STREAM_VERB: dict[str, str] = {"e-max": "blast"}
#: The publish-only command of a path (with confirms like the bridge, or without).
PUBLISH_VERB: dict[str, str] = {"e": "publish_only", "e-max": "publish_only_unconfirmed"}
UNITS = {ROUND_TRIP: "ms", STREAM: "replies/s", RAW_STREAM: "replies/s",
         PUBLISH_ONLY: "messages/s", PUBLISH_AIOPIKA: "messages/s"}
#: Round trips of a run are measured in this many blocks, path after path in turn (10
#: since the sixteenth pass of BENCHMARKS.md: the VM's drift between blocks then moves the
#: single runs' ratios less than with 3; their means did not move).
ROUND_TRIP_BLOCKS = 10
#: Streams of each path per run, path after path in turn; the run's value is their median.
STREAMS_PER_RUN = 3
#: Goals of the relay (issues 4 and 14): (b), (c), (b-ours) round trips no slower than (a)...
RATIOS = (("b", "a"), ("c", "a"), ("b-ours", "a"))
#: ... the bridge relays at least this many replies per second (raw consumer, (b-ours))...
STREAM_GOAL = 5_000.0
#: ... and at least this share of the floor (e) in the same run...
FLOOR_SHARE_GOAL = 0.9
#: ... spending at most this much CPU (µs) per relayed command / per relayed reply.
CPU_PER_COMMAND_GOAL = 500.0
CPU_PER_REPLY_GOAL = 100.0


# -- results ----------------------------------------------------------------------------------

@dataclass
class Row:
    """One metric of one path: a value per run and every sample (each round trip in ms,
    or each stream's rate, in the order taken)."""

    path: str
    metric: str  # one of METRICS
    unit: str
    runs: list[float] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    #: CPU time of the bridge process per command (round trips) or per reply (streams),
    #: in microseconds, one value per run (empty where /proc is not available).
    bridge_cpu: list[float] = field(default_factory=list)
    #: Round trips only: CPU time per command of every program of the benchmark (the
    #: peers, the bridge, the broker, the benchmark's own process, which is the legacy
    #: client of the legacy paths), in microseconds, one value per run, by program name.
    #: On a 2-CPU machine a path's round trip also waits for whoever else is busy, so
    #: this shows what each path costs the machine as a whole and who pays it.
    cpu_by_process: dict[str, list[float]] = field(default_factory=dict)

    @property
    def bridge_cpu_us(self) -> float | None:
        return statistics.median(self.bridge_cpu) if self.bridge_cpu else None

    @property
    def cpu_us_by_process(self) -> dict[str, float]:
        """The median over the runs of each program's CPU per command (round trips)."""
        return {name: statistics.median(values)
                for name, values in self.cpu_by_process.items() if values}

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def p99(self) -> float | None:
        """The 99th percentile of all round trips (None for other metrics)."""
        if self.metric != ROUND_TRIP or not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def description(self) -> str:
        text = PATHS[self.path][0]
        if self.metric == PUBLISH_ONLY:
            if self.path == "e":
                return "publisher alone, the bridge's way, confirms"
            return "aio-pika publisher alone, without confirms"
        if self.metric == PUBLISH_AIOPIKA:
            return "aio-pika publisher alone, with confirms"
        return text.replace("clu AMQPClient", "aio-pika consumer") if self.metric == RAW_STREAM \
            else text

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "description": self.description, "metric": self.metric,
                "unit": self.unit, "median": self.median, "min": min(self.runs),
                "max": max(self.runs), "p99": self.p99, "runs": self.runs,
                "samples": len(self.samples), "bridge_cpu_us": self.bridge_cpu_us,
                "bridge_cpu_runs": self.bridge_cpu, "cpu_us_by_process": self.cpu_us_by_process,
                "cpu_by_process_runs": self.cpu_by_process}


@dataclass
class RelayResult:
    """Every row of one benchmark run, the settings and the machine it ran on."""

    rows: list[Row]
    settings: dict[str, Any]
    machine: dict[str, Any]

    def row(self, path: str, metric: str) -> Row | None:
        return next((r for r in self.rows if r.path == path and r.metric == metric), None)

    def _ratio_rows(self) -> Iterator[tuple[str, Row, Row]]:
        """``("b/a", row of b, row of a)`` for each of :data:`RATIOS` measured."""
        for num, den in RATIOS:
            n, d = self.row(num, ROUND_TRIP), self.row(den, ROUND_TRIP)
            if n is not None and d is not None:
                yield f"{num}/{den}", n, d

    def ratios(self) -> dict[str, float]:
        """Round-trip median ratios such as ``"b/a"`` (below 1: faster than the reference)."""
        return {key: n.median / d.median for key, n, d in self._ratio_rows()}

    def run_ratios(self) -> dict[str, list[float]]:
        """The same ratios run by run (run i of one path over run i of the other, measured
        minutes apart at most): the goal is <= 1 in every run, not only in the medians."""
        return {key: [x / y for x, y in zip(n.runs, d.runs)]
                for key, n, d in self._ratio_rows()}

    def stream_pair_ratios(self) -> dict[str, list[float]]:
        """Raw streams of (b-ours) and (b) over (e), stream by stream: each over the stream
        of (e) taken in the same round of the same run (seconds apart, each after the
        settle). Single streams vary widely on a shared 2-CPU machine; their median is
        what the goal judges (:meth:`goals`): a slow or fast phase of the VM that lasts
        longer than a pair of streams moves both streams of a pair, so it cancels in
        the pair's ratio, while in the ratio of the two paths' medians it does not."""
        floor = self.row("e", RAW_STREAM)
        out: dict[str, list[float]] = {}
        for path in ("b-ours", "b"):
            row = self.row(path, RAW_STREAM)
            if row is not None and floor is not None and row.samples \
                    and len(row.samples) == len(floor.samples):
                out[f"{path}/e"] = [x / y for x, y in zip(row.samples, floor.samples)]
        return out

    def goals(self) -> dict[str, bool]:
        """Whether each goal of the relay is met in this run. The reply-stream goals are
        the bridge's (legacy actor -> AMQP), so they are judged with the raw consumer; the
        clu client's own limit is in the table beside it. The share of the floor is the
        median of the stream pair ratios (:meth:`stream_pair_ratios`; the ratio of the
        medians where no pairs were kept)."""
        out = {f"round trip {k} <= 1 in every run": max(v) <= 1.0
               for k, v in self.run_ratios().items()}
        pairs = self.stream_pair_ratios()
        floor = self.row("e", RAW_STREAM)
        for path in ("b-ours",):
            row = self.row(path, RAW_STREAM)
            if row is None:
                continue
            out[f"{RAW_STREAM} ({path}) >= {STREAM_GOAL:,.0f}/s"] = row.median >= STREAM_GOAL
            if floor is not None:
                share = statistics.median(pairs[f"{path}/e"]) if f"{path}/e" in pairs \
                    else row.median / floor.median
                out[f"{RAW_STREAM} ({path}) >= {FLOOR_SHARE_GOAL:.0%} of (e)"] = \
                    share >= FLOOR_SHARE_GOAL
            cpu = row.bridge_cpu_us
            if cpu is not None:
                out[f"bridge CPU per reply ({path}) <= {CPU_PER_REPLY_GOAL:.0f} us"] = \
                    cpu <= CPU_PER_REPLY_GOAL
        for path in ("b", "c", "b-ours"):
            row = self.row(path, ROUND_TRIP)
            cpu = row.bridge_cpu_us if row is not None else None
            if cpu is not None:
                out[f"bridge CPU per command ({path}) <= {CPU_PER_COMMAND_GOAL:.0f} us"] = \
                    cpu <= CPU_PER_COMMAND_GOAL
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "machine": self.machine,
                "rows": [r.as_dict() for r in self.rows], "ratios": self.ratios(),
                "run_ratios": self.run_ratios(),
                "stream_pair_ratios": self.stream_pair_ratios(),
                "goals": self.goals()}


def _spread(values: Sequence[float], fmt: str = ".0f") -> str:
    """``median (min-max)`` of ``values``."""
    return (f"{statistics.median(values):{fmt}} "
            f"({min(values):{fmt}}-{max(values):{fmt}})")


def format_relay(result: RelayResult) -> str:
    """A plain-text table, the round-trip ratios and the goals."""
    lines = [f"{'path':<9} {'':<50} {'metric':<16} {'unit':>9} {'median':>10} {'min':>10} "
             f"{'max':>10} {'p99':>8} {'bridge CPU':>11}"]
    for r in result.rows:
        p99 = f"{r.p99:8.2f}" if r.p99 is not None else f"{'':>8}"
        fmt = "10,.3f" if r.unit == "ms" else "10,.0f"
        cpu = r.bridge_cpu_us
        per = {ROUND_TRIP: "cmd", PUBLISH_ONLY: "msg", PUBLISH_AIOPIKA: "msg"}.get(r.metric, "rep")
        cpu_text = f"{cpu:6,.0f} us/{per}" \
            if cpu is not None else ""
        lines.append(f"({r.path + ')':<8} {r.description:<50} {r.metric:<16} {r.unit:>9} "
                     f"{r.median:{fmt}} {min(r.runs):{fmt}} {max(r.runs):{fmt}} {p99} "
                     f"{cpu_text:>11}")
    ratios = result.ratios()
    if ratios:
        lines.append("round-trip ratios (median / median; below 1 = faster than (a)): "
                     + ", ".join(f"({k.replace('/', ')/(')}) {v:.2f}" for k, v in ratios.items()))
        lines.append("run by run: " + "; ".join(
            f"({k.replace('/', ')/(')}) " + " ".join(f"{x:.2f}" for x in v)
            for k, v in result.run_ratios().items()))
    split = [(r.path, r.cpu_us_by_process) for r in result.rows
             if r.metric == ROUND_TRIP and r.cpu_us_by_process]
    if split:
        lines.append("CPU per round trip by program, us (median of the runs; 10 us or more): "
                     + "; ".join(f"({path}) {sum(cpu.values()):,.0f} = " + ", ".join(
                         f"{name} {us:,.0f}" for name, us in sorted(
                             cpu.items(), key=lambda kv: -kv[1]) if us >= 10)
                                 for path, cpu in split))
    for name, met in result.goals().items():
        lines.append(f"goal {name}: {'met' if met else 'NOT met'}")
    pair_ratios = result.stream_pair_ratios()
    if pair_ratios:
        floor = result.row("e", RAW_STREAM)

        def of_medians(key: str) -> str:
            row = result.row(key.split("/")[0], RAW_STREAM)
            return f", ratio of the medians {row.median / floor.median:.0%}" \
                if row is not None and floor is not None else ""

        lines.append("raw streams pair by pair, each over (e)'s of the same round (the median "
                     "is the goal's share of the floor): " + "; ".join(
                         f"({key.replace('/', ')/(')}) median {statistics.median(pairs):.0%}, "
                         f"{min(pairs):.0%}-{max(pairs):.0%} over {len(pairs)} pairs"
                         f"{of_medians(key)}"
                         for key, pairs in pair_ratios.items()))
    for path, what in (("e", "floor of the relay: a publisher alone, the bridge's way"),
                       ("e-max", "ceiling: aio-pika alone, no publisher confirms")):
        row = result.row(path, RAW_STREAM)
        alone = result.row(path, PUBLISH_ONLY)
        if row is not None:
            lines.append(f"{what}, path ({path}) raw stream: {row.median:,.0f} replies/s"
                         + (f"; publishing alone, no consumer: {alone.median:,.0f} messages/s"
                            if alone is not None else ""))
    s = result.settings
    blocks = f" in {s['blocks']} interleaved blocks" if s.get("blocks", 1) > 1 else ""
    streams = f" ({s['streams']} per run and path, interleaved; median)" \
        if s.get("streams", 1) > 1 else ""
    lines.append(f"{s['runs']} runs x {s['count']} round trips{blocks}, spam {s['stream']}"
                 f"{streams}; "
                 + ("clu's hearers paused during raw streams; " if s.get("hearers_paused")
                    else "")
                 + f"{result.machine.get('nproc')} CPUs, load {result.machine.get('loadavg')}")
    speeds = result.machine.get("python_loop_ms")
    if speeds:
        lines.append(f"the machine's speed: a fixed pure-Python loop took {_spread(speeds)} ms "
                     f"at the start of a run (bridge.bench.timing.python_speed_ms)")
    wakeups = result.machine.get("wakeup_us")
    if wakeups:
        lines.append(f"the machine's wake-ups: a one-byte round trip to another process took "
                     f"{_spread([w for w, _ in wakeups])} us, "
                     f"{_spread([c for _, c in wakeups], '.1f')} us of CPU on one side "
                     f"(bridge.bench.timing.wakeup_cost_us)")
    settled = result.machine.get("settled")
    if settled:
        lines.append(f"before each measurement the peers and the broker went quiet: "
                     f"{settled['seconds']:.1f} s of waiting in all, {settled['longest']:.2f} s "
                     f"at most, {settled['timeouts']:g} waits ran out")
    return "\n".join(lines)


# -- processes --------------------------------------------------------------------------------

def bridge_config(amqp_url: str, shutter_port: int, face_port: int,
                  our_port: int | None = None) -> str:
    """The TOML configuration of the bridge under test."""
    text = (f'name = "benchbridge"\n\n[amqp]\nurl = "{amqp_url}"\n\n'
            f'[actors.{SHUTTER}]\nlives = "legacy"\nport = {shutter_port}\n\n'
            f'[actors.{CAMERA}]\nlives = "amqp"\nlegacy_port = {face_port}\n')
    if our_port is not None:
        text += f'\n[actors.{OUR_SHUTTER}]\nlives = "legacy"\nport = {our_port}\n'
    return text


@dataclass
class Peers:
    """Where the benchmark reaches each actor, the clu client worker and the raw consumer."""

    client: Program
    raw: Program  # the plain aio-pika consumer of the raw streams (its own process)
    ports: dict[str, int]  # legacy path key -> TCP port
    programs: dict[str, Program]  # every program started, by name
    #: The processes of every program, by name: the peers, the bridge, the broker's
    #: under ``broker`` and this process under ``bench`` (nothing is restarted during a
    #: benchmark). Each round trip's CPU is charged to them (:attr:`Row.cpu_by_process`).
    processes: dict[str, list[int]] = field(default_factory=dict)
    #: Seconds spent in :meth:`settle` so far, the longest wait, and the waits that
    #: ran out (the measurement started anyway).
    settled: dict[str, float] = field(default_factory=lambda: {
        "seconds": 0.0, "longest": 0.0, "timeouts": 0})

    #: Whether the clu hearers (:data:`HEARERS`) are paused during every raw stream.
    pause_hearers: bool = True

    @contextmanager
    def hearers_paused(self, actor: str | None = None) -> Iterator[None]:
        """clu's AMQPActor and clu's client stopped (SIGSTOP) for the block, continued
        (SIGCONT) after it, also on an error or Ctrl-C; ``actor``, the program that
        answers the command of the block, is never stopped. Both hear every reply on
        the exchange; the broker still queues each reply for them while they are
        stopped, and they work through their queues once continued (the next
        measurement waits for that, :meth:`settle`). Nothing if :attr:`pause_hearers`
        is off."""
        pids = [self.programs[name].pid for name in HEARERS
                if name in self.programs and name != actor] if self.pause_hearers else []
        stopped: list[int] = []
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    @property
    def pids(self) -> list[int]:
        """The processes every measurement depends on: those of :attr:`processes` but
        this one."""
        me = os.getpid()
        return [pid for pids in self.processes.values() for pid in pids if pid != me]

    def settle(self) -> None:
        """Wait until the machine is quiet again (:func:`~bridge.bench.programs.settle`):
        a fast stream leaves every clu client (they all hear every reply) with a queue
        to work through for up to a second after it, on the same CPUs the next
        measurement needs."""
        waited, quiet = settle(self.pids)
        self.settled["seconds"] += waited
        self.settled["longest"] = max(self.settled["longest"], waited)
        self.settled["timeouts"] += not quiet


@contextmanager
def running_peers(state: Path, ours: bool, say: Callable[[str], Any]) -> Iterator[Peers]:
    """Start broker, actors, bridge and clu client; stop them all on exit."""
    if importlib.util.find_spec("clu") is None:
        from .peers._common import CLU_MISSING

        raise BenchError(CLU_MISSING)
    from ..service.broker import free_port, node_pids

    env = child_environment(state)
    with ExitStack() as stack:
        broker = private_broker(stack, "relaybench", say)
        url = broker.url
        say("starting the clu actors")
        shutter_port, face_port = free_port(), free_port()
        our_port = free_port() if ours else None
        actors = [
            Program(RAW_ACTOR, python_module("bridge.bench.peers.aiopika_actor", "--url",
                                              url, "--name", RAW_ACTOR), state, env=env),
            Program(CAMERA, python_module("bridge.bench.peers.clu_camera", "--url", url,
                                           "--name", CAMERA), state, env=env),
            Program(SHUTTER, python_module("bridge.bench.peers.clu_shutter", "--port",
                                            str(shutter_port), "--name", SHUTTER),
                    state, env=env),
        ]
        if our_port is not None:
            actors.append(Program(OUR_SHUTTER, python_module(
                "bridge.bench.peers.our_shutter", "--port", str(our_port), "--name",
                OUR_SHUTTER), state, env=env))
        for program in actors:  # started together, waited for in turn
            program.start()
            stack.callback(program.stop)
        for program in actors:
            program.wait_ready()
        say("starting the bridge")
        config = state / "bridge.toml"
        config.write_text(bridge_config(url, shutter_port, face_port, our_port))
        ready = state / "bridge.ready"
        bridge = Program("bridge", python_module(
            "bridge.cli.main", "serve", "--config", str(config), "--ready-file", str(ready)),
            state, env=env)
        bridge.start()
        stack.callback(bridge.stop)
        client = Program("clu-client", python_module("bridge.bench.peers.clu_client", "--url",
                                                      url, "--name", CLIENT),
                         state, pipe=True, env=env)
        client.start()
        stack.callback(client.stop)
        raw = Program("raw-client", python_module("bridge.bench.peers.raw_client", "--url",
                                                   url, "--name", f"{CLIENT}_raw"),
                      state, pipe=True, env=env)
        raw.start()
        stack.callback(raw.stop)
        bridge.wait_ready(ready_file=ready)
        client.wait_ready()
        raw.wait_ready()
        ports = {"c": face_port, "d": shutter_port}
        if our_port is not None:
            ports["d-ours"] = our_port
        programs = [*actors, bridge, client, raw]
        processes = {p.name: [p.popen.pid] for p in programs if p.popen is not None}
        processes.update(broker=node_pids(broker.node), bench=[os.getpid()])
        peers = Peers(client, raw, ports, {p.name: p for p in programs}, processes)
        _wait_until_relayed(peers, ours)
        yield peers


def _wait_until_relayed(peers: Peers, ours: bool, timeout: float = 30.0) -> None:
    """Until the bridge has connected to the legacy actors, ``ping`` through it fails."""
    deadline = time.monotonic() + timeout
    for path in ("b", "b-ours") if ours else ("b",):
        while True:
            try:
                peers.client.request({"op": "round_trips", "actor": PATHS[path][2], "n": 1})
                break
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


# -- the legacy socket client -----------------------------------------------------------------

class LineClient:
    """A blocking legacy client (TCP_NODELAY): ``<mid> <text>`` out, ``<cid> <mid> <code>`` in."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.mid = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, text: str, keep: list[bytes] | None = None) -> int:
        """Send ``text`` with a new mid; read to its terminal reply; return how many
        replies it had (appended to ``keep`` if given). Lines of other mids (the
        greeting, broadcasts) are skipped."""
        self.mid += 1
        mid = b"%d" % self.mid
        self.sock.sendall(mid + b" " + text.encode() + b"\n")
        replies = 0
        while True:
            chunk = self.sock.recv(1 << 18)
            if not chunk:
                raise BenchError("the actor closed the connection")
            lines = (self.buffer + chunk).split(b"\n")
            self.buffer = lines.pop()
            for line in lines:
                parts = line.split(b" ", 3)
                if len(parts) < 3 or parts[1] != mid:
                    continue
                replies += 1
                if keep is not None:
                    keep.append(line)
                code = parts[2][:1]
                if code and code[0] in TERMINAL:
                    if code != b":":
                        raise BenchError(f"{text!r} failed: {line.decode(errors='replace')}")
                    return replies


def legacy_round_trips(port: int, n: int) -> list[float]:
    """``n`` sequential ``ping`` on a new connection; each round trip in ms."""
    samples = []
    with LineClient(port) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            client.command("ping")
            samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def legacy_stream(port: int, n: int) -> tuple[int, float]:
    """One ``spam n`` on a new connection: (replies, seconds from send to ``:``).
    Raises :class:`BenchError` unless ``spam_index`` 0 to n-1 arrived in order."""
    lines: list[bytes] = []
    with LineClient(port) as client:
        client.command("ping")  # connected and greeted: not part of the timing
        t0 = time.perf_counter()
        replies = client.command(f"spam {n}", lines)
        seconds = time.perf_counter() - t0
    indexes = [int(m.group(1)) for m in map(_SPAM_INDEX.search, lines) if m]
    if indexes != list(range(n)):
        raise BenchError(f"spam {n}: replies out of order or missing ({len(indexes)} seen)")
    return replies, seconds


# -- measuring --------------------------------------------------------------------------------

def _round_trips(peers: Peers, path: str, n: int) -> list[float]:
    _, kind, actor = PATHS[path]
    if kind == "amqp":
        return peers.client.request({"op": "round_trips", "actor": actor, "n": n})["samples_ms"]
    return legacy_round_trips(peers.ports[path], n)


def metrics_of(path: str) -> tuple[str, ...]:
    """What is measured on ``path`` (the raw AMQP stream only where the client is AMQP)."""
    if path in ONLY_METRICS:
        return ONLY_METRICS[path]
    return (ROUND_TRIP, STREAM, RAW_STREAM) if PATHS[path][1] == "amqp" else (ROUND_TRIP, STREAM)


def _publish_only(peers: Peers, path: str, n: int, metric: str = PUBLISH_ONLY) -> float:
    """Messages/s the aio-pika actor publishes alone into a queue nobody reads."""
    verb = "publish_only_aiopika" if metric == PUBLISH_AIOPIKA else PUBLISH_VERB[path]
    answer = peers.client.request({"op": "command", "actor": PATHS[path][2],
                                   "text": f"{verb} {n}"})
    return float(answer["body"]["per_second"])


def _stream(peers: Peers, path: str, n: int, raw: bool = False) -> tuple[int, float]:
    """(replies, seconds) of one ``spam n`` (``blast n`` on the ceiling path)."""
    _, kind, actor = PATHS[path]
    if kind == "amqp":
        if not raw:
            answer = peers.client.request({"op": "stream", "actor": actor, "n": n})
        else:
            with peers.hearers_paused(actor):
                answer = peers.raw.request({"op": "stream", "actor": actor, "n": n,
                                            "verb": STREAM_VERB.get(path, "spam")})
        return int(answer["replies"]), float(answer["seconds"])
    return legacy_stream(peers.ports[path], n)


class _CpuReading:
    """One process's CPU time from now on (:meth:`seconds`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.threads = threads_cpu_ns(pid)
        self.start = process_cpu_seconds(pid)

    def seconds(self) -> float | None:
        """Seconds of the process's CPU since this object was made: the scheduler's
        nanosecond count of each thread, or ``/proc/PID/stat``'s clock ticks (10 ms: 33 us
        per command over 300) when a thread ended in between; None if unknown."""
        seconds = cpu_seconds_between(self.threads, threads_cpu_ns(self.pid))
        if seconds is None:
            end = process_cpu_seconds(self.pid)
            if self.start is None or end is None:
                return None
            seconds = end - self.start
        return seconds


class _BridgeCpu:
    """The bridge's CPU time over one measurement."""

    def __init__(self, peers: Peers) -> None:
        popen = peers.programs["bridge"].popen
        self.reading = _CpuReading(popen.pid) if popen is not None and popen.pid else None

    def seconds(self) -> float | None:
        """Seconds of bridge CPU since this object was made (:class:`_CpuReading`)."""
        return self.reading.seconds() if self.reading is not None else None

    def per(self, operations: int) -> float | None:
        """Microseconds of bridge CPU per operation since this object was made."""
        return _per_operation(self.seconds(), operations)


class _ProgramsCpu:
    """The CPU time of every program of :attr:`Peers.processes` over one measurement."""

    def __init__(self, peers: Peers) -> None:
        # This process reads the others' /proc files (a few ms with the broker's many
        # threads): its own reading is taken after theirs here and before theirs in
        # seconds(), so that the reading is not charged to it.
        me = os.getpid()
        order = sorted(((name, pid) for name, pids in peers.processes.items() for pid in pids),
                       key=lambda np: np[1] == me)
        self.readings = [(name, _CpuReading(pid)) for name, pid in order]

    def seconds(self) -> dict[str, float | None]:
        """Seconds of CPU of each program since this object was made (its processes
        together; None if unknown for any of them)."""
        out: dict[str, float | None] = {}
        for name, reading in reversed(self.readings):
            out[name] = _sum_known(out.get(name, 0.0), reading.seconds())
        return out


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        info["loadavg"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    return info


def _blocks(count: int, blocks: int) -> list[int]:
    """``count`` split into ``blocks`` nearly equal parts (none empty)."""
    blocks = max(1, min(blocks, count))
    return [count // blocks + (i < count % blocks) for i in range(blocks)]


def _in_turn(peers: Peers, paths: Sequence[str], rounds: Sequence[T],
             measure: Callable[[str, T], R], by_program: dict[str, dict[str, float | None]]
             | None = None) -> tuple[dict[str, list[R]], dict[str, float | None]]:
    """``measure(path, round)`` for each of ``rounds``, every path in turn within a
    round (a, b, c, ..., a, b, c, ...), each measurement starting on a quiet machine:
    a slow second of the machine then falls on one measurement of every path rather
    than on one path's whole run. Returns each path's results, in order, and the
    bridge's CPU seconds over all of them (None if unknown for any). With
    ``by_program`` (a dict to fill), also each program's CPU seconds over each path's
    measurements: ``by_program[path][program]`` (:class:`_ProgramsCpu`)."""
    results: dict[str, list[R]] = {path: [] for path in paths}
    cpu_seconds: dict[str, float | None] = dict.fromkeys(paths, 0.0)
    for one in rounds:
        for path in paths:
            peers.settle()
            cpu = _BridgeCpu(peers)
            programs = _ProgramsCpu(peers) if by_program is not None else None
            results[path].append(measure(path, one))
            if programs is not None and by_program is not None:
                sums = by_program.setdefault(path, {})
                for name, seconds in programs.seconds().items():
                    sums[name] = _sum_known(sums.get(name, 0.0), seconds)
            cpu_seconds[path] = _sum_known(cpu_seconds[path], cpu.seconds())
    return results, cpu_seconds


def _sum_known(total: float | None, more: float | None) -> float | None:
    """``total + more``, or None once either is unknown (a CPU reading that failed)."""
    return None if total is None or more is None else total + more


def _per_operation(seconds: float | None, operations: int) -> float | None:
    """Microseconds of bridge CPU per operation (None if unknown or nothing done)."""
    return None if seconds is None or operations <= 0 else seconds / operations * 1e6


def _measure_round_trips(peers: Peers, order: Sequence[str], count: int,
                         rows: dict[tuple[str, str], Row] | None, blocks: int) -> None:
    """One run of round trips: ``count`` per path in ``order``, in ``blocks`` blocks
    taken in turn (:func:`_in_turn`); each path's median and bridge CPU over all its
    blocks are recorded in ``rows`` (None: a warm-up)."""
    by_program: dict[str, dict[str, float | None]] = {}
    blocks_of, cpu_seconds = _in_turn(peers, order, _blocks(count, blocks),
                                      lambda path, size: _round_trips(peers, path, size),
                                      by_program)
    if rows is None:
        return
    for path in order:
        samples = [ms for block in blocks_of[path] for ms in block]
        row = rows[path, ROUND_TRIP]
        _record(row, statistics.median(samples),
                _per_operation(cpu_seconds[path], len(samples)), samples)
        for name, seconds in by_program.get(path, {}).items():
            per = _per_operation(seconds, len(samples))
            if per is not None:
                row.cpu_by_process.setdefault(name, []).append(per)


def _measure_streams(peers: Peers, paths: Sequence[str], metric: str, n: int,
                     rows: dict[tuple[str, str], Row] | None, repeats: int) -> None:
    """One run's streams of ``metric`` (``spam n``): every path in ``paths``
    ``repeats`` times, taken in turn (:func:`_in_turn`). A path's value for the run is
    the median of its rates; its bridge CPU per reply is over all its streams. Nothing
    is recorded with ``rows`` None (a warm-up)."""
    streams_of, cpu_seconds = _in_turn(
        peers, paths, range(repeats),
        lambda path, _: _stream(peers, path, n, raw=metric == RAW_STREAM))
    if rows is None:
        return
    for path in paths:
        streams = streams_of[path]
        rates = [replies / seconds for replies, seconds in streams]
        _record(rows[path, metric], statistics.median(rates),
                _per_operation(cpu_seconds[path], sum(replies for replies, _ in streams)),
                rates)


def run_relay_benchmark(runs: int = 5, count: int = 300, stream: int = 1000,
                        ours: bool = False,
                        progress: Callable[[str], Any] | None = None,
                        log_dir: str | os.PathLike[str] | None = None,
                        blocks: int = ROUND_TRIP_BLOCKS,
                        streams: int = STREAMS_PER_RUN,
                        pause_hearers: bool = True) -> RelayResult:
    """Start every peer, measure every path ``runs`` times, stop everything.

    ``count``: round trips per run and path, in ``blocks`` interleaved blocks;
    ``stream``: replies of each ``spam``, ``streams`` of them per run and path.
    ``ours`` adds the paths through our own LegacyActor. ``pause_hearers``: clu's
    hearers are stopped during the raw streams (:meth:`Peers.hearers_paused`). The peers' logs go to
    ``log_dir`` (kept), else to a temporary directory (removed). Raises
    :class:`BenchError` if a prerequisite is missing or a peer fails.
    """
    if runs < 1 or count < 1 or stream < 1 or blocks < 1 or streams < 1:
        raise ValueError("runs, count, stream, blocks and streams must be at least 1")
    say = progress or (lambda _msg: None)
    paths = [p for p in PATHS if ours or not p.endswith("-ours")]
    rows = {(p, m): Row(p, m, UNITS[m]) for m in METRICS for p in paths if m in metrics_of(p)}
    machine = machine_info()
    with _sigterm_as_interrupt(), state_dir(log_dir, "bench-relay-") as state, \
            running_peers(state, ours, say) as peers:
        peers.pause_hearers = pause_hearers
        speeds: list[float] = []
        wakeups: list[list[float]] = []
        for run in range(-1, runs):  # run -1: warm-up, not counted
            say("warm-up" if run < 0 else f"run {run + 1}/{runs}")
            if run >= 0:
                peers.settle()
                speeds.append(round(python_speed_ms(), 1))
                wakeups.append([round(us, 1) for us in wakeup_cost_us()])
            order = paths[run % len(paths):] + paths[:run % len(paths)] if run >= 0 else paths
            _measure_round_trips(peers, [p for p in order if (p, ROUND_TRIP) in rows],
                                 count if run >= 0 else min(count, 20),
                                 rows if run >= 0 else None, blocks)
            for metric in (STREAM, RAW_STREAM):
                _measure_streams(peers, [p for p in order if (p, metric) in rows], metric,
                                 stream if run >= 0 else min(stream, 200),
                                 rows if run >= 0 else None, streams if run >= 0 else 1)
            for metric in (PUBLISH_ONLY, PUBLISH_AIOPIKA):
                for path in order:
                    if (path, metric) in rows:
                        peers.settle()
                        cpu = _BridgeCpu(peers)
                        n = stream if run >= 0 else min(stream, 200)
                        rate = _publish_only(peers, path, n, metric)
                        if run >= 0:
                            _record(rows[path, metric], rate, cpu.per(n))
        machine["settled"] = {k: round(v, 2) for k, v in peers.settled.items()}
        machine["python_loop_ms"] = speeds
        machine["wakeup_us"] = wakeups
    settings = {"runs": runs, "count": count, "stream": stream, "ours": ours,
                "blocks": blocks, "streams": streams, "hearers_paused": pause_hearers}
    return RelayResult(list(rows.values()), settings, machine)


def _record(row: Row, value: float, cpu: float | None, samples: Sequence[float] = ()) -> None:
    row.runs.append(value)
    row.samples.extend(samples)
    if cpu is not None:
        row.bridge_cpu.append(cpu)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the benchmark like Ctrl-C does (peers are stopped on the way out)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bridge.bench.relay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


def add_arguments(ap: Any) -> None:
    """The command-line options of the relay benchmark (shared with ``bridge bench relay``)."""
    ap.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    ap.add_argument("--count", type=int, default=300,
                    help="round trips per run and path (default 300)")
    ap.add_argument("--blocks", type=int, default=ROUND_TRIP_BLOCKS,
                    help="blocks each run's round trips are interleaved in "
                         f"(default {ROUND_TRIP_BLOCKS})")
    ap.add_argument("--stream", type=int, default=1000,
                    help="replies of each `spam N` (default 1000)")
    ap.add_argument("--streams", type=int, default=STREAMS_PER_RUN,
                    help="streams of each path per run, interleaved path by path; the "
                         f"run's value is their median (default {STREAMS_PER_RUN})")
    ap.add_argument("--busy-hearers", action="store_true",
                    help="keep clu's AMQPActor and clu's client (they hear every reply) "
                         "running during the raw streams; by default they are paused")
    ap.add_argument("--ours", action="store_true",
                    help="also measure through our own LegacyActor")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--logs", default=None, metavar="DIR",
                    help="keep the peers' and the bridge's logs in DIR")


def run_cli(args: Any, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    try:
        result = run_relay_benchmark(args.runs, args.count, args.stream, args.ours,
                                     lambda msg: print(msg, file=sys.stderr, flush=True),
                                     args.logs, args.blocks, args.streams,
                                     not args.busy_hearers)
    except BenchError as exc:
        print(f"bridge bench relay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_dict()) if args.json else format_relay(result), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

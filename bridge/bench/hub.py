"""Our hub port side by side with the real Tron hub: commander -> hub -> legacy actor.

Both hubs run as subprocesses in front of the same legacy actor process; blocking
commander sockets (TCP_NODELAY) measure each in turn, run by run interleaved so that
machine noise hits both alike:

* ``round trip``: ``ping`` answered, one at a time, plain socket (no TCP_QUICKACK: what
  most clients do; Tron stalls ~40 ms per command there for lack of TCP_NODELAY);
  median of each run, in ms;
* ``round trip, quickack``: the same with TCP_QUICKACK re-armed after every read;
* ``pipelined``: N ``ping`` lines written at once, until N terminal replies (cmds/s);
* ``relayed replies``: one ``spam N`` (N ``i`` lines and a ``:``), send to ``:`` (replies/s).

The two throughput metrics use the quick-ACK commander: Tron's best case, so that the
comparison is not won by Tron's Nagle stalls alone.

The actor is either ``fast`` (a minimal stdlib legacy actor defined here, so that the
hubs and not the actor are measured) or ``clu`` (the clu LegacyActor of ``tests/peers``).
The real Tron hub comes from ``tests/support/tron_hub.py`` (sdss-tron must be installed).

``python -m bridge.bench.hub actor --port P`` and ``... serve --port P --actor NAME=HOST:PORT``
are the subprocess entry points; ``python -m bridge.bench.hub run`` prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ..service.broker import free_port
from .timing import Rate

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
ACTOR = "benchactor"
CID = "bench.client"
TERMINAL = frozenset(b":fF!")


# -- the fast legacy actor --------------------------------------------------------------------

_COMMAND = re.compile(rb"\s*(?:[A-Za-z_][\w.]*\s+)?(\d+)\s+(\S+)\s*(.*)")


class _FastActorProtocol(asyncio.Protocol):
    users: dict[int, "_FastActorProtocol"] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.uid = max(self.users, default=0) + 1
        self.users[self.uid] = self
        self.buffer = b""
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(b"%d 0 i yourUserID=%d; num_users=%d\n"
                        % (self.uid, self.uid, len(self.users)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.users.pop(self.uid, None)

    def data_received(self, data: bytes) -> None:
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        out = []
        for line in lines:
            m = _COMMAND.match(line.rstrip(b"\r"))
            if m is None:
                continue
            mid, verb, rest = m.groups()
            head = b"%d %s " % (self.uid, mid)
            if verb == b"ping":
                out.append(head + b": text=Pong.\n")
            elif verb == b"spam":
                n = int(rest or b"0")
                out.extend(head + b"i spam_index=%d\n" % k for k in range(n))
                out.append(head + b": spam_count=%d\n" % n)
            elif verb in (b"status", b"version"):
                out.append(head + b": version=\"1.0\"\n")
            else:
                out.append(head + b"f error=\"unknown command\"\n")
        if out:
            self.transport.write(b"".join(out))


async def _serve_actor(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_FastActorProtocol, LOOPBACK, port)
    print(f"READY fastactor {LOOPBACK}:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


# -- our hub as a subprocess ------------------------------------------------------------------

def _serve_hub(port: int, actors: dict[str, tuple[str, int]]) -> None:
    from ..runtime import as_deferred, install_asyncio_reactor

    loop = install_asyncio_reactor()
    logging_off()

    async def main() -> None:
        from ..core import Route, Router, RoutingTable
        from ..hub import HubServer
        from ..legacy.actor_link import ActorLink

        def link(route: Route) -> ActorLink:
            return ActorLink(route.actor, route.host or LOOPBACK, route.port or 0, max_delay=0.5)

        router = Router({"legacy": link}, RoutingTable(
            Route(name, "legacy", host, p) for name, (host, p) in actors.items()))
        await router.start()
        hub = HubServer(router, port=port)
        await hub.start()
        for name in actors:
            await router.target(name).start(wait=True, timeout=30)
        print(f"READY hub {LOOPBACK}:{hub.port}", flush=True)

    as_deferred(main())
    from twisted.internet import reactor

    reactor.run()  # type: ignore[attr-defined]
    loop.close()


def logging_off() -> None:
    import logging

    logging.disable(logging.WARNING)


# -- the commander ----------------------------------------------------------------------------

class Commander:
    """A blocking commander socket with TCP_NODELAY.

    Without ``quickack`` it is a plain client (delayed ACKs: Tron, which does not set
    TCP_NODELAY, then stalls ~40 ms per exchange); with it, TCP_QUICKACK is re-armed
    after every read, which is Tron's best case.
    """

    def __init__(self, port: int, cid: str = CID, quickack: bool = False) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.quickack = quickack and hasattr(socket, "TCP_QUICKACK")
        self.cid = cid.encode()
        self.buffer = b""
        self.mid = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, actor: str, text: str) -> int:
        self.mid += 1
        self.sock.sendall(b"%s %d %s %s\n" % (self.cid, self.mid, actor.encode(), text.encode()))
        return self.mid

    def lines(self) -> Iterator[bytes]:
        """Every line received from now on (blocking)."""
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("hub closed the connection")
            if self.quickack:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            lines = (self.buffer + chunk).split(b"\n")
            self.buffer = lines.pop()
            yield from lines

    def wait_terminal(self, count: int, mid: int | None = None) -> int:
        """Read until ``count`` terminal lines of ours (of ``mid`` only, if given); return
        how many lines of ours arrived on the way."""
        prefix = self.cid + b" " + (b"%d " % mid if mid is not None else b"")
        ours = 0
        for line in self.lines():
            if line.startswith(prefix):
                ours += 1
                parts = line.split(b" ", 4)
                if len(parts) > 3 and parts[3][:1] and parts[3][0] in TERMINAL:
                    if parts[3] != b":":
                        raise RuntimeError(f"command failed: {line!r}")
                    count -= 1
                    if count == 0:
                        return ours
        return ours

    def drain(self, quiet: float = 0.2) -> None:
        self.sock.settimeout(quiet)
        try:
            while self.sock.recv(1 << 20):
                pass
        except (socket.timeout, TimeoutError):
            pass
        finally:
            self.sock.settimeout(30)
            self.buffer = b""


def round_trip_ms(cmdr: Commander, n: int) -> float:
    """Median ``ping`` round trip over ``n`` sequential commands, in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        cmdr.wait_terminal(1, cmdr.send(ACTOR, "ping"))
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def pipelined_rate(cmdr: Commander, n: int) -> float:
    """``n`` pings written at once (from a thread); commands per second until the last ``:``."""
    first = cmdr.mid + 1
    cmdr.mid += n
    blob = b"".join(b"%s %d %s ping\n" % (cmdr.cid, first + k, ACTOR.encode()) for k in range(n))
    t0 = time.perf_counter()
    writer = threading.Thread(target=cmdr.sock.sendall, args=(blob,))
    writer.start()
    cmdr.wait_terminal(n)
    elapsed = time.perf_counter() - t0
    writer.join()
    return n / elapsed


def spam_rate(cmdr: Commander, n: int) -> float:
    """One ``spam n``: relayed replies per second from sending to the ``:``."""
    t0 = time.perf_counter()
    ours = cmdr.wait_terminal(1, cmdr.send(ACTOR, f"spam {n}"))
    elapsed = time.perf_counter() - t0
    if ours < n + 1:
        raise RuntimeError(f"spam {n}: only {ours} replies")
    return ours / elapsed


# -- peers ------------------------------------------------------------------------------------

def _managed(argv: list[str], name: str, log_dir: Path) -> Any:
    sys.path.insert(0, str(REPO))
    from tests.support.processes import ManagedProcess

    return ManagedProcess(argv, name=name, log_dir=log_dir, cwd=REPO)


@contextmanager
def _peers(actor_kind: str, include_tron: bool, state: Path) -> Iterator[dict[str, int]]:
    """Start the actor, our hub and (optionally) Tron; yield {hub name: commander port}."""
    with ExitStack() as stack:
        actor_port = free_port()
        if actor_kind == "fast":
            argv = [sys.executable, "-m", "bridge.bench.hub", "actor", "--port", str(actor_port)]
        else:
            argv = [sys.executable, str(REPO / "tests/peers/clu_legacy_shutter.py"),
                    "--name", ACTOR, "--port", str(actor_port)]
        actor = _managed(argv, f"actor-{actor_kind}", state)
        actor.start()
        stack.callback(actor.stop)
        ports: dict[str, int] = {}
        if include_tron:
            from tests.support.tron_hub import TronHub

            tron = TronHub(state / "tron")
            tron.add_actor(ACTOR, LOOPBACK, actor_port, init_cmds=())
            tron.start()
            stack.callback(tron.stop)
            tron.start_nubs(ACTOR)
            ports["tron"] = tron.port
        ours_port = free_port()
        ours = _managed([sys.executable, "-m", "bridge.bench.hub", "serve", "--port",
                         str(ours_port), "--actor", f"{ACTOR}={LOOPBACK}:{actor_port}"],
                        "bridge-hub", state)
        ours.start()
        stack.callback(ours.stop)
        ports["bridge"] = ours_port
        yield ports


def run_hub_benchmark(runs: int = 5, round_trips: int = 100, pipelined: int = 1000,
                      spam: int = 1000, actor: str = "fast", include_tron: bool = True,
                      progress: Callable[[str], Any] | None = None) -> list[Rate]:
    """Measure our hub (and the real Tron hub) in one run; return one :class:`Rate` per
    (hub, metric), Tron's first. Round trips are in ms (lower is better), the rest per s.
    """
    if actor not in ("fast", "clu"):
        raise ValueError("actor must be 'fast' or 'clu'")
    say = progress or (lambda _msg: None)
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp, \
            _peers(actor, include_tron, Path(tmp)) as ports:
        # One commander connected at a time: every hub sends every line to every
        # commander, so an idle second connection would double the hub's output work.
        metrics = (("round trip", False, round_trip_ms, round_trips),
                   ("round trip, quickack", True, round_trip_ms, round_trips),
                   ("pipelined", True, pipelined_rate, pipelined),
                   ("relayed replies", True, spam_rate, spam))
        serial = iter(range(1, 1 << 30))
        for run in range(-1, runs):  # run -1: warm-up, not counted
            for name, port in ports.items():
                if run >= 0:
                    say(f"run {run + 1}/{runs}: {name}")
                for quickack in (False, True):
                    cmdr = Commander(port, f"{CID}{next(serial)}", quickack=quickack)
                    try:
                        for metric, quick, fn, n in metrics:
                            if quick != quickack:
                                continue
                            value = fn(cmdr, n if run >= 0 else min(n, 50))
                            if run >= 0:
                                results.setdefault((name, metric), []).append(value)
                            cmdr.drain(0.02)
                    finally:
                        cmdr.close()
    units = {"round trip": "ms", "round trip, quickack": "ms", "pipelined": "cmd/s",
             "relayed replies": "replies/s"}
    return [Rate(f"{name} {metric} ({actor} actor)", units[metric], values)
            for (name, metric), values in results.items()]


def format_results(rates: list[Rate]) -> str:
    """A table of medians with ours/Tron ratios (Tron's round trip / ours for ms)."""
    by_name = {r.name: r for r in rates}
    lines = [f"{'hub / metric':<48} {'unit':>9} {'median':>10} {'min':>10} {'max':>10}  vs tron"]
    for r in rates:
        ratio = ""
        if r.name.startswith("bridge "):
            tron = by_name.get("tron " + r.name[len("bridge "):])
            if tron is not None:
                x = tron.median / r.median if r.unit == "ms" else r.median / tron.median
                ratio = f"{x:6.1f}x"
        lines.append(f"{r.name:<48} {r.unit:>9} {r.median:>10,.2f} {min(r.runs):>10,.2f} "
                     f"{max(r.runs):>10,.2f}  {ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bridge.bench.hub", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("actor", help="run the fast legacy actor")
    a.add_argument("--port", type=int, default=0)
    s = sub.add_parser("serve", help="run our hub in front of legacy actors")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--actor", action="append", default=[], metavar="NAME=HOST:PORT")
    r = sub.add_parser("run", help="measure and print a table")
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--round-trips", type=int, default=100)
    r.add_argument("--pipelined", type=int, default=1000)
    r.add_argument("--spam", type=int, default=1000)
    r.add_argument("--actor", choices=("fast", "clu"), default="fast")
    r.add_argument("--no-tron", action="store_true")
    args = ap.parse_args(argv)
    if args.what == "actor":
        asyncio.run(_serve_actor(args.port))
    elif args.what == "serve":
        actors = {}
        for spec in args.actor:
            name, _, where = spec.partition("=")
            host, _, port = where.rpartition(":")
            actors[name] = (host or LOOPBACK, int(port))
        _serve_hub(args.port, actors)
    else:
        rates = run_hub_benchmark(args.runs, args.round_trips, args.pipelined, args.spam,
                                  args.actor, not args.no_tron,
                                  lambda msg: print(msg, file=sys.stderr))
        print(format_results(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Paired measurements of two relay paths, taken in turn (issue 14's tenth to twelfth
passes).

    cd /tmp && PYTHONPATH=/work/main flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_pairs.py stream 16
    cd /tmp && PYTHONPATH=/work/main flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_pairs.py legacy-floor 6
    cd /tmp && PYTHONPATH=/work/main flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_pairs.py hearers 12

``stream REPS``: REPS pairs of ``spam 1000`` raw streams, the floor (e) and the bridge
with our LegacyActor (b-ours), in alternating order; prints the median of each path and
of the pair ratios (the benchmark takes three streams a run, this takes many, to see
where the ratio centres). clu's hearers are paused during each stream, as in the
benchmark; ``--busy-hearers`` keeps them running.

``hearers REPS``: REPS pairs of the same raw streams, each printed with the CPU time
every peer used during it (the scheduler's count, ``/proc/PID/task/*/schedstat``):
every clu client hears every reply, so clu's AMQPActor (``camera``) and clu's client
work through all of a stream's replies, during the stream or after it (here they are
never paused); how much of that work falls during the stream, taking CPU from the
broker and the raw consumer, is what sets a stream's rate on two CPUs (each stream also
prints the hearers' CPU until the machine is quiet again: their whole work). Prints the
rate against the hearers' CPU, each path's own publishing cost (the floor actor alone,
or the bridge and our LegacyActor together) and the pair ratios, as ``stream`` does.

``legacy-floor REPS``: the bridge configured to also give the floor actor (``rawactor``)
a legacy port, so that a raw legacy socket -> bridge -> minimal aio-pika actor, "(c-e)",
can be set beside clu's client -> the same actor, (e), as (c) is set beside (a): REPS
rounds of 200 round trips of (a), (c), (e), (c-e). Separates what the bridge's legacy
face costs against clu's client from what clu's AMQPActor adds in each path.

The peers and the bridge are started by ``bridge.bench.relay.running_peers`` from the
``bridge`` package on ``PYTHONPATH``; run it from a directory without a ``bridge``
package (e.g. ``cd /tmp``). A measurement aid, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge.bench import relay
from bridge.service.broker import free_port


def _ratios(num: list[float], den: list[float]) -> list[float]:
    return [n / d for n, d in zip(num, den)]


#: The two paths whose raw streams are paired: the floor and the bridge with our actor.
PAIR = ("e", "b-ours")


@contextmanager
def _running_peers(pause_hearers: bool = True) -> Iterator[relay.Peers]:
    """The relay benchmark's peers and bridge, in a temporary state directory; clu's
    hearers paused during raw streams as in the benchmark unless ``pause_hearers`` is off."""
    with tempfile.TemporaryDirectory(prefix="relay-pairs-") as state, \
            relay.running_peers(Path(state), True, lambda _m: None) as peers:
        peers.pause_hearers = pause_hearers
        yield peers


def _pairs_in_turn(peers: relay.Peers, reps: int) -> Iterator[str]:
    """Warm both paths of :data:`PAIR` up, then yield the path to stream next: REPS
    pairs, the order alternating, each once the machine is quiet again."""
    for path in PAIR:
        relay._stream(peers, path, 200, raw=True)  # warm-up
    for i in range(reps):
        for path in PAIR if i % 2 == 0 else PAIR[::-1]:
            peers.settle()
            yield path


def stream_pairs(reps: int, n: int = 1000, pause_hearers: bool = True) -> None:
    with _running_peers(pause_hearers) as peers:
        rates: dict[str, list[float]] = {path: [] for path in PAIR}
        for path in _pairs_in_turn(peers, reps):
            replies, seconds = relay._stream(peers, path, n, raw=True)
            rates[path].append(replies / seconds)
    e, ours = statistics.median(rates["e"]), statistics.median(rates["b-ours"])
    pairs = _ratios(rates["b-ours"], rates["e"])
    print(f"(e) {e:,.0f}/s, (b-ours) {ours:,.0f}/s: {ours / e:.1%} of the floor "
          f"(median pair ratio {statistics.median(pairs):.1%}, pairs "
          f"{min(pairs):.0%}-{max(pairs):.0%}, {reps} pairs of spam {n}; clu's hearers "
          f"{'paused' if pause_hearers else 'running'})")


#: The peers whose CPU ``hearers`` reports, by program name: the two clu hearers, and
#: what publishes the replies on each path.
HEARERS = relay.HEARERS
PUBLISHERS = {"e": ("rawactor",), "b-ours": ("bridge", "ourshutter")}


def hearers(reps: int, n: int = 1000, pause_hearers: bool = False) -> None:
    with _running_peers(pause_hearers) as peers:
        rows: list[tuple[str, float, float, float, float]] = []  # path, rate, hearers ms
        # during the stream, publishers' ms, hearers' ms until the machine is quiet again
        for path in _pairs_in_turn(peers, reps):
            cpu = relay._ProgramsCpu(peers)  # each program's CPU (the broker's node: all)
            replies, seconds = relay._stream(peers, path, n, raw=True)
            used = {name: (s or 0.0) * 1e3 for name, s in cpu.seconds().items()}
            peers.settle()  # the hearers work through the rest of their queues
            quiet = cpu.seconds()
            in_all = sum((quiet[h] or 0.0) * 1e3 for h in HEARERS)
            rows.append((path, replies / seconds, sum(used[h] for h in HEARERS),
                         sum(used[p] for p in PUBLISHERS[path]), in_all))
            each = ", ".join(f"{name} {ms:.0f}" for name, ms in used.items() if ms >= 1)
            print(f"{path:6s} {replies / seconds:7,.0f}/s  hearers {rows[-1][2]:5.0f} ms"
                  f" (of {in_all:.0f} ms until quiet)  publishing {rows[-1][3]:4.0f} ms"
                  f"  ({each})")
    ordered = sorted(rows, key=lambda row: row[1])
    half = len(ordered) // 2
    for label, part in (("slower half", ordered[:half]), ("faster half", ordered[half:])):
        print(f"{label}: median {statistics.median(r[1] for r in part):,.0f}/s, hearers "
              f"{statistics.median(r[2] for r in part):.0f} ms during the stream, "
              f"{statistics.median(r[4] for r in part):.0f} ms until quiet")
    for path in PUBLISHERS:
        own = [r[3] for r in rows if r[0] == path]
        print(f"({path}) publishing: {statistics.median(own):.0f} ms of CPU per stream of {n} "
              f"({' + '.join(PUBLISHERS[path])})")
    pairs = _ratios([r[1] for r in rows if r[0] == "b-ours"], [r[1] for r in rows if r[0] == "e"])
    print(f"(b-ours)/(e): median pair ratio {statistics.median(pairs):.1%}, pairs "
          f"{min(pairs):.0%}-{max(pairs):.0%}, {reps} pairs of spam {n}")


def legacy_floor(reps: int, count: int = 200) -> None:
    raw_port = free_port()
    config = relay.bridge_config

    def with_raw_face(*args: object, **kwargs: object) -> str:
        return config(*args, **kwargs) + (  # type: ignore[arg-type]
            f'\n[actors.{relay.RAW_ACTOR}]\nlives = "amqp"\nlegacy_port = {raw_port}\n')

    relay.bridge_config = with_raw_face  # type: ignore[assignment]
    medians: dict[str, list[float]] = {"a": [], "c": [], "e": [], "c-e": []}
    with _running_peers() as peers:
        for path in ("a", "c", "e"):
            relay._round_trips(peers, path, 50)
        relay.legacy_round_trips(raw_port, 50)
        for _ in range(reps):
            for path in medians:
                peers.settle()
                samples = (relay.legacy_round_trips(raw_port, count) if path == "c-e"
                           else relay._round_trips(peers, path, count))
                medians[path].append(statistics.median(samples))
    for path, values in medians.items():
        print(f"{path:4s} round trip {statistics.median(values):.3f} ms "
              f"[{min(values):.3f}-{max(values):.3f}]")
    for num, den in (("c", "a"), ("c-e", "e")):
        r = _ratios(medians[num], medians[den])
        print(f"({num})/({den}) {statistics.median(r):.3f} [{min(r):.3f}-{max(r):.3f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["stream", "hearers", "legacy-floor"])
    ap.add_argument("reps", type=int)
    ap.add_argument("--n", type=int, default=1000, help="replies per stream")
    ap.add_argument("--busy-hearers", action="store_true",
                    help="stream: keep clu's hearers running (the benchmark pauses them)")
    args = ap.parse_args()
    if args.mode == "legacy-floor":
        legacy_floor(args.reps)
    elif args.mode == "stream":
        stream_pairs(args.reps, args.n, not args.busy_hearers)
    else:
        hearers(args.reps, args.n)


if __name__ == "__main__":
    main()

"""Paired measurements of two relay paths, taken in turn (issue 14's tenth pass).

    cd /tmp && PYTHONPATH=/work/main flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_pairs.py stream 16
    cd /tmp && PYTHONPATH=/work/main flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_pairs.py legacy-floor 6

``stream REPS``: REPS pairs of ``spam 1000`` raw streams, the floor (e) and the bridge
with our LegacyActor (b-ours), in alternating order; prints the median of each path and
of the pair ratios (the benchmark takes three streams a run, this takes many, to see
where the ratio centres).

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
from pathlib import Path

from bridge.bench import relay
from bridge.service.broker import free_port


def _ratios(num: list[float], den: list[float]) -> list[float]:
    return [n / d for n, d in zip(num, den)]


def stream_pairs(reps: int, n: int = 1000) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-pairs-") as state, \
            relay.running_peers(Path(state), True, lambda _m: None) as peers:
        for path in ("e", "b-ours"):
            relay._stream(peers, path, 200, raw=True)  # warm-up
        rates: dict[str, list[float]] = {"e": [], "b-ours": []}
        for i in range(reps):
            for path in ("e", "b-ours") if i % 2 == 0 else ("b-ours", "e"):
                peers.settle()
                replies, seconds = relay._stream(peers, path, n, raw=True)
                rates[path].append(replies / seconds)
    e, ours = statistics.median(rates["e"]), statistics.median(rates["b-ours"])
    pairs = _ratios(rates["b-ours"], rates["e"])
    print(f"(e) {e:,.0f}/s, (b-ours) {ours:,.0f}/s: {ours / e:.1%} of the floor "
          f"(median pair ratio {statistics.median(pairs):.1%}, pairs "
          f"{min(pairs):.0%}-{max(pairs):.0%}, {reps} pairs of spam {n})")


def legacy_floor(reps: int, count: int = 200) -> None:
    raw_port = free_port()
    config = relay.bridge_config

    def with_raw_face(*args: object, **kwargs: object) -> str:
        return config(*args, **kwargs) + (  # type: ignore[arg-type]
            f'\n[actors.{relay.RAW_ACTOR}]\nlives = "amqp"\nlegacy_port = {raw_port}\n')

    relay.bridge_config = with_raw_face  # type: ignore[assignment]
    medians: dict[str, list[float]] = {"a": [], "c": [], "e": [], "c-e": []}
    with tempfile.TemporaryDirectory(prefix="relay-pairs-") as state, \
            relay.running_peers(Path(state), True, lambda _m: None) as peers:
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
    ap.add_argument("mode", choices=["stream", "legacy-floor"])
    ap.add_argument("reps", type=int)
    args = ap.parse_args()
    (stream_pairs if args.mode == "stream" else legacy_floor)(args.reps)


if __name__ == "__main__":
    main()

"""Drive relay paths for an interleaved A/B of two checkouts (issue 14's passes).

    flock -x /tmp/bench.lock sh -c 'for i in 1 2; do for t in OLD NEW; do
        PYTHONPATH=$t .venv/bin/python scripts/relay_ab.py 6; done; done'

OLD and NEW are checkouts (e.g. ``git worktree add`` / ``git archive`` of two commits):
the peers and the bridge are started by ``bridge.bench.relay.running_peers`` from the
``bridge`` package on ``PYTHONPATH``, so each run measures that tree. Each path is driven
for SECONDS after a warm-up: round trips (``a``, ``b``, ``b-ours``, ``c``) in batches of
100 ``ping``, ``b-ours-raw`` as ``spam 1000`` streams to a raw consumer. Prints one JSON
line: per path the bridge's CPU per command (per reply for the stream, from /proc) and
the median round trip (ms) or stream rate (replies/s), with the load average before and
after. ``--profile PREFIX`` also records each path with py-spy (raw format) into
``PREFIX-<path>.txt`` (with ``SPY_NATIVE=1`` in the environment: native frames too, which
needs py-spy to stop the process at each sample). Run it from a directory without a
``bridge`` package (e.g. ``cd /tmp``), else an older tree's children import that one. A measurement aid, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bridge.bench.relay import _BridgeCpu, _round_trips, _stream, running_peers

PATHS = ["a", "b", "b-ours", "c", "b-ours-raw"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seconds", type=float)
    ap.add_argument("paths", nargs="*", default=PATHS)
    ap.add_argument("--profile", metavar="PREFIX")
    args = ap.parse_args()
    import bridge

    out: dict[str, object] = {"tree": str(Path(bridge.__file__).resolve().parents[1]),
                              "load": Path("/proc/loadavg").read_text().split()[:3]}
    with tempfile.TemporaryDirectory() as state, \
            running_peers(Path(state), True, lambda _m: None) as peers:
        pid = peers.programs["bridge"].popen.pid
        for path in ("a", "b", "b-ours", "c"):  # warm-up
            _round_trips(peers, path, 50)
        _stream(peers, "b-ours", 500, raw=True)
        for path in args.paths:
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "250",
                     "--format", "raw", *(["--native"] if __import__("os").environ.get("SPY_NATIVE") else ["--nonblocking"]), "--pid", str(pid),
                     "-o", f"{args.profile}-{path}.txt"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            cpu = _BridgeCpu(peers)
            start, ops, samples = time.monotonic(), 0, []
            while time.monotonic() - start < args.seconds:
                if path == "b-ours-raw":
                    replies, seconds = _stream(peers, "b-ours", 1000, raw=True)
                    ops += replies
                    samples.append(replies / seconds)
                else:
                    batch = _round_trips(peers, path, 100)
                    ops += len(batch)
                    samples += batch
            per = cpu.per(ops)
            samples.sort()
            median = samples[len(samples) // 2]
            out[path] = {"cpu_us": round(per) if per is not None else None,
                         "median": round(median) if path == "b-ours-raw" else round(median, 3)}
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
    out["load_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

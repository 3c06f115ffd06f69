"""Count the bridge's Python function calls per relayed command (issue 14's passes).

    cd /tmp && PYTHONPATH=TREE flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_calls.py 500 [PATH ...]

Starts the relay benchmark's peers (``bridge.bench.relay.running_peers``) with the
``bridge`` package on ``PYTHONPATH`` (run it from a directory without one: the peers
are started with ``python -P``, but an older tree's are not), then for each PATH
(``a``, ``b``, ``b-ours``, ``c``, or ``raw``: ``spam N`` streamed to a raw consumer)
profiles the bridge with :mod:`cProfile` over N round trips (N replies for ``raw``):
a small ``sitecustomize`` module turns the profiler on at ``SIGUSR1`` and dumps it at
``SIGUSR2``. Prints per path the function calls per operation (deterministic: the
figure to compare two trees by, where CPU time per command varies by +-20 % between
identical runs on this machine) and cProfile's total time per operation (inflated by
the profiler). ``--top K`` also prints the K functions with the most own time;
``--keep DIR`` keeps the ``.prof`` files. A measurement aid, not a test.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path

SITECUSTOMIZE = '''
import os, signal, sys
if os.environ.get("BRIDGE_CPROFILE") and "serve" in sys.argv:
    import cProfile
    _profile = cProfile.Profile()
    def _on(_sig, _frame):
        _profile.enable()
    def _off(_sig, _frame):
        _profile.disable()
        _profile.dump_stats(os.environ["BRIDGE_CPROFILE"])
        _profile.clear()
    signal.signal(signal.SIGUSR1, _on)
    signal.signal(signal.SIGUSR2, _off)
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("paths", nargs="*", default=["a", "b", "b-ours", "c", "raw"])
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as hook, tempfile.TemporaryDirectory() as state:
        Path(hook, "sitecustomize.py").write_text(SITECUSTOMIZE)
        dump = Path(hook, "bridge.prof")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.environ.get("PYTHONPATH"), hook) if p)
        os.environ["BRIDGE_CPROFILE"] = str(dump)
        import bridge
        from bridge.bench.relay import _round_trips, _stream, running_peers

        print("tree", Path(bridge.__file__).resolve().parents[1])
        with running_peers(Path(state), True, lambda _m: None) as peers:
            pid = peers.programs["bridge"].popen.pid
            for path in ("a", "b", "b-ours", "c"):  # warm-up
                _round_trips(peers, path, 100)
            _stream(peers, "b-ours", 500, raw=True)
            for path in args.paths:
                os.kill(pid, signal.SIGUSR1)
                time.sleep(0.3)
                if path == "raw":
                    _stream(peers, "b-ours", args.n, raw=True)
                else:
                    _round_trips(peers, path, args.n)
                time.sleep(0.3)
                os.kill(pid, signal.SIGUSR2)
                for _ in range(50):
                    if dump.exists():
                        break
                    time.sleep(0.1)
                time.sleep(0.3)
                stats = pstats.Stats(str(dump))
                calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
                print(f"{path:7} calls/op {calls / args.n:8.1f}   profiled time/op "
                      f"{stats.total_tt / args.n * 1e6:7.0f} us")  # type: ignore[attr-defined]
                if args.top:
                    rows = sorted(stats.stats.items(),  # type: ignore[attr-defined]
                                  key=lambda kv: -kv[1][2])[:args.top]
                    for (file, line, name), (_, ncalls, tt, ct, _) in rows:
                        short = file.split("site-packages/")[-1].split("/bridge/")[-1]
                        print(f"   {ncalls / args.n:7.2f} calls {tt / args.n * 1e6:7.1f} us "
                              f"own {ct / args.n * 1e6:7.1f} us cum  {short}:{line} {name}")
                if args.keep:
                    Path(args.keep).mkdir(parents=True, exist_ok=True)
                    dump.replace(Path(args.keep) / f"{path}.prof")
                else:
                    dump.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

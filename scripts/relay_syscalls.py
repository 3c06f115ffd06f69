"""Count the bridge's system calls per relayed command (issue 14's passes).

    cd /tmp && PYTHONPATH=TREE flock -x /tmp/bench.lock \
        /work/main/.venv/bin/python /work/main/scripts/relay_syscalls.py 2000 [PATH ...]

Starts the relay benchmark's peers (``bridge.bench.relay.running_peers``) with the
``bridge`` package on ``PYTHONPATH`` (run it from a directory without one, as
``relay_calls.py``), warms every path up, then for each PATH (``a``, ``b``, ``b-ours``,
``c``) attaches ``strace -c -f`` to the bridge over N round trips and prints each system
call's count per round trip (``epoll_pwait`` counts the event loop's turns; ``getpid``
marks loop look-ups in Python 3.11). Needs ``strace``; strace slows the bridge, so only
the counts mean something, not the times. With ``--perf``, ``perf trace -s`` is attached
instead (less overhead) and each system call's time per round trip is printed too, in
µs (``epoll_pwait``'s includes the waiting). A measurement aid, not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("paths", nargs="*", default=["b", "b-ours", "c"])
    ap.add_argument("--perf", action="store_true", help="perf trace -s, with times")
    args = ap.parse_args()
    import bridge
    from bridge.bench.relay import _round_trips, running_peers

    print("tree", Path(bridge.__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as state, \
            running_peers(Path(state), True, lambda _m: None) as peers:
        pid = peers.programs["bridge"].popen.pid
        for path in ("a", "b", "b-ours", "c"):  # warm-up
            _round_trips(peers, path, 50)
        for path in args.paths:
            out = Path(state, f"strace-{path}.txt")
            command = (["perf", "trace", "-s", "-p", str(pid), "-o", str(out)] if args.perf
                       else ["strace", "-c", "-f", "-p", str(pid), "-o", str(out)])
            tracer = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached
            _round_trips(peers, path, args.n)
            tracer.send_signal(2)
            tracer.wait()
            counts = {}
            times: dict[str, float] = {}
            for line in out.read_text().splitlines():
                parts = line.split()
                if args.perf:  # syscall calls errors total(ms) min avg max stddev
                    if len(parts) >= 8 and parts[1].isdigit():
                        counts[parts[0]] = int(parts[1]) / args.n
                        times[parts[0]] = float(parts[3]) * 1000 / args.n
                elif len(parts) >= 5 and parts[3].isdigit():
                    counts[parts[-1]] = int(parts[3]) / args.n
            total = counts.pop("total", sum(counts.values()))
            shown = ", ".join(
                f"{name} {per:.2f}" + (f" ({times[name]:.0f} us)" if name in times else "")
                for name, per in sorted(counts.items(), key=lambda kv: -kv[1]) if per >= 0.01)
            print(f"{path:7s} system calls/op {total:6.2f}   {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Rate:
    """Operations per second over several runs."""

    name: str
    unit: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "unit": self.unit, "median": self.median,
                "min": min(self.runs), "max": max(self.runs), "runs": self.runs}


def measure_rate(name: str, unit: str, fn: Callable[[], int], runs: int) -> Rate:
    """Call ``fn`` (which returns how many operations it did) ``runs`` times; rates per second."""
    fn()  # warm-up
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return Rate(name, unit, rates)


def format_table(rates: list[Rate], reference: str) -> str:
    """A plain-text table with each rate's ratio to the rate named ``reference``."""
    ref = next((r for r in rates if r.name == reference), None)
    lines = [f"{'parser':<44} {'median':>12} {'min':>12} {'max':>12}  ratio"]
    for r in rates:
        ratio = f"{ref.median / r.median:5.2f}x" if ref and r is not ref else "  ref"
        lines.append(f"{r.name:<44} {r.median:>12,.0f} {min(r.runs):>12,.0f} "
                     f"{max(r.runs):>12,.0f}  {ratio}")
    return "\n".join(lines)


#: Iterations of :func:`python_speed_ms`'s loop: ~40-80 ms on this project's 2-vCPU VM.
SPEED_LOOP = 1_000_000


def python_speed_ms(repeats: int = 3) -> float:
    """Milliseconds a fixed pure-Python loop takes here (the fastest of ``repeats``): a
    yardstick of how fast the machine runs Python right now, to read beside CPU times
    measured at the same moment (a shared VM's speed varies by ~2x from hour to hour)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for i in range(SPEED_LOOP):
            total += i & 7
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def wakeup_cost_us(round_trips: int = 2000) -> tuple[float, float]:
    """(wall µs, CPU µs of this side) per round trip of one byte over a socket pair with a
    forked echo process: a yardstick of what a system call and a wake-up of another
    process cost here right now, the bulk of a relayed command's cost, which a shared
    VM's slow phases raise while pure-Python speed (:func:`python_speed_ms`) may not
    change. Linux/POSIX only (``os.fork``)."""
    import os
    import resource
    import socket

    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the echo child
        ours.close()
        try:
            while data := theirs.recv(64):
                theirs.send(data)
        finally:
            os._exit(0)
    theirs.close()
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        for _ in range(round_trips):
            ours.send(b"x")
            ours.recv(64)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall / round_trips * 1e6, cpu / round_trips * 1e6

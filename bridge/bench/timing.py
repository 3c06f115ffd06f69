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

"""Helpers of the fuzz tests: hypothesis driven from a worker thread against the test's
event loop, strategies for hostile input, and a running count of the inputs fuzzed."""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.faults.helpers import record_figure

#: Examples per property (bounded: the whole fuzz suite stays well under a minute or two).
EXAMPLES = int(os.environ.get("BRIDGE_FUZZ_EXAMPLES", "30"))

#: Seeded (derandomize), bounded, no example database; no shrinking: each example drives
#: real processes, so a failure is reported as found (shrinking would take minutes).
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=True, phases=(Phase.explicit, Phase.generate),
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

#: Any text on one line (no LF; CR, NUL, controls, any plane; no lone surrogates).
ONE_LINE_TEXT = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                        max_size=80)
#: Raw bytes on one line: invalid UTF-8, NUL, CR...
ONE_LINE_BYTES = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" "))
#: Values that break naive converters: NaN, infinities, huge numbers, deep nesting.
HOSTILE_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
              st.floats(allow_nan=True, allow_infinity=True), ONE_LINE_TEXT,
              st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12)


class Counter:
    """Inputs fuzzed by one test, reported at the end as a figure."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.inputs = 0

    def add(self, n: int = 1) -> None:
        self.inputs += n

    def report(self) -> None:
        record_figure(f"inputs fuzzed: {self.what}", self.inputs, unit="inputs")


async def drive(check: Callable[..., Any], given_check: Callable[[Callable[..., Any]], Any],
                ) -> None:
    """Run a hypothesis test from a worker thread; each example is ``check(**example)``,
    a coroutine function run on this (the test's) event loop."""
    loop = asyncio.get_running_loop()

    def run_example(**example: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(check(**example), loop)
        try:
            future.result(120)
        except BaseException as exc:  # name the example (no shrinking: it is the one found)
            future.cancel()
            raise AssertionError(f"failing example {example!r}: {exc!r}") from exc

    await asyncio.to_thread(given_check(run_example))


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Example = Coroutine[Any, Any, None]

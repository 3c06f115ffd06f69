"""CPU per key: a timer per key (what AmqpTarget did before 12bac3a) vs ExpiringSet.

    .venv/bin/python scripts/expiring_bench.py

20,000 keys added, each to be forgotten 0.2 s later, on uvloop; the process's CPU time
from the first add until every key is gone, per key, three times each in turn. A
measurement aid for BENCHMARKS.md (sixteenth pass), not a test.
"""

from __future__ import annotations

import asyncio
import time

import uvloop

from bridge.core.expiring import ExpiringSet

KEYS = 20_000
GRACE = 0.2


async def timer_per_key() -> float:
    keys: set[int] = set()
    started = time.process_time()
    for key in range(KEYS):
        keys.add(key)
        asyncio.get_event_loop().call_later(GRACE, keys.discard, key)
    while keys:
        await asyncio.sleep(0.05)
    return time.process_time() - started


async def expiring_set() -> float:
    keys: ExpiringSet[int] = ExpiringSet(GRACE, batch=0.05)
    started = time.process_time()
    for key in range(KEYS):
        keys.add_expiring(key)
    while len(keys):
        await asyncio.sleep(0.05)
    return time.process_time() - started


def main() -> None:
    for name, measure in [("a timer per key", timer_per_key),
                          ("ExpiringSet", expiring_set)] * 3:
        print(f"{name:16} {uvloop.run(measure()) / KEYS * 1e6:5.2f} us of CPU per key")


if __name__ == "__main__":
    main()

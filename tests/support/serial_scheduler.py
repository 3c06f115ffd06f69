"""How ``scripts/test.sh`` spreads the suite over its pytest-xdist workers.

Each test module is one unit of work, so that a module's fixtures (a RabbitMQ cluster, a
Tron hub) start once, on one worker. The long scenarios that keep both CPUs busy or that
read CPU time -- :data:`SERIAL_MODULES` -- are together one unit: they run one after
another on one worker and never overlap each other, while the other worker runs the
rest of the suite (each worker has its own private broker).

This is a scheduler of our own (xdist's ``pytest_xdist_make_scheduler`` hook) rather
than ``--dist loadgroup`` with markers: pytest-xdist 3.8 marks a group by rewriting
``item._nodeid``, which pytest 9.2 no longer reads, so the groups silently vanish.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

#: The unit of work of these modules' tests (one worker, one after another).
SERIAL = "serial"

#: The long scenarios (a RabbitMQ cluster, 10,000 commands, the relay benchmark's peers,
#: migrations under load, quiet drains against the real Tron) and the CPU readings.
SERIAL_MODULES = frozenset({
    "tests/bench/test_cpu_reading.py",
    "tests/bench/test_parse_bench.py",
    "tests/bench/test_relay_bench.py",
    "tests/cluster/test_cluster_faults.py",
    "tests/hub/test_hub_tron_side_by_side.py",
    "tests/load/test_load.py",
    "tests/relay/test_migration_load.py",
})


def unit_of(nodeid: str) -> str:
    """The unit of work of test ``nodeid``: :data:`SERIAL`, or its module's path."""
    module = nodeid.split("::", 1)[0]
    return SERIAL if module in SERIAL_MODULES else module


class SerialAndModules(LoadScopeScheduling):
    """xdist's scope scheduling with :func:`unit_of` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def make_scheduler(config: Any, log: Any) -> SerialAndModules | None:
    """Our scheduler for the plain ``-n N`` (``--dist load``); None (xdist's own) for
    any other ``--dist``."""
    if config.getvalue("dist") != "load":
        return None
    return SerialAndModules(config, log)

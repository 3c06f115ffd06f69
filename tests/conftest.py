"""Shared fixtures. Each fixture family lives in its own module under tests/support/.

The event loop under Twisted's asyncio reactor is the bridge's default
(:func:`bridge.runtime.loop_kind`: uvloop when installed); ``BRIDGE_LOOP=asyncio`` (or
``uvloop``) runs the whole suite on the other one, and the programs the tests start
inherit the variable.
"""

import asyncio

import pytest
from hypothesis import HealthCheck, settings

from bridge.runtime import loop_kind

#: The event loop of this test run; chosen here, before pytest-twisted installs the
#: reactor (which makes its loop with the policy's ``new_event_loop``).
LOOP = loop_kind()
if LOOP == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

# No per-example deadline: speed is measured by the benchmarks, never asserted by a
# test, and a loaded CI machine must not turn a slow example into a failure.
settings.register_profile("bridge", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bridge")

#: Test modules that run one after another on a single pytest-xdist worker (group
#: ``serial``, with ``--dist loadgroup`` as ``scripts/test.sh`` runs the suite): the
#: long scenarios that keep both CPUs busy (a RabbitMQ cluster, 10,000 commands, the
#: relay benchmark's peers) or wait through broker and hub restarts. They then never
#: overlap each other; the other worker runs the rest of the suite meanwhile.
SERIAL_MODULES = frozenset({
    "tests/amqp/test_names_and_recovery.py",
    "tests/bench/test_cpu_reading.py",
    "tests/bench/test_relay_bench.py",
    "tests/bench/test_parse_bench.py",
    "tests/cluster/test_cluster_faults.py",
    "tests/faults/test_broker_restart.py",
    "tests/hub/test_hub_interop.py",
    "tests/hub/test_hub_tron_side_by_side.py",
    "tests/load/test_load.py",
    "tests/relay/test_migration_load.py",
    "tests/service/test_check.py",
})


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201 - pytest hook
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.xdist_group("serial"))


pytest_plugins = [
    "tests.support.fixtures_rabbitmq",
    "tests.support.fixtures_peers",
]


def pytest_report_header(config):  # noqa: ANN001, ANN201 - pytest hook
    return f"event loop: {LOOP} (BRIDGE_LOOP=asyncio|uvloop chooses)"

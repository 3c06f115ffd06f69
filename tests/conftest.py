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


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):  # noqa: ANN001, ANN201 - xdist hook
    """``-n N``: :mod:`tests.support.serial_scheduler` spreads the suite over the workers."""
    from tests.support.serial_scheduler import make_scheduler

    return make_scheduler(config, log)


pytest_plugins = [
    "tests.support.fixtures_rabbitmq",
    "tests.support.fixtures_peers",
]


def pytest_report_header(config):  # noqa: ANN001, ANN201 - pytest hook
    return f"event loop: {LOOP} (BRIDGE_LOOP=asyncio|uvloop chooses)"

"""Shared fixtures. Each fixture family lives in its own module under tests/support/."""

from hypothesis import HealthCheck, settings

# No per-example deadline: speed is measured by the benchmarks, never asserted by a
# test, and a loaded CI machine must not turn a slow example into a failure.
settings.register_profile("bridge", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bridge")

pytest_plugins = [
    "tests.support.fixtures_rabbitmq",
    "tests.support.fixtures_peers",
]

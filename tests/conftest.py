"""Shared fixtures. Each fixture family lives in its own module under tests/support/."""

pytest_plugins = [
    "tests.support.fixtures_rabbitmq",
    "tests.support.fixtures_peers",
]

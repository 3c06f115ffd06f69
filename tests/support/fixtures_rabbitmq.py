"""pytest fixtures for a real RabbitMQ broker (the package's private broker,
:mod:`bridge.service.broker`, with the test vhost pool of :mod:`tests.support.rabbitmq`).

* ``rabbitmq`` (session): the running :class:`~tests.support.rabbitmq.RabbitMQBroker`;
  ``.port``, ``.url`` (vhost ``/``), ``.node``, ``.stop()``, ``.start()``, ``.restart()``
  (same port) for fault tests.
* ``amqp_url`` (function): URL of a fresh virtual host of that broker. At teardown the
  virtual host is deleted with every queue, exchange (``amq.*`` are per-vhost defaults)
  and connection the test left in it, so tests cannot interfere with each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rabbitmq import BrokerError, RabbitMQBroker


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQBroker]:
    """A private rabbitmq-server for the whole test session, stopped at the end."""
    broker = RabbitMQBroker()
    try:
        broker.start()
    except BrokerError as err:
        pytest.fail(f"could not start the test RabbitMQ broker (state in {broker.base_dir}):\n{err}",
                    pytrace=False)
    yield broker
    broker.cleanup()


@pytest.fixture
def amqp_url(rabbitmq: RabbitMQBroker) -> Iterator[str]:
    """``amqp://guest:guest@127.0.0.1:PORT/tN``: a fresh vhost, deleted after the test."""
    if not rabbitmq.running:  # a fault test stopped it and did not bring it back
        rabbitmq.start()
    vhost = rabbitmq.new_vhost()
    yield rabbitmq.vhost_url(vhost)
    if rabbitmq.running:
        rabbitmq.delete_vhost(vhost)

"""The package's private broker (bridge.service.broker): starts, serves AMQP on loopback
only, and leaves no process behind when stopped."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from bridge.service.broker import (
    BrokerError,
    RabbitMQBroker,
    free_port,
    node_pids,
    rabbitmq_available,
)
from tests.support.aio import aio_test

WAIT = 30.0


def listening_addresses(port: int) -> set[str]:
    """Local addresses of TCP sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1]  # 32-bit words, little-endian
                           for i in range(0, len(address), 8))
            found.add(str(ipaddress.ip_address(raw)))
    return found


def all_loopback(addresses: set[str]) -> bool:
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@pytest.fixture
def broker() -> Iterator[RabbitMQBroker]:
    node = RabbitMQBroker()
    yield node
    node.cleanup()


def test_rabbitmq_is_installed_and_free_port_is_bindable() -> None:
    assert rabbitmq_available()
    assert not rabbitmq_available("/nonexistent/rabbitmq-server")
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_missing_server_program_is_a_broker_error(tmp_path: Path) -> None:
    missing = RabbitMQBroker(tmp_path / "state", server=str(tmp_path / "rabbitmq-server"))
    with pytest.raises(BrokerError, match="not found"):
        missing.start()
    assert not missing.running


@aio_test
async def test_private_broker_serves_amqp_on_loopback_and_stops_cleanly(
    broker: RabbitMQBroker,
) -> None:
    await asyncio.to_thread(broker.start)
    node = broker.node
    assert broker.running and node_pids(node)
    for port in (broker.port, broker.dist_port, broker.epmd_port):
        assert "127.0.0.1" in listening_addresses(port), port
        assert all_loopback(listening_addresses(port)), (port, listening_addresses(port))

    connection = await aio_pika.connect(broker.url, timeout=WAIT)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hello"), queue.name)
        message = await queue.get(timeout=WAIT, fail=False)
        for _ in range(100):
            if message is not None:
                break
            await asyncio.sleep(0.05)
            message = await queue.get(timeout=WAIT, fail=False)
        assert message is not None and message.body == b"hello"
        await message.ack()
    finally:
        await connection.close()

    await asyncio.to_thread(broker.stop)
    assert not broker.running
    assert node_pids(node) == []
    for port in (broker.port, broker.dist_port, broker.epmd_port):
        assert listening_addresses(port) == set(), port

"""Duplicate names fail loudly; a broker outage fails what cannot finish and then recovers."""

from __future__ import annotations

import asyncio

import pytest
from clu import CluError
from clu import CommandStatus as CluStatus

from bridge.amqp import (
    ActorEndpoint,
    ActorNameInUse,
    AmqpCommander,
    AmqpConnection,
    AmqpUnavailable,
    CommanderNameInUse,
    IncomingCommand,
)
from bridge.core import CommandStatus
from tests.amqp.helpers import (
    WAIT,
    amqp_connection,
    clu_actor,
    clu_client,
    clu_command,
    commander,
    endpoint,
    simple_handler,
)
from tests.support.aio import aio_test
from tests.support.rabbitmq import RabbitMQBroker


@aio_test
async def test_endpoint_refuses_the_name_of_a_running_clu_actor(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "camera"), clu_client(amqp_url, "cluclient") as client:
        with pytest.raises(ActorNameInUse, match="'camera'.*another instance"):
            async with endpoint(amqp_url, "camera"):
                pass
        ping = await clu_command(client, "camera", "ping")  # the clu actor is unharmed
    assert ping.status == CluStatus.DONE


@aio_test
async def test_clu_actor_refuses_the_name_of_our_endpoint(amqp_url: str) -> None:
    async with endpoint(amqp_url, "camera"):
        with pytest.raises(CluError, match="cannot create queue camera_commands"):
            async with clu_actor(amqp_url, "camera"):
                pass


@aio_test
async def test_second_endpoint_with_the_same_name_fails_on_any_connection(amqp_url: str) -> None:
    async with (
        amqp_connection(amqp_url) as conn,
        clu_client(amqp_url, "cluclient") as client,
    ):
        first = await ActorEndpoint(conn, "camera", simple_handler).start()
        with pytest.raises(ActorNameInUse):  # same connection: the broker would allow it
            await ActorEndpoint(conn, "camera", simple_handler).start()
        with pytest.raises(ActorNameInUse):  # another connection
            async with endpoint(amqp_url, "camera"):
                pass
        ping = await clu_command(client, "camera", "ping")
        await first.stop()
        # After a clean stop the name is free again.
        again = await ActorEndpoint(conn, "camera", simple_handler).start()
        ping2 = await clu_command(client, "camera", "ping")
        await again.stop()
    assert ping.status == ping2.status == CluStatus.DONE


@aio_test
async def test_commander_refuses_the_name_of_a_running_client(amqp_url: str) -> None:
    async with clu_client(amqp_url, "operator"):
        with pytest.raises(CommanderNameInUse, match="operator_replies"):
            async with commander(amqp_url, "operator"):
                pass


@aio_test
async def test_connect_to_a_closed_port_fails_clearly(rabbitmq: RabbitMQBroker) -> None:
    from tests.support.ports import free_port

    conn = AmqpConnection(f"amqp://guest:guest@127.0.0.1:{free_port()}/", connect_timeout=5)
    with pytest.raises(AmqpUnavailable, match="cannot connect to the AMQP broker"):
        await conn.start()


@aio_test
async def test_broker_outage_fails_in_flight_commands_then_everything_recovers(
    amqp_url: str, rabbitmq: RabbitMQBroker
) -> None:
    """Stop the broker while a command runs, then start it again (same port)."""
    release = asyncio.Event()
    late_reply_sent: list[bool] = []

    async def handler(cmd: IncomingCommand) -> None:
        if cmd.command_string == "hold":
            await cmd.reply(">")
            await release.wait()
            late_reply_sent.append(await cmd.reply(":", {"text": "late"}))
        else:
            await simple_handler(cmd)

    async with asyncio.timeout(120):
        conn = AmqpConnection(amqp_url, reconnect_interval=0.5)
        await conn.start()
        lost, back = asyncio.Event(), asyncio.Event()
        conn.on_disconnect(lambda exc: lost.set())
        conn.on_reconnect(back.set)
        ep = await ActorEndpoint(conn, "camera", handler).start()
        # An actor whose replies may wait only briefly for a lost broker.
        impatient = await ActorEndpoint(conn, "dome", handler, reconnect_wait=0.3).start()
        cmdr = await AmqpCommander(conn, "operator", publish_timeout=1.0).start()
        try:
            held = await cmdr.send_command("camera", "hold")
            while len(ep.in_flight) != 1:
                await asyncio.sleep(0.01)

            await asyncio.to_thread(rabbitmq.stop)
            await asyncio.wait_for(lost.wait(), WAIT)
            assert not conn.connected
            with pytest.raises(AmqpUnavailable, match="not connected"):
                await conn.wait_connected(0.2)
            # The command in flight cannot finish any more: failed, not left hanging.
            await asyncio.wait_for(held, WAIT)
            assert held.status is CommandStatus.FAILED
            assert "Lost the connection to the AMQP broker" in (held.error or "")
            # New commands while the broker is down fail after publish_timeout.
            down = await cmdr.send_command("camera", "ping")
            assert down.status is CommandStatus.FAILED and "Could not send" in (down.error or "")
            # A reply waits reconnect_wait for the broker (not publish_timeout, 10 s), then
            # gives up with AmqpUnavailable.
            started = asyncio.get_running_loop().time()
            with pytest.raises(AmqpUnavailable, match="not connected"):
                await impatient.broadcast("i", {"text": "nobody hears this"})
            assert asyncio.get_running_loop().time() - started < 3

            await asyncio.to_thread(rabbitmq.start)
            await asyncio.wait_for(back.wait(), 60)
            await conn.wait_connected(1)
            assert conn.connected
            # The endpoint finishes its old command on the new connection (nobody listens).
            release.set()
            while not late_reply_sent:
                await asyncio.sleep(0.01)
            assert late_reply_sent == [True]
            # Queues, bindings and consumers were restored: both sides serve again.
            ping = await asyncio.wait_for(await cmdr.send_command("camera", "ping"), WAIT)
            assert ping.succeeded
            async with clu_client(amqp_url, "cluclient") as client:
                clu_ping = await clu_command(client, "camera", "ping")
            assert clu_ping.status == CluStatus.DONE
            # ... including clu actors' view of our names: still exclusively ours.
            with pytest.raises(CluError):
                async with clu_actor(amqp_url, "camera"):
                    pass
        finally:
            await cmdr.stop()
            await impatient.stop()
            await ep.stop()
            await conn.stop()

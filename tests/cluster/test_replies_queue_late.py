"""A command is not sent before the commander's replies queue is back after a reconnect.

Seen in the 3-node cluster test (issue 15): bridge B failed over in 0.03 s, but the
name of its exclusive replies queue was still held by its dead connection for 0.1 s;
a hub-port command published in that window had its reply dropped by the broker
(nothing bound for it) and ended only 32 s later through the presence watcher. Here a
second connection holds the name while the commander reconnects, deterministically:
the command must wait for the queue and then be answered; if the queue never comes
back it must fail promptly with a clear error.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq

from bridge.amqp import AmqpCommander, AmqpConnection
from bridge.amqp.failover import ReconnectPolicy
from bridge.core import CommandStatus
from tests.amqp.helpers import WAIT, clu_actor
from tests.support.aio import aio_test
from tests.support.tcp_proxy import TcpProxy

FAST = ReconnectPolicy(initial=0.2, maximum=0.4, factor=2.0, jitter=0.0)


async def _take_name(url: str, name: str) -> aio_pika.abc.AbstractConnection:
    """A connection of its own holding exclusive queue ``name`` (polled: the broker
    frees it a moment after its owner's connection closed)."""
    holder = await aio_pika.connect(url)
    for _ in range(100):
        channel = await holder.channel()
        try:
            await channel.declare_queue(name, exclusive=True)
            return holder
        except aiormq.exceptions.ChannelLockedResource:
            await asyncio.sleep(0.05)
    await holder.close()
    raise AssertionError(f"{name} stayed locked")


async def _lose_link_to_a_holder(amqp_url: str, proxy: TcpProxy, conn: AmqpConnection,
                                 name: str) -> aio_pika.abc.AbstractConnection:
    await proxy.stop()  # the node goes: our link and queues with it
    holder = await _take_name(amqp_url, name)
    await proxy.start()
    await conn.wait_connected(WAIT)
    assert name in conn.queue_problems  # the link is back, the replies queue is not
    return holder


@aio_test
async def test_command_waits_for_the_replies_queue_then_is_answered(amqp_url: str) -> None:
    proxy = TcpProxy(aio_pika.connection.make_url(amqp_url).port)
    await proxy.start()
    conn = await AmqpConnection(proxy.url_for(amqp_url), reconnect=FAST).start()
    try:
        async with clu_actor(amqp_url, "camera"):
            cmdr = await AmqpCommander(conn, "latecmdr", hear_all=False).start()
            assert (await (await cmdr.send_command("camera", "ping")).wait(WAIT)).status \
                == CommandStatus.DONE
            holder = await _lose_link_to_a_holder(amqp_url, proxy, conn, cmdr.queue_name)
            handle = cmdr.submit_command("camera", "ping")
            await asyncio.sleep(0.5)
            assert handle.status == CommandStatus.RUNNING  # held back, not sent
            await holder.close()  # the name is free: the queue comes back, then the command
            assert (await handle.wait(WAIT)).status == CommandStatus.DONE
            assert not conn.queue_problems
            await cmdr.stop()
    finally:
        await conn.stop()
        await proxy.stop()


@aio_test
async def test_command_fails_promptly_if_the_replies_queue_stays_away(amqp_url: str) -> None:
    proxy = TcpProxy(aio_pika.connection.make_url(amqp_url).port)
    await proxy.start()
    conn = await AmqpConnection(proxy.url_for(amqp_url), reconnect=FAST).start()
    try:
        async with clu_actor(amqp_url, "camera"):
            cmdr = await AmqpCommander(conn, "latecmdr", hear_all=False,
                                       publish_timeout=1.0).start()
            holder = await _lose_link_to_a_holder(amqp_url, proxy, conn, cmdr.queue_name)
            try:
                handle = await (await cmdr.send_command("camera", "ping")).wait(WAIT)
            finally:
                await holder.close()
            assert handle.status == CommandStatus.FAILED
            assert "latecmdr_replies" in str(handle.replies[-1].keywords) \
                and "not in place" in str(handle.replies[-1].keywords)
            await cmdr.stop()
    finally:
        await conn.stop()
        await proxy.stop()


# -- the broker loses the queue while the link stays up ------------------------------------

#: What RabbitMQ 3.10's clean-up after a node loss does to each transient queue that was
#: on that node (rabbit_amqqueue:delete_transient_queue/1): delete its record and its
#: bindings by *name*, leaving any queue process running. On a cluster it can hit the
#: queue a bridge has just declared again on another node after failing over.
_FORGET_QUEUE = (
    'QName = rabbit_misc:r(<<"{vhost}">>, queue, <<"{name}">>), '
    'rabbit_misc:execute_mnesia_transaction(fun () -> '
    'ok = mnesia:delete({{rabbit_queue, QName}}), '
    'rabbit_binding:remove_transient_for_destination(QName) end), ok.')


def _vhost(amqp_url: str) -> str:
    return aio_pika.connection.make_url(amqp_url).path.lstrip("/")


async def _send_and_wait(cmdr: AmqpCommander, timeout: float = WAIT) -> CommandStatus:
    return (await (await cmdr.send_command("camera", "ping")).wait(timeout)).status


@aio_test
async def test_a_queue_the_broker_forgot_by_name_is_declared_again(rabbitmq, amqp_url) -> None:
    """The record and bindings of the commander's replies queue vanish (as RabbitMQ's
    node-down clean-up does it): the audit finds it, fails what was in flight, declares
    it again; commands are answered again."""
    async with AmqpConnection(amqp_url, audit_interval=0.3) as conn, \
            clu_actor(amqp_url, "camera"):
        cmdr = await AmqpCommander(conn, "forgetful", hear_all=False).start()
        lost: list[str] = []
        conn.on_queue_lost(lost.append)
        assert await _send_and_wait(cmdr) == CommandStatus.DONE
        rabbitmq.ctl("eval", _FORGET_QUEUE.format(vhost=_vhost(amqp_url), name=cmdr.queue_name))
        in_flight = cmdr.submit_command("camera", "ping")  # its reply has nowhere to go
        assert (await in_flight.wait(WAIT)).status == CommandStatus.FAILED
        assert "lost this bridge's replies queue" in str(in_flight.replies[-1].keywords)
        assert lost == [cmdr.queue_name]
        for _ in range(3):
            assert await _send_and_wait(cmdr) == CommandStatus.DONE
        await cmdr.stop()


@aio_test
async def test_a_deleted_queue_is_declared_again(rabbitmq, amqp_url) -> None:
    """``rabbitmqctl delete_queue`` of the replies queue: the broker cancels our
    consumer, the queue is declared again at once and commands are answered again."""
    async with AmqpConnection(amqp_url, audit_interval=60) as conn, \
            clu_actor(amqp_url, "camera"):
        cmdr = await AmqpCommander(conn, "deleted", hear_all=False).start()
        lost: list[str] = []
        conn.on_queue_lost(lost.append)
        assert await _send_and_wait(cmdr) == CommandStatus.DONE
        rabbitmq.ctl("delete_queue", "-p", _vhost(amqp_url), cmdr.queue_name)
        for _ in range(100):  # the broker's cancel wakes the audit (not its 60 s turn)
            if lost and not conn.queue_problems and conn.connected:
                break
            await asyncio.sleep(0.05)
        assert lost == [cmdr.queue_name]
        assert await _send_and_wait(cmdr) == CommandStatus.DONE
        await cmdr.stop()

"""High availability (opt-in): several bridges serve one actor from a replicated quorum
queue with single-active-consumer; one serves, the others stand by.

On the single test broker (a one-node quorum queue); the cluster test shows the same
across node faults. A :class:`TcpProxy` in front of the first bridge's connection
stands for its node going away.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from clu import CluError
from clu import CommandStatus as CluStatus
from yarl import URL

from bridge.amqp import ActorEndpoint, ActorNameInUse
from bridge.amqp.failover import ReconnectPolicy
from bridge.service.config import ConfigError, parse_config
from tests.amqp.helpers import WAIT, amqp_connection, clu_actor, clu_client
from tests.support.aio import aio_test
from tests.support.tcp_proxy import TcpProxy


def serving(name: str, served: Counter[str]):  # type: ignore[no-untyped-def]
    async def handle(cmd: Any) -> None:
        served[name] += 1
        await cmd.finish({"text": f"served by {name}"})

    return handle


async def command_all(client: Any, count: int) -> list[Any]:
    commands = [await client.send_command("shutter", "status", await_command=False)
                for _ in range(count)]
    return await asyncio.wait_for(asyncio.gather(*commands), WAIT)


def test_ha_is_for_actors_the_bridge_serves_on_amqp() -> None:
    cfg = parse_config({"actors": {"shutter": {"lives": "legacy", "port": 9, "ha": True}}})
    assert cfg.actor("shutter").ha
    with pytest.raises(ConfigError) as err:
        parse_config({"actors": {"camera": {"lives": "amqp", "ha": True}}})
    assert err.value.key == "actors.camera.ha"


@aio_test
async def test_one_bridge_serves_the_standby_takes_over_and_nothing_queued_is_lost(
        amqp_url: str) -> None:
    node = TcpProxy(URL(amqp_url).port or 0)
    await node.start()
    served: Counter[str] = Counter()
    async with (
        amqp_connection([node.url_for(amqp_url)], reconnect=ReconnectPolicy(0.1, 0.2)) as a,
        amqp_connection(amqp_url) as b,
        clu_client(amqp_url, "operator") as client,
    ):
        first = await ActorEndpoint(a, "shutter", serving("a", served), ha=True).start()
        standby = await ActorEndpoint(b, "shutter", serving("b", served), ha=True).start()
        before = await command_all(client, 20)
        assert served == Counter(a=20)  # single active consumer: the first one
        await node.stop()  # bridge a's node goes away: b is handed the queue
        during = await command_all(client, 20)
        assert served["b"] == 20
        await node.start()  # a is back, as a standby now
        async with asyncio.timeout(WAIT):
            while not a.connected:
                await asyncio.sleep(0.02)
        await standby.stop()  # b leaves (its bridge stops): a serves again
        after = await command_all(client, 20)
        # Nobody consumes: commands wait in the queue (clu's exclusive queue would be
        # gone and they would fail routing) and are served by the next bridge to come.
        await first.stop()
        queued = [await client.send_command("shutter", "status", await_command=False)
                  for _ in range(5)]
        await asyncio.sleep(0.5)
        assert not any(c.done() for c in queued)
        again = await ActorEndpoint(b, "shutter", serving("b", served), ha=True).start()
        late = await asyncio.wait_for(asyncio.gather(*queued), WAIT)
        await again.release()  # the hand-over to a clu actor deletes the queue
        await again.stop()
        await node.stop()
    everything = before + during + after + late
    assert all(c.status == CluStatus.DONE for c in everything)
    assert served == Counter(a=40, b=25)


@aio_test
async def test_ha_queue_and_a_clu_actor_exclude_each_other_and_release_hands_over(
        amqp_url: str) -> None:
    served: Counter[str] = Counter()
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "operator") as client:
        async with clu_actor(amqp_url, "shutter"):
            with pytest.raises(ActorNameInUse):
                await ActorEndpoint(conn, "shutter", serving("a", served), ha=True).start()
        endpoint = await ActorEndpoint(conn, "shutter", serving("a", served), ha=True).start()
        with pytest.raises(CluError):
            async with clu_actor(amqp_url, "shutter"):
                pass
        await endpoint.release()  # migration: the name is free once this returns
        async with clu_actor(amqp_url, "shutter"):
            ping = await asyncio.wait_for(
                await client.send_command("shutter", "ping", await_command=False), WAIT)
        await endpoint.stop()
    assert ping.status == CluStatus.DONE

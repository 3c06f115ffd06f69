"""Failover policy, URL lists, per-queue recovery -- on the single test broker.

The 3-node cluster test (test_cluster_faults.py) shows the same under real node faults;
these tests pin each piece down where it can be made deterministic: a URL that refuses
connections stands for a dead node.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from yarl import URL
from clu import CommandStatus as CluStatus

from bridge.amqp import ActorEndpoint, ActorNameInUse, AmqpConnection, AmqpUnavailable
from bridge.amqp.failover import ReconnectPolicy
from bridge.service.config import ConfigError, parse_config
from tests.amqp.helpers import WAIT, amqp_connection, clu_client, clu_command, simple_handler
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.tcp_proxy import TcpProxy


def dead_url() -> str:
    """A URL where nothing listens (connection refused: a node that is down)."""
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


# -- policy and configuration -------------------------------------------------------------

def test_backoff_grows_exponentially_to_the_cap_with_bounded_jitter() -> None:
    policy = ReconnectPolicy(initial=0.2, maximum=3.0, factor=2.0, jitter=0.25)
    assert [policy.delay(n, rand=lambda: 0.5) for n in (1, 2, 3, 4, 5, 9)] == \
        pytest.approx([0.2, 0.4, 0.8, 1.6, 3.0, 3.0])
    assert policy.delay(1, rand=lambda: 0.0) == pytest.approx(0.15)
    assert policy.delay(9, rand=lambda: 1.0) == pytest.approx(3.75)
    with pytest.raises(ValueError):
        ReconnectPolicy(initial=2.0, maximum=1.0)


def test_config_takes_a_list_of_urls_and_a_comma_separated_environment_variable() -> None:
    a, b = "amqp://guest:guest@127.0.0.1:5001/", "amqp://guest:guest@127.0.0.1:5002/"
    cfg = parse_config({"amqp": {"url": [a, b], "reconnect_initial": 0.1,
                                 "reconnect_max": 2, "reconnect_jitter": 0.1,
                                 "fail_fast": True}})
    assert cfg.amqp_urls == (a, b) and cfg.amqp_url == a and cfg.fail_fast
    assert cfg.reconnect == ReconnectPolicy(0.1, 2.0, 2.0, 0.1)
    assert parse_config({"amqp": {"url": a}}).amqp_urls == (a,)
    assert not parse_config({}).fail_fast  # default: wait for a node at start
    env = parse_config({"amqp": {"url": a}}, env={"BRIDGE_AMQP_URL": f"{b}, {a}"})
    assert env.amqp_urls == (b, a)
    for bad, key in (([], "amqp.url"), ([a, 3], "amqp.url"), ([a, a], "amqp.url"),
                     (["http://x/"], "amqp.url")):
        with pytest.raises(ConfigError) as err:
            parse_config({"amqp": {"url": bad}})
        assert err.value.key == key
    with pytest.raises(ConfigError, match="BRIDGE_AMQP_URL"):
        parse_config({}, env={"BRIDGE_AMQP_URL": f"{a},nonsense"})
    with pytest.raises(ConfigError, match="initial <= maximum"):
        parse_config({"amqp": {"reconnect_initial": 5, "reconnect_max": 1}})


# -- connecting -----------------------------------------------------------------------------

@aio_test
async def test_start_skips_nodes_that_are_down(amqp_url: str) -> None:
    async with amqp_connection([dead_url(), dead_url(), amqp_url],
                               reconnect=ReconnectPolicy(0.05, 0.1)) as conn:
        assert conn.connected and conn.node == conn.link_status()["nodes"][2]


@aio_test
async def test_fail_fast_start_raises_once_every_node_failed() -> None:
    conn = AmqpConnection([dead_url(), dead_url()], reconnect=ReconnectPolicy(0.05, 0.1))
    with pytest.raises(AmqpUnavailable, match="nor at the 1 other URL"):
        await conn.start()


@aio_test
async def test_start_without_fail_fast_waits_for_a_node_and_says_so(
        amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "bridge.amqp.connection")
    node = TcpProxy(URL(amqp_url).port or 0)  # not listening yet: a node still down
    conn = AmqpConnection([dead_url(), node.url_for(amqp_url)],
                          reconnect=ReconnectPolicy(0.05, 0.2), fail_fast=False)
    starting = asyncio.ensure_future(conn.start())
    await asyncio.sleep(1.0)
    assert not starting.done()  # still waiting: no node answers
    assert "no AMQP broker at" in caplog.text and "waiting for one" in caplog.text
    await node.start()
    try:
        await asyncio.wait_for(starting, WAIT)
        assert conn.connected and conn.node == f"127.0.0.1:{node.port}"
    finally:
        await conn.stop()
        await node.stop()


# -- losing the link ------------------------------------------------------------------------

async def until(predicate, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@aio_test
async def test_a_lost_link_moves_on_through_the_url_list_and_restores_the_endpoint(
        amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "bridge.amqp.connection")
    node = TcpProxy(URL(amqp_url).port or 0)
    await node.start()
    async with (
        amqp_connection([node.url_for(amqp_url), dead_url(), amqp_url],
                        reconnect=ReconnectPolicy(0.05, 0.1)) as conn,
        clu_client(amqp_url, "operator") as client,
    ):
        ep = await ActorEndpoint(conn, "camera", simple_handler).start()
        await node.stop()  # the node goes away
        await until(lambda: conn.losses == 1 and conn.connected)
        assert conn.node == conn.link_status()["nodes"][2]  # the dead one was skipped
        assert "AMQP failover: trying node" in caplog.text
        assert "reconnected to the AMQP broker on node" in caplog.text
        ping = await clu_command(client, "camera", "ping")
        await ep.stop()
    assert ping.status == CluStatus.DONE


@aio_test
async def test_a_queue_name_taken_during_the_outage_keeps_only_that_actor_down(
        amqp_url: str) -> None:
    """Two actors on one connection; while it is away another connection takes the
    first one's queue: on its return the second actor serves at once, the first is
    reported and comes back by itself once the name is free."""
    node = TcpProxy(URL(amqp_url).port or 0)
    await node.start()
    async with (
        amqp_connection([node.url_for(amqp_url)],
                        reconnect=ReconnectPolicy(0.1, 0.2, 2.0, 0.0)) as conn,
        amqp_connection(amqp_url) as other,
        clu_client(amqp_url, "operator") as client,
    ):
        shutter = await ActorEndpoint(conn, "shutter", simple_handler).start()
        camera = await ActorEndpoint(conn, "camera", simple_handler).start()
        await node.stop()
        thief = ActorEndpoint(other, "shutter", simple_handler)
        async with asyncio.timeout(WAIT):  # the name is free once the broker saw the loss
            while True:
                try:
                    await thief.start()
                    break
                except ActorNameInUse:
                    await asyncio.sleep(0.02)
        await node.start()
        await until(lambda: conn.connected)
        assert list(conn.queue_problems) == ["shutter_commands"]
        assert "owned by another connection" in conn.queue_problems["shutter_commands"]
        camera_ping = await clu_command(client, "camera", "ping")  # the rest serves
        thief_ping = await clu_command(client, "shutter", "ping")  # served by the other
        await thief.stop()  # the name is free again: retried with backoff
        await until(lambda: not conn.queue_problems)
        shutter_ping = await clu_command(client, "shutter", "ping")
        await shutter.stop()
        await camera.stop()
        await node.stop()
    assert camera_ping.status == thief_ping.status == shutter_ping.status == CluStatus.DONE


# -- the bridge -----------------------------------------------------------------------------

@aio_test
async def test_a_bridge_started_while_its_actors_name_is_held_serves_the_rest_and_retries(
        amqp_url: str) -> None:
    """A clu actor holds ``shutter`` when the bridge starts: the bridge comes up on the
    node that answers (the first URL is down), serves its control actor, reports the
    shutter in its status, and serves it by itself once the clu actor is gone."""
    from bridge.service.bridge import Bridge
    from bridge.service.config import parse_config
    from bridge.service.control import status_replies
    from tests.amqp.helpers import clu_actor

    examples = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"
    config = parse_config({
        "name": "retrybridge",
        "amqp": {"url": [dead_url(), amqp_url], "reconnect_initial": 0.1,
                 "reconnect_max": 0.5},
        "actors": {"shutter": {"lives": "local", "port": free_port(),
                               "spec": f"{examples / 'legacy_shutter.py'}:build_actor"}}})
    async with clu_client(amqp_url, "operator") as client:
        async with clu_actor(amqp_url, "shutter"):
            bridge = Bridge(config)
            await bridge.start()
            try:
                status = bridge.status()
                assert status["amqp"]["node"] == f"127.0.0.1:{URL(amqp_url).port}"
                shutter = next(a for a in status["actors"] if a["name"] == "shutter")
                assert "owned by another connection" in shutter["amqp_problem"]
                bodies = status_replies(status)
                assert {"actorProblem": ["shutter", shutter["amqp_problem"]]} in bodies
                assert any(b.get("amqpNode") == status["amqp"]["node"] for b in bodies)
                ping = await clu_command(client, "retrybridge", "ping")  # the rest serves
                assert ping.status == CluStatus.DONE
            except BaseException:
                await bridge.stop()
                raise
        try:  # the clu actor is gone: the bridge takes the name by itself
            async with asyncio.timeout(WAIT):
                while bridge.actors["shutter"].amqp_face is None:
                    await asyncio.sleep(0.05)
            status = await clu_command(client, "shutter", "status")
            assert status.status == CluStatus.DONE
            assert "amqp_problem" not in next(
                a for a in bridge.status()["actors"] if a["name"] == "shutter")
        finally:
            await bridge.stop()

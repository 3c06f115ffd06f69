"""AMQP -> legacy, hub mode: a real clu AMQPClient commands a real clu LegacyActor through
the bridge's AMQP face, the bridge's TronConnection and the REAL Tron hub (sdss-tron)."""

from __future__ import annotations

import asyncio

from bridge.legacy.tron import TronConnection
from bridge.relay.amqp_face import AmqpFace
from bridge.relay.hub_target import HubTarget, hub_commander
from tests.amqp.helpers import WAIT, amqp_connection, clu_client, wire_spy
from tests.support.aio import aio_test


def test_hub_commander_is_unique_per_bridge_and_parseable():
    assert hub_commander("bridge.one", "cluclient.shutter") == "bridge.one.cluclient.shutter"
    assert hub_commander("bridge.one", "shell_client_ab12.x-y") == "bridge.one.shell_client_ab12.x_y"
    assert hub_commander("bridge.one", "9a.b") == "bridge.one.c9a.b"
    assert hub_commander("bridge.one", None) == "bridge.one"


async def clu_send(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


@aio_test
async def test_clu_client_reaches_legacy_actor_through_real_tron(amqp_url, tron_hub,
                                                                  start_clu_shutter):
    start_clu_shutter(tron_hub=tron_hub)  # registers itself with `hub startNubs shutter`
    tron = TronConnection("127.0.0.1", tron_hub.port, commander="bridge.test")
    await tron.start(wait=True, timeout=10)
    hub = HubTarget(tron)
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "cluclient") as client, \
            wire_spy(amqp_url) as spy:
        face = AmqpFace(conn, "shutter", hub.for_actor("shutter"))
        await face.start()
        try:
            # The clu actor may still be registering: wait until the hub routes to it.
            for _ in range(50):
                ping = await clu_send(client, "shutter", "ping")
                if ping.status.did_succeed:
                    break
                await asyncio.sleep(0.2)
            assert ping.status.did_succeed, ping.replies[-1].message
            status = await clu_send(client, "shutter", "status")
            assert [r.message_code.value for r in status.replies] == [">", "i", ":"]
            info = status.replies[1].message
            assert info["limit_switches"] == [False, True] and info["motor_current"] == 0.125

            failed = await clu_send(client, "shutter", "fail_me")
            assert failed.status.did_fail
            assert failed.replies[-1].message == {"error": "fail_me always fails"}

            # Unknown actor through the hub: tron's NoTarget, at once.
            nobody = AmqpFace(conn, "nobody", hub.for_actor("nobody"))
            await nobody.start()
            try:
                miss = await clu_send(client, "nobody", "status")
                assert miss.status.did_fail
                assert "nobody" in str(miss.replies[-1].message)
            finally:
                await nobody.stop()

            # Another hub commander's command: its replies are mirrored as broadcasts.
            reader, writer = await asyncio.open_connection("127.0.0.1", tron_hub.port)
            writer.write(b"other.user 77 shutter echo from the hub\n")
            found = await spy.wait_for(lambda m: m.routing_key == "reply.broadcast"
                                       and b"from" in m.body)
            assert found[0].headers["sender"] == "shutter"
            writer.close()
        finally:
            await face.stop()
            await tron.stop()


@aio_test
async def test_hub_gone_fails_commands_at_once(amqp_url, tron_hub, start_clu_shutter):
    start_clu_shutter(tron_hub=tron_hub)
    tron = TronConnection("127.0.0.1", tron_hub.port, commander="bridge.test")
    await tron.start(wait=True, timeout=10)
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "cluclient") as client:
        face = AmqpFace(conn, "shutter", HubTarget(tron).for_actor("shutter"))
        await face.start()
        try:
            slow = await client.send_command("shutter", "slow 30", await_command=False)
            await asyncio.sleep(0.5)
            tron_hub.kill()
            slow = await asyncio.wait_for(slow, WAIT)
            assert slow.status.did_fail
            down = await clu_send(client, "shutter", "status")
            assert down.status.did_fail and "Not connected" in down.replies[-1].message["error"]
        finally:
            await face.stop()
            await tron.stop()

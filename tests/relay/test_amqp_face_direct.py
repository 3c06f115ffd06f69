"""AMQP -> legacy, direct mode: a real clu AMQPClient commands a real clu LegacyActor
(subprocess) through the bridge's AMQP face, over a real RabbitMQ."""

from __future__ import annotations

import asyncio

from bridge.legacy.actor_link import ActorLink
from bridge.relay.amqp_face import AmqpFace
from tests.amqp.helpers import WAIT, amqp_connection, clu_client, commander, wire_spy
from tests.support.aio import aio_test


async def clu_send(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


async def face_for(conn, port, **kw):
    link = ActorLink("shutter", "127.0.0.1", port, max_delay=0.5)
    await link.start(wait=True)
    face = AmqpFace(conn, "shutter", link, **kw)
    await face.start()
    return link, face


@aio_test
async def test_clu_client_commands_legacy_actor_through_the_bridge(amqp_url, clu_shutter):
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "cluclient") as client, \
            wire_spy(amqp_url) as spy:
        link, face = await face_for(conn, clu_shutter.port)
        try:
            status = await clu_send(client, "shutter", "status")
            assert status.status.did_succeed
            codes = [r.message_code.value for r in status.replies]
            assert codes == [">", "i", ":"]
            info = status.replies[1].message
            assert info["shutter"] == "closed" and info["limit_switches"] == [False, True]
            assert info["motor_current"] == 0.125 and info["shutter_moves"] == 0
            assert info["controller"] == "Bonn shutter v2 (fake)"

            failed = await clu_send(client, "shutter", "fail_me")
            assert failed.status.did_fail
            assert failed.replies[-1].message == {"error": "fail_me always fails"}

            opened = await clu_send(client, "shutter", "open")
            assert opened.replies[-1].message == {"shutter": "open", "shutter_moves": 1}

            # The wire looks like a clu actor's: reply.<commander_id>, sender, ids, text/json.
            (msg,) = await spy.wait_for(
                lambda m: m.correlation_id == str(opened.command_id)
                and m.headers.get("message_code") == ":")
            assert msg.routing_key == "reply.cluclient.shutter"
            assert msg.content_type == "text/json"
            assert msg.headers["sender"] == "shutter"
            assert msg.headers["commander_id"] == "cluclient.shutter"
            assert msg.headers["command_id"] == str(opened.command_id)
        finally:
            await face.stop()
            await link.stop()


@aio_test
async def test_unsolicited_legacy_output_is_broadcast(amqp_url, clu_shutter):
    async with amqp_connection(amqp_url) as conn, wire_spy(amqp_url) as spy:
        link, face = await face_for(conn, clu_shutter.port)
        try:
            # A second legacy client connecting makes clu broadcast "0 0 i UserInfo=...".
            _, writer = await asyncio.open_connection("127.0.0.1", clu_shutter.port)
            found = await spy.wait_for(lambda m: m.routing_key == "reply.broadcast"
                                       and b"UserInfo" in m.body)
            writer.close()
            headers = found[0].headers
            assert headers["sender"] == "shutter" and headers["message_code"] == "i"
            assert headers["commander_id"] is None and headers["command_id"] is None
        finally:
            await face.stop()
            await link.stop()


@aio_test
async def test_actor_down_or_killed_mid_command_fails_at_once(amqp_url, clu_shutter):
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "cluclient") as client:
        link, face = await face_for(conn, clu_shutter.port)
        try:
            slow = await client.send_command("shutter", "slow 30", await_command=False)
            await asyncio.sleep(0.3)
            clu_shutter.kill()
            slow = await asyncio.wait_for(slow, WAIT)
            assert slow.status.did_fail
            assert "Lost connection to actor shutter" in slow.replies[-1].message["error"]
            down = await clu_send(client, "shutter", "status")
            assert down.status.did_fail
            assert down.replies[-1].message == {"error": "Actor shutter is not connected."}
            assert face.in_flight == 0 and link.in_flight == 0
        finally:
            await face.stop()
            await link.stop()


@aio_test
async def test_get_schema_is_answered_from_the_dictionary_schema(amqp_url, clu_shutter):
    schema = {"type": "object", "properties": {"shutter": {"type": "string"}},
              "additionalProperties": True}
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "cluclient") as client:
        link, face = await face_for(conn, clu_shutter.port, schema=schema)
        try:
            got = await clu_send(client, "shutter", "get_schema")
            import json
            assert json.loads(got.replies[-1].message["schema"]) == schema
        finally:
            await face.stop()
            await link.stop()


@aio_test
async def test_a_burst_beyond_the_publish_window_arrives_complete_and_in_order(amqp_url):
    """Our LegacyActor writes 500 ``i`` lines at once: far more than the face publishes
    unconfirmed at a time (PUBLISH_WINDOW); every one reaches the AMQP commander, in order,
    then the ``:``; and a second command runs normally after it."""
    from bridge.bench.peers.our_shutter import build
    from bridge.relay.amqp_face import PUBLISH_WINDOW

    n = 8 * PUBLISH_WINDOW
    actor = await build("spammer", 0).start()
    async with amqp_connection(amqp_url) as conn, commander(amqp_url, "burst") as cmdr:
        link = ActorLink("spammer", "127.0.0.1", actor.port, max_delay=0.5)
        await link.start(wait=True)
        face = AmqpFace(conn, "spammer", link)
        await face.start()
        try:
            for _ in range(2):
                handle = await cmdr.send_command("spammer", f"spam {n}")
                await asyncio.wait_for(handle, WAIT)
                assert handle.succeeded
                codes = [r.code for r in handle.replies]
                assert codes == [">"] + ["i"] * n + [":"]
                assert [r.json["spam_index"] for r in handle.replies[1:-1]] == list(range(n))
                assert handle.replies[-1].json == {"spam_count": n}
            assert face.in_flight == 0 and face.counters["replies"] == 2 * (n + 2)
        finally:
            await face.stop()
            await link.stop()
            await actor.stop()

"""Every commander sees every reply of a legacy actor, whichever side commanded it (as
with tron): a legacy actor served directly by the bridge, commanded from AMQP and from
the hub port. The replies to AMQP commands reach hub-port commanders as ``.<actor> 0``
lines (like an AMQP actor's replies to other commanders); the replies to hub-port
commands reach AMQP clients on ``reply.broadcast`` (as in hub mode). Nobody gets a
reply twice."""

from __future__ import annotations

import asyncio

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import WAIT, clu_client, wire_spy
from tests.faults.helpers import in_flight, until
from tests.hub.helpers import RawCommander, header
from tests.support.aio import aio_test
from tests.support.ports import free_port


@aio_test
async def test_replies_to_one_side_are_seen_on_the_other(amqp_url, clu_shutter):
    hub_port = free_port()
    config = parse_config({"name": "crossbridge", "hub": {"port": hub_port},
                           "actors": {"shutter": {"lives": "legacy", "port": clu_shutter.port}}})
    async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "operator") as client, \
            wire_spy(amqp_url) as spy:
        await bridge.router.target("shutter").start(wait=True, timeout=WAIT)
        watcher = await RawCommander.connect(hub_port, "cross.watcher")
        try:
            # (The hub's own start-up commands to the actor are mirrored too: wait them out.)
            await until(lambda: not in_flight(bridge), "the hub's init commands")
            await watcher.quiet()
            await asyncio.sleep(0.3)
            before = len(spy.messages)

            def shutter_broadcasts() -> list:
                return [m for m in spy.messages[before:] if m.routing_key == "reply.broadcast"
                        and m.headers.get("sender") == "shutter"]

            # An AMQP client's command: its replies go to it, and hub commanders see them.
            cmd = await asyncio.wait_for(
                await client.send_command("shutter", "status", await_command=False), WAIT)
            amqp_codes = [r.message_code.value for r in cmd.replies]
            assert amqp_codes[-1] == ":"
            seen = await watcher.read_until(lambda l: header(l)[:4] == (
                ".shutter", "0", "shutter", ":"))
            mirrored = [l for l in seen if header(l)[:3] == (".shutter", "0", "shutter")]
            assert [header(l)[3] for l in mirrored] == amqp_codes
            assert any("shutter=" in l for l in mirrored)  # the status keywords themselves
            # ... and not a second time as a broadcast on AMQP.
            await asyncio.sleep(0.3)
            assert shutter_broadcasts() == []

            # A hub commander's command: its replies go to the hub (once), and AMQP clients
            # see them on reply.broadcast.
            lines = await watcher.call("shutter", "status")
            hub_codes = [header(l)[3] for l in lines]
            assert hub_codes[-1] == ":" and len(hub_codes) == len(amqp_codes)
            await until(lambda: len(shutter_broadcasts()) >= len(hub_codes), "the broadcasts")
            extra = await watcher.quiet()
            assert [l for l in extra if header(l)[0] == ".shutter"] == []  # not mirrored back
            broadcasts = shutter_broadcasts()  # each once
            assert [m.headers["message_code"] for m in broadcasts] == hub_codes
            assert all(m.headers["commander_id"] is None for m in broadcasts)
        finally:
            await watcher.close()


@aio_test
async def test_an_amqp_actors_replies_to_the_hub_port_reach_its_legacy_face(
        amqp_url, start_clu_camera):
    """The same for an AMQP actor served on a legacy face: a hub-port commander's command
    and a face client's command go through the same AMQP target; each side sees the
    other's replies (cid 0 lines on the face, ``.camera 0`` lines on the hub port), once."""
    from tests.relay.test_legacy_face import LegacyClient

    start_clu_camera(amqp_url)
    hub_port, face_port = free_port(), free_port()
    config = parse_config({"name": "crossbridge2", "hub": {"port": hub_port}, "actors": {
        "camera": {"lives": "amqp", "legacy_port": face_port}}})
    async with Bridge(config, amqp_url) as bridge:
        await until(lambda: "camera" in bridge.hub_server.actor_names(), "the camera route")
        watcher = await RawCommander.connect(hub_port, "cross.watcher")
        client = await LegacyClient.connect(face_port)
        try:
            await client.line_matching(lambda l: "yourUserID=" in l)  # the face's greeting
            await watcher.quiet()
            # The hub commander's command: the face's client sees its replies as cid 0.
            lines = await watcher.call("camera", "ping")
            assert [header(l)[3] for l in lines] == [">", ":"]
            seen = await client.line_matching(lambda l: l.startswith("0 0 :"))
            assert seen == "0 0 : text=Pong.\n"
            # The face client's command: hub commanders see its replies as .camera 0 lines.
            replies = await client.command("APO.john 7 ping", 7)
            assert [r.code for r in replies] == [">", ":"]
            mirrored = await watcher.read_until(lambda l: header(l)[:4] == (
                ".camera", "0", "camera", ":"))
            assert mirrored[-1] == ".camera 0 camera : text=Pong."
            # Nobody gets its own replies a second time.
            extra = await watcher.quiet()
            assert [l for l in extra if header(l)[0] == ".camera"] == []
            await asyncio.sleep(0.3)
            client.writer.write(b"8 ping\n")
            rest = await client.command("9 ping", 9)
            assert rest[-1].code == ":"
            assert not [l for l in client.lines if l.startswith("0 0 : text=Pong.")][1:]
        finally:
            client.close()
            await watcher.close()

"""The assembled Bridge (service layer) with real peers: the seed scenario and both
directions in one process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import WAIT, clu_client, wire_spy
from tests.relay.test_legacy_face import LegacyClient
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def start_example(script: str, url: str, tmp_path, *args: str) -> ManagedProcess:
    proc = ManagedProcess([sys.executable, str(EXAMPLES / script), "--url", url, *args],
                          name=script, log_dir=tmp_path, cwd=EXAMPLES)
    proc.start()
    return proc


async def clu_send(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


@aio_test
async def test_seed_scenario_amqp_camera_drives_legacy_shutter(amqp_url, clu_shutter, tmp_path):
    config = parse_config({"name": "bridgeA", "actors": {
        "shutter": {"lives": "legacy", "port": clu_shutter.port}},
        "timeouts": {"publish": 4, "reply_hold": 7}})
    camera = start_example("camera_amqp.py", amqp_url, tmp_path)
    try:
        async with Bridge(config, amqp_url) as bridge, \
                clu_client(amqp_url, "observer") as client, wire_spy(amqp_url) as spy:
            await bridge.router.target("shutter").start(wait=True)
            # [timeouts] publish and reply_hold reach the commander and the face.
            face = bridge.actors["shutter"].amqp_face
            assert face is not None and bridge.commander is not None
            assert bridge.commander.publish_timeout == 4.0
            assert (face.endpoint.publish_timeout, face.endpoint.reconnect_wait) == (4.0, 7.0)
            assert bridge.control is not None
            control = bridge.control.endpoint
            assert (control.publish_timeout, control.reconnect_wait) == (4.0, 7.0)
            expose = await clu_send(client, "camera", "expose 0.1")
            assert expose.status.did_succeed, [r.message for r in expose.replies]
            messages = [r.message for r in expose.replies]
            assert {"shutter": "open"} in messages and {"shutter": "closed"} in messages
            assert messages[-1] == {"exposure_state": "idle", "text": "Exposure done"}
            # The shutter's own replies to the camera are on the wire for everyone.
            child = await spy.wait_for(lambda m: m.routing_key == "reply.camera.shutter"
                                       and m.headers["message_code"] == ":", count=2)
            assert all(m.headers["sender"] == "shutter" for m in child)
            status = bridge.status()
            (entry,) = status["actors"]
            assert entry["name"] == "shutter" and entry["state"] == "connected"
            assert entry["counters"]["commands"] == 2 and entry["in_flight"] == 0
    finally:
        camera.stop()


@aio_test
async def test_one_bridge_serves_both_directions_and_two_bridges_coexist(
        amqp_url, clu_shutter, start_clu_camera):
    start_clu_camera(amqp_url)
    face_port = free_port()
    cfg_a = parse_config({"name": "bridgeA", "actors": {
        "shutter": {"lives": "legacy", "port": clu_shutter.port},
        "camera": {"lives": "amqp", "legacy_port": face_port}}})
    # A second bridge on the same broker, serving a different actor, must not interfere.
    cfg_b = parse_config({"name": "bridgeB", "actors": {
        "camera": {"lives": "amqp", "legacy_port": free_port()}}})
    async with Bridge(cfg_a, amqp_url) as a, Bridge(cfg_b, amqp_url) as b, \
            clu_client(amqp_url, "cluclient") as client:
        await a.router.target("shutter").start(wait=True)
        legacy = await LegacyClient.connect(face_port)
        try:
            replies = await legacy.command("APO.john 4 expose 0 --no-sleep", 4)
            assert replies[-1].code == ":"
            moved = await clu_send(client, "shutter", "open")
            assert moved.status.did_succeed
            replies = await legacy.command("5 status", 5)
            assert replies[-1].code == ":"
        finally:
            legacy.close()
        assert a.status()["actors"][0]["counters"]["commands"] == 2
        assert b.status()["actors"][0]["counters"].get("commands", 0) == 0


@aio_test
async def test_mirror_scenario_legacy_camera_drives_amqp_shutter(amqp_url, tmp_path):
    """A legacy actor written with this package, hosted in the bridge, commands a clu AMQP
    actor; legacy clients and AMQP clients both drive it."""
    port = free_port()
    config = parse_config({"name": "bridgeM", "actors": {
        "camera": {"lives": "local", "port": port,
                   "spec": str(EXAMPLES / "legacy_camera.py") + ":build_actor"}}})
    shutter = start_example("shutter_amqp.py", amqp_url, tmp_path)
    try:
        async with Bridge(config, amqp_url) as bridge, \
                clu_client(amqp_url, "observer") as client, \
                wire_spy(amqp_url, binding="command.#") as spy:
            legacy = await LegacyClient.connect(port)
            try:
                replies = await legacy.command("APO.john 3 expose 0.1", 3)
                assert replies[-1].code == ":", legacy.lines
            finally:
                legacy.close()
            opened = await spy.wait_for(lambda m: m.routing_key == "command.shutter", count=2)
            assert opened[0].headers["commander_id"].endswith(".shutter")
            via_amqp = await clu_send(client, "camera", "expose 0.1")
            assert via_amqp.status.did_succeed, [r.message for r in via_amqp.replies]
            assert via_amqp.replies[-1].message["shutter_moves"] == 4
    finally:
        shutter.stop()


@aio_test
async def test_reload_gives_running_parts_the_new_timeouts(amqp_url, clu_shutter):
    """`[timeouts]` changed in the file reach faces, commander, control actor and hub port
    on reload, in place: no face is restarted (its clients stay connected)."""
    def config(timeouts):
        return parse_config({"name": "bridgeT", "hub": {"port": hub_port}, "timeouts": timeouts,
                             "actors": {
                                 "shutter": {"lives": "legacy", "port": clu_shutter.port},
                                 "lamp": {"lives": "legacy", "port": clu_shutter.port,
                                          "time_limit": 9},
                                 "camera": {"lives": "amqp", "legacy_port": camera_port}}})
    hub_port, camera_port = free_port(), free_port()
    async with Bridge(config({"command": 30, "publish": 4, "reply_hold": 7}), amqp_url) as bridge:
        shutter, lamp, camera = (bridge.actors[n] for n in ("shutter", "lamp", "camera"))
        faces = (shutter.amqp_face, lamp.amqp_face, camera.legacy_face)
        assert None not in faces and bridge.hub_server is not None
        assert bridge.control is not None and bridge.commander is not None
        diff = await bridge.reload(config({"command": 2, "publish": 5, "reply_hold": 8}))
        assert diff == {"added": [], "changed": [], "removed": []}
        assert (shutter.amqp_face, lamp.amqp_face, camera.legacy_face) == faces  # not restarted
        assert shutter.amqp_face.time_limit == 2 and camera.legacy_face.time_limit == 2
        assert lamp.amqp_face.time_limit == 9  # the actor's own limit wins
        assert bridge.hub_server.time_limit == 2
        assert bridge.commander.publish_timeout == 5
        for endpoint in (shutter.amqp_face.endpoint, lamp.amqp_face.endpoint,
                         bridge.control.endpoint):
            assert (endpoint.publish_timeout, endpoint.reconnect_wait) == (5, 8)
        # A reload without [timeouts] returns to the defaults (no command limit).
        await bridge.reload(config({}))
        assert shutter.amqp_face.time_limit is None and bridge.hub_server.time_limit is None
        assert bridge.commander.publish_timeout == 10
        assert (bridge.control.endpoint.publish_timeout,
                bridge.control.endpoint.reconnect_wait) == (10, 60)

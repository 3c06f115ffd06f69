"""The real Tron hub is restarted while the bridge commands an actor through it: the
command in flight fails at once, the TronConnection reconnects by itself (with backoff),
registers the bridge's legacy face again (``hub startNubs``), and AMQP commands to the
legacy actor behind the hub work again, as do hub commands to the AMQP actor."""

from __future__ import annotations

import asyncio
import logging

import pytest
from clu import CommandStatus as CluStatus

from bridge.legacy.tron import LOST_CONNECTION
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_client
from tests.faults.helpers import WAIT, logged_errors, no_leaks, record_figure, until
from tests.support.aio import aio_test
from tests.support.ports import LOOPBACK, free_port
from tests.support.tron_hub import reply_code

RECONNECT_BOUND = 60.0  # the backoff doubles up to 30 s; the measured figure is reported


async def clu_call(client, actor, text):
    cmd = await client.send_command(actor, text, await_command=False)
    return await asyncio.wait_for(cmd, WAIT)


def hub_call(hub, actor, text):
    """One command through the REAL hub (blocking; run it in a thread)."""
    with hub.commander(cid="faults.user") as commander:
        return commander.call(actor, text, WAIT)


@aio_test
async def test_tron_hub_restart(amqp_url, tron_hub, start_clu_shutter, start_clu_camera,
                                caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    shutter = start_clu_shutter()
    tron_hub.add_actor("shutter", LOOPBACK, shutter.port, boot=True)
    await asyncio.to_thread(tron_hub.start_nubs, "shutter")
    start_clu_camera(amqp_url)
    face_port = free_port()
    tron_hub.add_actor("camera", LOOPBACK, face_port)  # the bridge asks the hub to connect
    config = parse_config({"name": "hubbridge", "tron": {"port": tron_hub.port}, "actors": {
        "shutter": {"lives": "hub"},
        "camera": {"lives": "amqp", "legacy_port": face_port, "register": True}}})
    loop = asyncio.get_running_loop()
    async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "operator") as client:
        await bridge.tron.wait_connected(WAIT)
        await asyncio.to_thread(tron_hub.wait_actor_ready, "camera")
        assert (await clu_call(client, "shutter", "status")).status == CluStatus.DONE
        lines = await asyncio.to_thread(hub_call, tron_hub, "camera", "status")
        assert reply_code(lines[-1]) == ":", lines

        # In flight: AMQP -> bridge -> hub -> shutter, and hub -> bridge face -> camera.
        through_hub = await client.send_command("shutter", "slow 60", await_command=False)
        via_face = asyncio.ensure_future(asyncio.to_thread(
            hub_call, tron_hub, "camera", "expose 2"))
        await until(lambda: bridge.tron.commands_in_flight == 1
                    and bridge.actors["camera"].legacy_face.in_flight == 1,
                    "both commands running")

        stopped_at = loop.time()
        await asyncio.to_thread(tron_hub.stop)
        await asyncio.wait_for(through_hub, WAIT)
        fail_latency = loop.time() - stopped_at
        assert through_hub.status == CluStatus.FAILED
        assert through_hub.replies[-1].message["error"] == LOST_CONNECTION
        with pytest.raises(ConnectionError):
            await via_face  # its commander's hub went away
        # While the hub is down, commands through it fail at once.
        down = await clu_call(client, "shutter", "status")
        assert down.status == CluStatus.FAILED and "Not connected to the hub" in \
            down.replies[-1].message["error"]

        await asyncio.to_thread(tron_hub.start)  # boots the shutter's nub again
        started_at = loop.time()
        reconnect = await until(lambda: bridge.tron.connected, "the TronConnection",
                                timeout=RECONNECT_BOUND)
        # Registered again: the hub connects to the bridge's face by itself.
        await asyncio.to_thread(tron_hub.wait_actor_ready, "camera", RECONNECT_BOUND)
        registered = loop.time() - started_at
        ok = await clu_call(client, "shutter", "status")
        assert ok.status == CluStatus.DONE, [r.message for r in ok.replies]
        lines = await asyncio.to_thread(hub_call, tron_hub, "camera", "status")
        assert reply_code(lines[-1]) == ":", lines
        await no_leaks(bridge)  # also the face's command whose hub went away has ended
        assert bridge.status()["tron"]["state"] == "connected"
    assert logged_errors(caplog.records) == []
    record_figure("hub restart: f to the AMQP commander", round(fail_latency, 3), unit="s")
    record_figure("hub restart: TronConnection reconnected", round(reconnect, 3), unit="s",
                  note="from the hub process being up again (backoff 0.5 s doubling, cap 30 s)")
    record_figure("hub restart: legacy face registered again", round(registered, 3), unit="s",
                  note="from the hub process being up again")

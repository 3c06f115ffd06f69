"""Commanders that disconnect mid-command (legacy face, hub port, AMQP): the commands run
to their end, nothing leaks (every in-flight table returns to empty), nothing is logged
as an error, and the bridge keeps serving everyone else."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import pytest

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.faults.helpers import (
    WAIT,
    LineClient,
    RobustClient,
    code,
    code_of,
    in_flight,
    logged_errors,
    no_leaks,
    until,
)
from tests.hub.helpers import RawCommander, header
from tests.support.aio import aio_test
from tests.support.ports import free_port

SECONDS = 1.5  # how long the commands run after their commander left


@aio_test
async def test_commanders_leave_mid_command_and_nothing_leaks(
        amqp_url, start_clu_shutter, start_clu_camera, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    shutter = start_clu_shutter()
    start_clu_camera(amqp_url)
    hub_port, face_port = free_port(), free_port()
    config = parse_config({"name": "leavebridge", "hub": {"port": hub_port}, "actors": {
        "shutter": {"lives": "legacy", "port": shutter.port},
        "camera": {"lives": "amqp", "legacy_port": face_port}}})
    async with Bridge(config, amqp_url) as bridge:
        link = bridge.router.target("shutter")
        await link.start(wait=True, timeout=WAIT)
        await until(lambda: not in_flight(bridge), "the hub's init commands")

        face = await LineClient.connect(face_port)
        face.send(f"leaving.face 1 expose {SECONDS}")
        hub = await RawCommander.connect(hub_port, "leaving.hub")
        hub.send("shutter", f"slow {SECONDS}")
        hub.send("camera", f"expose {SECONDS}")
        conn = await aio_pika.connect(amqp_url)
        channel = await conn.channel()
        exchange = await channel.declare_exchange("sdss_exchange", type="topic",
                                                  auto_delete=True, durable=False)
        await exchange.publish(aio_pika.Message(
            b'{"command_string": "slow %.1f"}' % SECONDS, content_type="text/json",
            correlation_id="leaving-1",
            headers={"command_id": "leaving-1", "commander_id": "leaving_amqp.shutter",
                     "internal": False}), "command.shutter")

        # Every command has reached its actor; then each commander goes away.
        await until(lambda: link.in_flight == 2 and bridge.amqp_target.in_flight == 2,
                    "the four commands at their actors")
        tables = in_flight(bridge)
        assert tables["shutter amqp face"] == 1 and tables["camera legacy face"] == 1
        assert tables["hub port"] == 2, tables
        await face.close()
        await hub.close()
        await conn.close()

        # The commands end at their actors, their replies go nowhere, nothing is left.
        await no_leaks(bridge, timeout=SECONDS + WAIT)

        # Everyone else is still served, on every path.
        other = await LineClient.connect(face_port)
        client = await RobustClient("stayer").start(amqp_url)
        hub2 = await RawCommander.connect(hub_port, "staying.hub")
        try:
            assert code_of((await other.command("2 expose 0 --no-sleep", 2))[-1]) == ":"
            assert code(await client.call("shutter", "status")) == ":"
            assert header((await hub2.call("camera", "status"))[-1])[3] == ":"
            assert header((await hub2.call("shutter", "status"))[-1])[3] == ":"
        finally:
            await other.close()
            await client.stop()
            await hub2.close()
        await no_leaks(bridge)
        assert bridge.status()["amqp"]["connected"]
    assert logged_errors(caplog.records) == []

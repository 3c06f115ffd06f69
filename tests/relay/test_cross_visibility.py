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

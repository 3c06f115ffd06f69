"""A legacy actor is killed (SIGKILL) mid-command and restarted: its commands in flight
fail at once for every commander (AMQP and hub port), the bridge reconnects with
backoff, later commands work, and nothing is left in flight."""

from __future__ import annotations

import asyncio
import logging

import pytest
from clu import CommandStatus as CluStatus

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_client, wire_spy
from tests.faults.helpers import WAIT, in_flight, logged_errors, no_leaks, record_figure, until
from tests.hub.helpers import RawCommander, header
from tests.support.aio import aio_test
from tests.support.ports import free_port


async def clu_send(client, actor, text):
    return await client.send_command(actor, text, await_command=False)


@aio_test
async def test_actor_killed_mid_command_fails_everywhere_then_link_recovers(
        amqp_url, start_clu_shutter, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bridge")
    shutter = start_clu_shutter()
    hub_port = free_port()
    config = parse_config({"name": "crashbridge", "hub": {"port": hub_port},
                           "actors": {"shutter": {"lives": "legacy", "port": shutter.port}}})
    loop = asyncio.get_running_loop()
    async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "operator") as client, \
            wire_spy(amqp_url) as spy:
        link = bridge.router.target("shutter")
        await link.start(wait=True, timeout=WAIT)
        hub = await RawCommander.connect(hub_port, "crash.hubuser")
        try:
            await until(lambda: not in_flight(bridge), "the hub's init commands")
            assert (await asyncio.wait_for(await clu_send(client, "shutter", "ping"), WAIT)
                    ).status == CluStatus.DONE
            assert header((await hub.call("shutter", "ping"))[-1])[3] == ":"

            # One command from each kind of commander is running at the actor.
            amqp_cmd = await clu_send(client, "shutter", "slow 60")
            hub_mid = hub.send("shutter", "slow 60")
            await until(lambda: link.in_flight == 2, "both commands at the actor")
            killed_at = loop.time()
            await asyncio.to_thread(shutter.kill)

            await asyncio.wait_for(amqp_cmd, WAIT)
            amqp_latency = loop.time() - killed_at
            hub_lines = await hub.wait_for(hub_mid)
            hub_latency = loop.time() - killed_at
            assert amqp_cmd.status == CluStatus.FAILED
            assert "Lost connection to actor shutter" in amqp_cmd.replies[-1].message["error"]
            assert header(hub_lines[-1])[3] == "f" and "Lost connection to actor shutter" \
                in hub_lines[-1]

            # While the actor is down, new commands fail at once, on both sides.
            down = await asyncio.wait_for(await clu_send(client, "shutter", "ping"), WAIT)
            assert down.status == CluStatus.FAILED
            assert down.replies[-1].message["error"] == "Actor shutter is not connected."
            down_lines = await hub.call("shutter", "ping")
            assert header(down_lines[-1])[3] == "f" and "NoTarget" in down_lines[-1]

            # Restarted on the same port: the link reconnects by itself (with backoff).
            restarted_at = loop.time()
            await asyncio.to_thread(shutter.restart)
            await until(lambda: link.connected, "the link to reconnect")
            reconnect = loop.time() - restarted_at
            ok = await asyncio.wait_for(await clu_send(client, "shutter", "status"), WAIT)
            assert ok.status == CluStatus.DONE
            await until(lambda: "shutter" in bridge.hub_server.actor_names(), "hub Actors")
            assert header((await hub.call("shutter", "status"))[-1])[3] == ":"

            # Exactly one terminal reply per command, on the wire and at the hub port.
            await asyncio.sleep(0.5)
            for cmd in (amqp_cmd, down, ok):
                ends = [m for m in spy.for_command(str(cmd.command_id))
                        if m.headers["message_code"] in (":", "f")]
                assert len(ends) == 1, [m.body for m in ends]
            ours = [header(l) for l in hub.lines if l.startswith("crash.hubuser ")]
            ends = [h[1] for h in ours if len(h) == 4 and h[3] in (":", "f")]
            assert sorted(ends) == sorted(set(ends)) and len(ends) == 4, ours
            await no_leaks(bridge)
        finally:
            await hub.close()
    assert logged_errors(caplog.records) == []
    record_figure("actor kill: f to the AMQP commander", round(amqp_latency, 3), unit="s")
    record_figure("actor kill: f to the hub-port commander", round(hub_latency, 3), unit="s")
    record_figure("actor restart: link reconnected", round(reconnect, 3), unit="s",
                  note="from the restart of the actor process (includes its start-up)")

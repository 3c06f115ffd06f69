"""`bridge check` exit codes in each state, with real peers: all well (0), an actor's link
down (1), the Tron hub gone (1), the broker stopped (2), nothing listening (2). The command
runs as a separate process, over AMQP, the hub port and HTTP."""

from __future__ import annotations

import asyncio
import json

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.service.helpers import bridge_cli, wait_until
from tests.support.aio import aio_test
from tests.support.ports import free_port


async def check(*args: str) -> tuple[int, str]:
    code, out, _err = await bridge_cli("check", *args)
    lines = out.splitlines()
    assert len(lines) == 1, out  # one line saying why
    return code, lines[0]


@aio_test
async def test_check_well_link_down_broker_stopped(amqp_url, rabbitmq, clu_shutter):
    hub_port = free_port()
    config = parse_config({"name": "checked", "http": {"port": 0}, "hub": {"port": hub_port},
                           "control": {"heartbeat": 0},
                           "actors": {"shutter": {"lives": "legacy", "port": clu_shutter.port}}})
    async with Bridge(config, amqp_url) as bridge:
        link = bridge.router.target("shutter")
        await link.start(wait=True)
        http = f"127.0.0.1:{bridge.monitoring.http.port}"

        code, line = await check("--amqp", amqp_url, "--name", "checked")
        assert code == 0 and line.startswith("OK: bridge checked: 1 actor(s) linked"), line
        code, line = await check("--hub", f"127.0.0.1:{hub_port}", "--name", "checked")
        assert code == 0 and line.startswith("OK: bridge checked:"), line
        code, line = await check("--http", http, "--json")
        body = json.loads(line)
        assert (code, body["status"], body["code"], body["name"]) == (0, "ok", 0, "checked")
        assert body["facts"]["actors"][0]["link"] == "connected"

        clu_shutter.stop()
        await wait_until(lambda: link.state != "connected", what="the link down")
        code, line = await check("--amqp", amqp_url, "--name", "checked")
        assert code == 1 and line.startswith("DEGRADED: bridge checked: actor shutter link "), line
        code, line = await check("--http", http)
        assert code == 1 and "actor shutter link" in line, line

        await asyncio.to_thread(rabbitmq.stop)
        try:
            await wait_until(lambda: not bridge.connection.connected, 60, "the broker loss")
            # A broadcast of the control actor now waits for the broker: held, and counted.
            held = asyncio.ensure_future(bridge.control.announce({"text": "held"}))
            await wait_until(lambda: bridge.connection.held_publishes == 1, what="held")
            code, line = await check("--http", http, "--json")
            body = json.loads(line)
            assert (code, body["status"]) == (2, "down") and body["reason"].startswith(
                "not connected to the AMQP broker"), line
            assert body["facts"]["amqp"]["held_publishes"] == 1
            code, line = await check("--amqp", amqp_url, "--name", "checked", "--timeout", "5")
            assert code == 2 and line == "DOWN: bridge checked: cannot connect to the AMQP broker"
            code, line = await check("--hub", f"127.0.0.1:{hub_port}", "--name", "checked",
                                     "--timeout", "5")
            assert code == 2 and line.startswith(
                "DOWN: bridge checked: its control actor did not answer"), line
        finally:
            await asyncio.to_thread(rabbitmq.start)
        await wait_until(lambda: bridge.connection.connected, 60, "the reconnection")
        await asyncio.wait_for(held, 60)  # published once the broker is back
        assert bridge.monitoring.facts()["amqp"]["reconnects"] == 1
        assert bridge.connection.held_publishes == 0

    code, line = await check("--http", f"127.0.0.1:{free_port()}")
    assert code == 2 and line.startswith("DOWN: bridge ?: cannot reach http://"), line
    code, line = await check("--amqp", amqp_url, "--name", "checked", "--timeout", "3")
    assert code == 2 and "control actor did not answer: Failed routing message" in line, line


@aio_test
async def test_check_tron_gone(amqp_url, tron_hub):
    config = parse_config({"name": "tronchecked", "http": {"port": 0},
                           "control": {"heartbeat": 0},
                           "tron": {"host": "127.0.0.1", "port": tron_hub.port}})
    async with Bridge(config, amqp_url) as bridge:
        await bridge.tron.wait_connected(10)
        http = f"127.0.0.1:{bridge.monitoring.http.port}"
        code, line = await check("--http", http)
        assert code == 0 and "Tron connected" in line, line

        await asyncio.to_thread(tron_hub.stop)
        await wait_until(lambda: bridge.tron.state != "connected", what="the hub loss")
        code, line = await check("--http", http)
        assert code == 1 and line.startswith(
            f"DEGRADED: bridge tronchecked: Tron hub 127.0.0.1:{tron_hub.port} "), line
        code, line = await check("--amqp", amqp_url, "--name", "tronchecked")
        assert code == 1 and "Tron hub" in line, line

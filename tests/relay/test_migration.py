"""The migration walk-through of examples/migration/ as a test: a legacy client keeps
commanding `shutter` through the hub port while the shutter moves from a legacy TCP actor
to a clu AMQP actor. No command is lost, none is answered twice, all succeed; only the
`controller` value changes."""

from __future__ import annotations

import asyncio
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

from bridge.protocol import keywords_to_json, parse_hub_reply
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.support.aio import aio_test
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = EXAMPLES / "migration"
COMMANDER = "walk.client"


def step(name: str, hub_port: int, shutter_port: int):
    data = tomllib.loads((STEPS / name).read_text())
    data["hub"]["port"] = hub_port
    if "port" in data["actors"]["shutter"]:
        data["actors"]["shutter"]["port"] = shutter_port
    return parse_config(data)


class HubClient:
    """Sends `shutter status` one after the other and records every reply line per mid."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.terminals: dict[int, list[str]] = defaultdict(list)
        self.controllers: dict[int, str] = {}
        self.failures: dict[int, str] = {}  # mid -> the line of a failure, for the report
        self.routes: list[str] = []
        self.done: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.sent = 0
        self.running = True

    async def read_forever(self):
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            reply = parse_hub_reply(raw.decode())
            if reply.actor == "hub" and reply.keywords and reply.keywords[0].name == "route":
                self.routes.append(raw.decode().strip())
            if reply.commander != COMMANDER:
                continue
            values = keywords_to_json(reply.keywords)
            if "controller" in values:
                self.controllers[reply.mid] = values["controller"]
            if reply.code in (":", "f", "F", "!"):
                self.terminals[reply.mid].append(reply.code)
                if reply.code != ":":
                    self.failures[reply.mid] = raw.decode().strip()
                self.done[reply.mid].set()

    async def command_forever(self):
        while self.running:
            self.sent += 1
            mid = self.sent
            self.writer.write(f"{COMMANDER} {mid} shutter status\n".encode())
            await asyncio.wait_for(self.done[mid].wait(), 20)
            await asyncio.sleep(0.02)


async def wait_until(predicate, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@aio_test
async def test_shutter_moves_from_legacy_to_amqp_while_a_client_commands_it(amqp_url, tmp_path):
    hub_port, shutter_port = free_port(), free_port()
    legacy = ManagedProcess([sys.executable, str(EXAMPLES / "legacy_shutter.py"), "--port",
                             str(shutter_port)], name="legacy-shutter", log_dir=tmp_path)
    amqp = ManagedProcess([sys.executable, str(EXAMPLES / "shutter_amqp.py"), "--url", amqp_url],
                          name="amqp-shutter", log_dir=tmp_path)
    legacy.start()
    bridge = Bridge(step("step1.toml", hub_port, shutter_port), amqp_url)
    await bridge.start()
    try:
        # The link connects in the background: until it is up, the hub port answers
        # "not connected" (as tron does), which is not what this test is about.
        await bridge.router.target("shutter").start(wait=True)
        client = HubClient(*await asyncio.open_connection("127.0.0.1", hub_port))
        reader = asyncio.ensure_future(client.read_forever())
        sender = asyncio.ensure_future(client.command_forever())
        await wait_until(lambda: len(client.terminals) >= 10)

        await bridge.reload(step("step2.toml", hub_port, shutter_port))
        await wait_until(lambda: len(client.terminals) >= 20)
        await asyncio.get_running_loop().run_in_executor(None, amqp.start)
        await wait_until(lambda: "clu AMQP shutter" in client.controllers.values())
        assert bridge.router.side("shutter") == "amqp"
        legacy.stop()
        seen = len(client.terminals)
        await wait_until(lambda: len(client.terminals) >= seen + 10)

        await bridge.reload(step("step3.toml", hub_port, shutter_port))
        seen = len(client.terminals)
        await wait_until(lambda: len(client.terminals) >= seen + 10)
        client.running = False
        await asyncio.wait_for(sender, 25)
        await asyncio.sleep(0.5)  # a late duplicate would arrive now
        reader.cancel()
        client.writer.close()
    finally:
        await bridge.stop()
        amqp.stop()
        legacy.stop()

    sent = client.sent
    assert sent >= 40
    assert sorted(client.terminals) == list(range(1, sent + 1)), "a command was lost"
    assert all(codes == [":"] for codes in client.terminals.values()), (
        {mid: codes for mid, codes in client.terminals.items() if codes != [":"]},
        client.failures)
    values = [client.controllers[mid] for mid in sorted(client.controllers)]
    switch = values.index("clu AMQP shutter")
    assert set(values[:switch]) == {"Bonn shutter v2 (fake)"}
    assert set(values[switch:]) == {"clu AMQP shutter"}  # one switch, never back and forth
    assert any(r.endswith("route=shutter,legacy,amqp") for r in client.routes)

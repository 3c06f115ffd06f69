"""The control actor's heartbeat: ``alive_at=<unix time>`` every N seconds on both sides, as a
clu ``reply.broadcast`` on AMQP and as an unsolicited line on the hub port."""

from __future__ import annotations

import time

from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import wire_spy
from tests.relay.test_legacy_face import LegacyClient
from tests.support.aio import aio_test
from tests.support.ports import free_port


@aio_test
async def test_alive_at_on_both_sides(amqp_url):
    hub_port = free_port()
    config = parse_config({"name": "beating", "hub": {"port": hub_port},
                           "control": {"heartbeat": 0.3}})
    before = time.time()
    async with wire_spy(amqp_url, "reply.broadcast") as spy, Bridge(config, amqp_url):
        hub = await LegacyClient.connect(hub_port)
        try:
            line = await hub.line_matching(lambda l: l.startswith(".beating 0 beating i alive_at="))
            beats = await spy.wait_for(lambda m: m.headers.get("sender") == "beating", count=2)
        finally:
            hub.close()
    stamp = float(line.strip().rsplit("=", 1)[1])
    assert before <= stamp <= time.time()
    bodies = [__import__("json").loads(m.body) for m in beats]
    assert all(set(b) == {"alive_at"} and before <= b["alive_at"] <= time.time() for b in bodies)
    assert bodies[1]["alive_at"] - bodies[0]["alive_at"] >= 0.25
    assert all(m.headers["message_code"] == "i" and m.headers["commander_id"] is None
               for m in beats)

"""Our hub port in front of an AMQP route: a clu AMQPActor (in process) over the real broker."""

from __future__ import annotations

import asyncio

from opscore.protocols.parser import ReplyParser

from bridge.amqp import AmqpCommander
from bridge.core import Route
from bridge.relay.amqp_target import AmqpTarget
from tests.amqp.helpers import amqp_connection, clu_actor, clu_client, clu_command
from tests.hub.helpers import RawCommander, code, running_hub
from tests.support.aio import aio_test


@aio_test
async def test_amqp_actor_behind_our_hub(amqp_url):
    async with amqp_connection(amqp_url) as conn, clu_actor(amqp_url, "camera") as camera:
        commander = AmqpCommander(conn, "hubtest")
        await commander.start()
        target = AmqpTarget(commander)
        try:
            async with running_hub([Route("camera", "amqp")],
                                   factories={"amqp": lambda route: target}) as hub:
                assert "camera" in hub.actor_names()
                a = await RawCommander.connect(hub.port, "a.b")
                b = await RawCommander.connect(hub.port, "other.person")

                assert await a.call("camera", "ping") == ["a.b 1 camera > ",
                                                          "a.b 1 camera : text=Pong."]
                failed = await a.call("camera", "fail_me")
                assert failed[1:] == ['a.b 2 camera i text="About to fail"',
                                      'a.b 2 camera f error="fail_me always fails"']
                typed = await a.call("camera", "values")
                assert code(typed[-1]) == ":" and 'name="Zoë"' in typed[1]
                for line in typed:
                    ReplyParser().parse(line)
                assert hub.cache.value("camera", "temp") == -1.5
                assert await a.call("hub", "startNubs camera") == [
                    'a.b 4 hub i text="(re-)starting nub camera"',
                    'a.b 4 hub w text="failed to start nub camera: actor camera is not a legacy '
                    'TCP actor (route: amqp)"', "a.b 4 hub : "]

                # The actor's broadcasts and its replies to other AMQP commanders: unsolicited.
                camera.write("i", {"text": "hello all"})
                for cmdr in (a, b):
                    await cmdr.read_until(lambda l: l == '.camera 0 camera i text="hello all"')
                async with clu_client(amqp_url, "someone") as other:
                    await clu_command(other, "camera", "ping")
                await a.read_until(lambda l: l == ".camera 0 camera : text=Pong.")
                assert hub.cache.value("camera", "text") == "Pong."

                # A command still running when the hub stops ends with one `f`.
                mid = a.send("camera", "hang")
                await a.read_until(lambda l: l == f"a.b {mid} camera > ")
                await hub.stop()
                lines = await a.read_until(lambda l: l.startswith(f"a.b {mid} camera f"))
                assert lines[-1] == f'a.b {mid} camera f error="hub is stopping."'
                await asyncio.wait_for(a.reader.read(), 10)
                await b.close()
        finally:
            await commander.stop()

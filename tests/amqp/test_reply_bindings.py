"""What a commander without ``hear_all`` (the bridge's) binds its replies queue to.

It must hear the replies of every command it sends (clu's default commander ids,
legacy chains, custom ids), broadcasts, and the traffic of the actors it was asked to
listen to; it must not hear replies to other actors' commanders, in particular not
the replies the bridge itself publishes for the legacy actors it serves (the echo that
cost the bridge as much CPU as relaying them).
"""

from __future__ import annotations

import asyncio

from bridge.amqp import AmqpCommander
from bridge.core import Reply
from bridge.protocol.clu_messages import replies_binding_for
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import WAIT, amqp_connection, clu_actor, clu_client, clu_command
from tests.faults.helpers import until
from tests.support.aio import aio_test


def test_replies_binding_for() -> None:
    assert replies_binding_for("bridge.camera", "camera") == "reply.#.camera"
    assert replies_binding_for("APO.john.camera", "camera") == "reply.#.camera"
    assert replies_binding_for("camera", "camera") == "reply.#.camera"
    assert replies_binding_for("ops", "camera") == "reply.ops"
    assert replies_binding_for("xcamera", "camera") == "reply.xcamera"
    assert replies_binding_for("a.#.b", "camera") == "reply.#"  # a pattern: hear everything
    assert replies_binding_for("a.*", "camera") == "reply.#"


@aio_test
async def test_narrow_commander_hears_its_commands_and_chosen_actors_only(amqp_url: str) -> None:
    heard: list[Reply] = []
    async with clu_actor(amqp_url, "camera"), clu_actor(amqp_url, "dome"), \
            clu_client(amqp_url, "other") as other, amqp_connection(amqp_url) as conn:
        cmdr = await AmqpCommander(conn, "narrow", hear_all=False).start()
        try:
            cmdr.add_reply_listener(heard.append)
            # Its own commands, whatever the commander id: each ends with its replies.
            for commander_id in (None, "APO.john.camera", "ops"):
                handle = await cmdr.send_command("camera", "ping", commander_id=commander_id)
                await asyncio.wait_for(handle, WAIT)
                assert handle.succeeded and [r.code for r in handle.replies] == [">", ":"]
            # Someone else's commands to an actor nobody asked to hear: not heard.
            before = len(heard)
            await clu_command(other, "dome", "ping")
            # ... while those to an actor it listens to are (what a legacy face mirrors).
            cmdr.listen_to("dome")
            await until(lambda: "reply.#.dome" in cmdr._bindings
                        and cmdr._bindings["reply.#.dome"].done(), "the binding")
            foreign = await clu_command(other, "dome", "ping")
            await until(lambda: any(r.command_id == str(foreign.command_id) and r.is_terminal
                                    for r in heard), "the listened actor's reply")
            assert not [r for r in heard[before:] if r.sender == "dome"
                        and r.command_id != str(foreign.command_id)]
            assert not cmdr.running
        finally:
            await cmdr.stop()


@aio_test
async def test_bridge_does_not_hear_its_own_relayed_replies(amqp_url: str,
                                                            start_clu_shutter) -> None:
    """A clu client commands a legacy actor through the bridge: the bridge publishes the
    replies, and its own commander's queue (bound narrowly) does not get them back.
    (The CI run of c67f5f0 failed here: the actor's hello broadcast was counted.)"""
    shutter = start_clu_shutter()
    config = parse_config({"name": "echobridge", "actors": {
        "shutter": {"lives": "legacy", "port": shutter.port}}})
    heard: list[Reply] = []
    async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "ops") as client:
        await bridge.router.target("shutter").start(wait=True, timeout=WAIT)
        bridge.commander.add_reply_listener(heard.append)
        done = await clu_command(client, "shutter", "status")
        assert done.status.did_succeed
        await asyncio.sleep(0.5)  # an echo would be here by now
        assert bridge.actors["shutter"].amqp_face.counters["replies"] >= 2
    # A broadcast (the actor's hello line, which may be relayed after the listener was
    # added) reaches every process bound to reply.broadcast, the bridge included (RabbitMQ
    # ignores no-local); what must not come back are the replies to commands.
    assert [r for r in heard if r.sender == "shutter" and r.commander is not None] == []

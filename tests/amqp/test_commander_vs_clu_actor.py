"""Our AmqpCommander commands a real clu AMQPActor (and behaves like clu's AMQPClient)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.core import CommandHandle, CommandStatus, Reply
from tests.amqp.helpers import (
    WAIT,
    clu_actor,
    clu_client,
    clu_command,
    commander,
    wire_shape,
    wire_spy,
)
from tests.support.aio import aio_test


async def run(handle: CommandHandle) -> CommandHandle:
    return await asyncio.wait_for(handle, WAIT)


@aio_test
async def test_ping(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(await cmdr.send_command("cluactor", "ping"))
    assert handle.done() and handle.succeeded and handle.status is CommandStatus.DONE
    assert [r.code for r in handle.replies] == [">", ":"]
    assert handle.replies[-1].json == {"text": "Pong."}
    first = handle.replies[0]
    assert first.sender == "cluactor" and first.internal is True
    assert first.commander == "bridgecmdr.cluactor" and first.command_id == handle.command_id
    assert (handle.actor, handle.text, handle.commander) == ("cluactor", "ping", "bridgecmdr.cluactor")
    assert not cmdr.running


@aio_test
async def test_submit_command_returns_at_once_and_publishes_in_a_task(amqp_url: str) -> None:
    seen: list[Reply] = []
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = cmdr.submit_command("cluactor", "ping", callback=seen.append)
        nobody = cmdr.submit_command("nobody", "ping")
        assert not handle.done() and not nobody.done() and handle.command_id in cmdr.running
        with pytest.raises(ValueError, match="already in flight"):
            cmdr.submit_command("cluactor", "ping", command_id=str(handle.command_id))
        assert (await handle.wait(WAIT)) is handle
        await nobody.wait(WAIT)
    assert handle.succeeded and [r.code for r in seen] == [">", ":"]
    assert nobody.failed and nobody.error == "Failed routing message to consumer 'nobody'."


@aio_test
async def test_command_headers_are_the_ones_clu_sends(amqp_url: str) -> None:
    """Our command on the wire looks like clu's AMQPClient's (spied on ``command.#``)."""
    names = {"bridgecmdr": "<client>", "cluclient": "<client>", "cluactor": "<actor>"}
    async with (
        wire_spy(amqp_url, binding="command.#") as spy,
        clu_actor(amqp_url, "cluactor"),
        commander(amqp_url, "bridgecmdr") as cmdr,
        clu_client(amqp_url, "cluclient") as client,
    ):
        ours = await run(await cmdr.send_command("cluactor", "levels"))
        theirs = await clu_command(client, "cluactor", "levels")
        (our_msg,) = await spy.wait_for(lambda m: m.correlation_id == ours.command_id)
        (their_msg,) = await spy.wait_for(lambda m: m.correlation_id == theirs.command_id)
    our_shape, their_shape = wire_shape(our_msg, names), wire_shape(their_msg, names)
    assert our_shape == their_shape
    assert our_shape["routing_key"] == "command.<actor>"
    assert our_shape["reply_to"] == "<client>_replies"
    assert our_shape["headers"] == {
        "command_id": "<id>", "commander_id": "<client>.<actor>", "internal": False,
        "write_to_log": True,
    }
    assert our_msg.body == b'{"command_string": "levels"}'


@aio_test
async def test_replies_reach_the_callback_in_order(amqp_url: str) -> None:
    seen: list[Reply] = []
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(await cmdr.send_command("cluactor", "levels", callback=seen.append))
    assert [r.code for r in seen] == [">", "d", "i", "w", "e", ":"]
    assert seen == handle.replies
    assert seen[2].json == {"text": "level i"}
    assert handle.succeeded


@aio_test
async def test_values_with_nan_are_decoded(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(await cmdr.send_command("cluactor", "values"))
    info = handle.replies[1].json
    assert info["bad"] != info["bad"]  # NaN
    assert info["name"] == "Zoë" and info["none"] is None and info["lst"] == [1, "a"]


@aio_test
async def test_failing_command(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(await cmdr.send_command("cluactor", "fail_me"))
        unknown = await run(await cmdr.send_command("cluactor", "no_such_verb"))
    assert handle.status is CommandStatus.FAILED and not handle.succeeded
    assert handle.error == "fail_me always fails"
    assert [r.code for r in handle.replies] == [">", "i", "f"]
    assert unknown.status is CommandStatus.FAILED
    assert "does not exist or cannot be parsed" in (unknown.error or "")


@aio_test
async def test_unknown_actor_fails_at_once_exactly_like_clu(amqp_url: str) -> None:
    names = {"bridgecmdr": "<client>", "cluclient": "<client>"}
    async with (
        wire_spy(amqp_url) as spy,
        commander(amqp_url, "bridgecmdr") as cmdr,
        clu_client(amqp_url, "cluclient") as client,
    ):
        handle = await cmdr.send_command("nobody", "ping")
        assert handle.done()  # already failed when send_command returns
        theirs = await clu_command(client, "nobody", "ping")
        (our_fake,) = await spy.wait_for(lambda m: m.correlation_id == handle.command_id)
        (their_fake,) = await spy.wait_for(lambda m: m.correlation_id == theirs.command_id)
    assert handle.status is CommandStatus.FAILED
    assert handle.error == "Failed routing message to consumer 'nobody'."
    assert handle.replies[-1].json == theirs.replies[-1].message
    assert wire_shape(our_fake, names) == wire_shape(their_fake, names)
    assert our_fake.routing_key == "reply.bridgecmdr"


@aio_test
async def test_listener_sees_broadcasts_and_other_commanders_traffic(amqp_url: str) -> None:
    heard: list[Reply] = []
    async with (
        clu_actor(amqp_url, "cluactor") as actor,
        commander(amqp_url, "bridgecmdr") as cmdr,
        clu_client(amqp_url, "cluclient") as client,
    ):
        cmdr.add_reply_listener(heard.append)
        actor.write("i", {"text": "hola"})
        other = await clu_command(client, "cluactor", "ping")
        mine = await run(await cmdr.send_command("cluactor", "ping"))
        await asyncio.sleep(0.1)
        cmdr.remove_reply_listener(heard.append)
        actor.write("i", {"text": "not heard"})
        await asyncio.sleep(0.1)
    broadcast = [r for r in heard if r.commander is None]
    assert [(r.json, r.commander, r.command_id, r.sender) for r in broadcast] == [
        ({"text": "hola"}, None, None, "cluactor")
    ]
    assert [r.code for r in heard if r.command_id == other.command_id] == [">", ":"]
    assert [r.code for r in heard if r.command_id == mine.command_id] == [">", ":"]
    assert all(r.commander == "cluclient.cluactor" for r in heard if r.command_id == other.command_id)


@aio_test
async def test_internal_flag_and_explicit_ids(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(
            await cmdr.send_command(
                "cluactor", "ping", commander_id="APO.Craig.cluactor", command_id="my-id-1",
                internal=True,
            )
        )
        with pytest.raises(ValueError):
            await cmdr.send_command("bad.name", "ping")
    assert handle.command_id == "my-id-1"
    assert all(r.internal for r in handle.replies)
    assert all(r.commander == "APO.Craig.cluactor" for r in handle.replies)


@aio_test
async def test_time_limit_fails_the_command_locally(amqp_url: str) -> None:
    async with clu_actor(amqp_url, "cluactor"), commander(amqp_url, "bridgecmdr") as cmdr:
        handle = await run(await cmdr.send_command("cluactor", "hang", time_limit=0.3))
        with pytest.raises(ValueError, match="already in flight"):
            running = await cmdr.send_command("cluactor", "hang", command_id="dup")
            await cmdr.send_command("cluactor", "ping", command_id="dup")
    assert handle.status is CommandStatus.FAILED
    assert "timed out after 0.3 s" in (handle.error or "")
    assert [r.code for r in handle.replies] == [">", "f"]
    assert handle.replies[-1].sender == "cluactor"
    # The commander was stopped with `running` in flight: it was failed, not left hanging.
    assert running.done() and "stopped" in (running.error or "")

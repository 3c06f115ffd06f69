"""A real clu AMQPClient commands our ActorEndpoint and a real clu AMQPActor side by side:
what arrives on the wire must be the same, apart from the actor's name and the ids."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from clu import CommandStatus as CluStatus

from tests.amqp.helpers import (
    WAIT,
    clu_actor,
    clu_client,
    clu_command,
    endpoint,
    raw_publisher,
    wire_shape,
    wire_spy,
)
from tests.support.aio import aio_test

NAMES = {"cluclient": "<client>", "bridged": "<actor>", "cluactor": "<actor>"}


async def compare(amqp_url: str, command: str, **kwargs: object) -> tuple[list, list, object, object]:
    """Send ``command`` to the clu actor and to our endpoint; return wire shapes + commands."""
    async with (
        wire_spy(amqp_url) as spy,
        clu_actor(amqp_url, "cluactor"),
        endpoint(amqp_url, "bridged"),
        clu_client(amqp_url, "cluclient") as client,
    ):
        theirs = await clu_command(client, "cluactor", command, **kwargs)
        ours = await clu_command(client, "bridged", command, **kwargs)
        their_wire = await spy.wait_terminal(theirs.command_id)
        our_wire = await spy.wait_terminal(ours.command_id)
    return (
        [wire_shape(m, NAMES) for m in their_wire],
        [wire_shape(m, NAMES) for m in our_wire],
        theirs,
        ours,
    )


@aio_test
async def test_ping_is_indistinguishable_from_a_clu_actor(amqp_url: str) -> None:
    theirs, ours, their_cmd, our_cmd = await compare(amqp_url, "ping")
    assert [s["headers"]["message_code"] for s in ours] == [">", ":"]
    assert ours == theirs
    assert our_cmd.status == their_cmd.status == CluStatus.DONE
    assert [r.message_code.value for r in our_cmd.replies] == [">", ":"]
    assert our_cmd.replies[-1].message == {"text": "Pong."}
    first = ours[0]
    assert first["routing_key"] == "reply.<client>.<actor>"
    assert first["headers"] == {
        "message_code": ">",
        "commander_id": "<client>.<actor>",
        "command_id": "<id>",
        "sender": "<actor>",
        "internal": True,
    }
    assert first["content_type"] == "text/json" and first["correlation_is_command_id"]
    assert first["has_timestamp"]


@aio_test
async def test_failing_command_is_indistinguishable(amqp_url: str) -> None:
    theirs, ours, their_cmd, our_cmd = await compare(amqp_url, "fail_me")
    assert [s["headers"]["message_code"] for s in ours] == [">", "i", "f"]
    assert ours == theirs
    assert our_cmd.status == their_cmd.status == CluStatus.FAILED
    assert our_cmd.replies[-1].message == {"error": "fail_me always fails"}


@aio_test
async def test_internal_command_with_every_level_is_indistinguishable(amqp_url: str) -> None:
    theirs, ours, _, our_cmd = await compare(amqp_url, "levels", internal=True)
    assert [s["headers"]["message_code"] for s in ours] == [">", "d", "i", "w", "e", ":"]
    assert all(s["headers"]["internal"] is True for s in ours)
    assert ours == theirs
    assert our_cmd.status == CluStatus.DONE  # `e` does not end a command


@aio_test
async def test_typed_values_and_nan_are_encoded_like_clu(amqp_url: str) -> None:
    theirs, ours, _, our_cmd = await compare(amqp_url, "values")
    assert ours == theirs  # includes the raw body bytes (NaN, key order, \u escapes)
    assert b"NaN" in ours[1]["body"]
    info = our_cmd.replies[1].message
    assert info["temp"] == -1.5 and info["bad"] != info["bad"] and info["name"] == "Zoë"


@aio_test
async def test_broadcast_is_indistinguishable(amqp_url: str) -> None:
    async with (
        wire_spy(amqp_url) as spy,
        clu_actor(amqp_url, "cluactor") as actor,
        endpoint(amqp_url, "bridged") as ep,
    ):
        actor.write("i", {"text": "hola"})
        await ep.broadcast("i", {"text": "hola"})
        got = await spy.wait_for(lambda m: m.routing_key == "reply.broadcast", count=2)
    theirs, ours = (wire_shape(m, NAMES) for m in got)
    assert theirs == ours
    assert ours["headers"] == {
        "message_code": "i", "commander_id": None, "command_id": None,
        "sender": "<actor>", "internal": False,
    }
    assert ours["correlation_id"] is None


@aio_test
async def test_binding_also_matches_longer_routing_keys(amqp_url: str) -> None:
    """``command.<actor>.#`` also receives ``command.<actor>.x`` (clu's binding)."""
    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged"),
        raw_publisher(amqp_url) as exchange,
    ):
        await exchange.publish(
            aio_pika.Message(
                b'{"command_string": "ping"}',
                headers={"command_id": "c1", "commander_id": "raw.bridged"},
                correlation_id="c1",
            ),
            routing_key="command.bridged.extra",
        )
        replies = await spy.wait_terminal("c1")
    assert [m.headers["message_code"] for m in replies] == [">", ":"]
    assert replies[-1].routing_key == "reply.raw.bridged"


@aio_test
async def test_commands_run_concurrently(amqp_url: str) -> None:
    """A command that waits does not hold up the next one (prefetch 1 is per delivery)."""
    release = asyncio.Event()

    async def handler(cmd) -> None:
        await cmd.reply(">")
        if cmd.command_string == "slow":
            await release.wait()
        await cmd.reply(":", {"text": cmd.command_string})

    async with endpoint(amqp_url, "bridged", handler), clu_client(amqp_url, "cluclient") as client:
        slow = await client.send_command("bridged", "slow", await_command=False)
        fast = await clu_command(client, "bridged", "fast")
        assert fast.status == CluStatus.DONE and not slow.status.is_done
        release.set()
        await asyncio.wait_for(slow, WAIT)
        assert slow.status == CluStatus.DONE


@aio_test
async def test_handler_exception_fails_the_command_once(amqp_url: str) -> None:
    async def handler(cmd) -> None:
        await cmd.reply(">")
        raise RuntimeError("boom")

    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged", handler),
        clu_client(amqp_url, "cluclient") as client,
    ):
        cmd = await clu_command(client, "bridged", "anything")
        await asyncio.sleep(0.2)  # a second terminal reply would arrive within this
        wire = spy.for_command(cmd.command_id)
    assert cmd.status == CluStatus.FAILED
    assert [m.headers["message_code"] for m in wire] == [">", "f"]
    assert "RuntimeError: boom" in cmd.replies[-1].message["error"]


@pytest.mark.filterwarnings("ignore::clu.CluWarning")  # clu's client on the late `i`
@aio_test
async def test_second_terminal_reply_is_dropped(amqp_url: str) -> None:
    results = []

    async def handler(cmd) -> None:
        results.append(await cmd.reply(":", {"text": "first"}))
        results.append(await cmd.reply("f", {"error": "second"}))
        results.append(await cmd.reply("i", {"text": "late info is still sent, as clu"}))

    async with (
        wire_spy(amqp_url) as spy,
        endpoint(amqp_url, "bridged", handler),
        clu_client(amqp_url, "cluclient") as client,
    ):
        cmd = await clu_command(client, "bridged", "x")
        await spy.wait_for(lambda m: m.correlation_id == cmd.command_id, count=2)
        await asyncio.sleep(0.1)
        wire = spy.for_command(cmd.command_id)
    assert results == [True, False, True]
    assert [m.headers["message_code"] for m in wire] == [":", "i"]
    assert cmd.status == CluStatus.DONE


@aio_test
async def test_stop_fails_unfinished_commands(amqp_url: str) -> None:
    started = asyncio.Event()

    async def handler(cmd) -> None:
        await cmd.reply(">")
        started.set()
        await asyncio.Event().wait()

    async with clu_client(amqp_url, "cluclient") as client:
        async with endpoint(amqp_url, "bridged", handler) as ep:
            cmd = await client.send_command("bridged", "hang", await_command=False)
            await asyncio.wait_for(started.wait(), WAIT)
            assert len(ep.in_flight) == 1
        await asyncio.wait_for(cmd, WAIT)
        assert cmd.status == CluStatus.FAILED
        assert "shutting down" in cmd.replies[-1].message["error"]
        # The queue is gone: clu's client now gets its routing failure.
        again = await clu_command(client, "bridged", "ping")
        assert again.status == CluStatus.FAILED
        assert again.replies[-1].message == {"error": "Failed routing message to consumer 'bridged'."}

"""Exactly one terminal reply: what a clu client does with a copy, what the bridge passes
on, and that the bridge never publishes a reply twice after a lost link.

An actor that answers a command twice is made here on purpose (the copy published by
hand), as a broker that re-delivered a reply, or a peer with a bug, would do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from clu import CommandStatus as CluStatus
from yarl import URL

from bridge.amqp import ActorEndpoint, AmqpChannel, AmqpCommander, AmqpConnection
from bridge.amqp.failover import ReconnectPolicy
from bridge.amqp.wire import reply_to_message
from bridge.protocol import parse_actor_reply
from bridge.protocol.clu_messages import ReplyMessage
from bridge.relay.amqp_target import AmqpTarget
from bridge.relay.legacy_face import LegacyFace
from tests.amqp.helpers import WAIT, amqp_connection, clu_client, clu_command
from tests.support.aio import aio_test
from tests.support.tcp_proxy import TcpProxy

TERMINAL = (":", "f")


def doubling_handler(channel_box: list[AmqpChannel]):  # type: ignore[no-untyped-def]
    """Finish each command with ``:``, then publish that reply a second time."""

    async def handle(cmd: Any) -> None:
        await cmd.finish({"text": "once"})
        copy = ReplyMessage.for_command(cmd.message, ":", {"text": "once"}, cmd.endpoint.name,
                                        None)
        await channel_box[0].publish(reply_to_message(copy), copy.routing_key())

    return handle


@aio_test
async def test_a_clu_client_shows_a_copy_of_a_terminal_reply(amqp_url: str) -> None:
    """Why the bridge must not publish a reply twice: clu 2.6 has no duplicate check.
    The command's future ends once, but the copy is appended to ``command.replies``
    (``set_status`` already ended the future, so clu never removes the command from
    ``running_commands``) and every reply callback (a GUI, a log) gets both copies."""
    async with amqp_connection(amqp_url) as conn, clu_client(amqp_url, "operator") as client:
        box = [await conn.open_channel()]
        camera = await ActorEndpoint(conn, "camera", doubling_handler(box)).start()
        seen: Counter[str] = Counter()
        client.add_reply_callback(
            lambda r: seen.update([str(r.command_id)]) if r.message_code in TERMINAL else None)
        command = await clu_command(client, "camera", "ping")
        async with asyncio.timeout(WAIT):
            while seen[str(command.command_id)] < 2:
                await asyncio.sleep(0.02)
        await camera.stop()
    assert command.status == CluStatus.DONE
    assert [r.message_code for r in command.replies].count(":") == 2
    assert str(command.command_id) in client.running_commands
    assert seen[str(command.command_id)] == 2


@aio_test
async def test_legacy_face_passes_on_one_terminal_reply_for_its_own_and_others_commands(
        amqp_url: str) -> None:
    async with (
        amqp_connection(amqp_url) as conn,
        amqp_connection(amqp_url) as bridge_conn,
        clu_client(amqp_url, "operator") as client,
    ):
        box = [await conn.open_channel()]
        camera = await ActorEndpoint(conn, "camera", doubling_handler(box)).start()
        commander = AmqpCommander(bridge_conn, "bridge_test", hear_all=False)
        await commander.start()
        face = LegacyFace("camera", AmqpTarget(commander))
        await face.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", face.port)
        try:
            writer.write(b"5 ping\n")  # the face's own command
            await clu_command(client, "camera", "ping")  # someone else's, mirrored
            await asyncio.sleep(1.0)  # both copies of both commands have arrived by now
            lines: list[str] = []
            while True:
                try:
                    raw = await asyncio.wait_for(reader.readline(), 0.3)
                except TimeoutError:
                    break
                if not raw:
                    break
                lines.append(raw.decode())
        finally:
            writer.close()
            await face.stop()
            await commander.stop()
            await camera.stop()
    terminals = [parse_actor_reply(line) for line in lines]
    terminals = [r for r in terminals if r.code in TERMINAL]
    own = [r for r in terminals if r.mid == 5]
    others = [r for r in terminals if r.mid != 5]
    assert len(own) == 1, lines
    assert len(others) == 1, lines  # the other commander's command, mirrored: once


@aio_test
async def test_a_reply_whose_confirm_was_lost_with_the_link_is_not_published_again(
        amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The node routes the reply, then the link dies before its confirm: the bridge
    must not publish it again after the reconnect (the client would get it twice)."""
    caplog.set_level(logging.ERROR, "bridge.amqp")
    node = TcpProxy(URL(amqp_url).port or 0)
    await node.start()
    release = asyncio.Event()

    async def slow(cmd: Any) -> None:
        await release.wait()
        await cmd.finish({"text": "late"})

    async with (
        amqp_connection([node.url_for(amqp_url)],
                        reconnect=ReconnectPolicy(0.1, 0.2)) as conn,
        clu_client(amqp_url, "operator") as client,
    ):
        endpoint = await ActorEndpoint(conn, "camera", slow).start()
        seen: Counter[str] = Counter()
        client.add_reply_callback(
            lambda r: seen.update([str(r.command_id)]) if r.message_code in TERMINAL else None)
        command = await client.send_command("camera", "go", await_command=False)
        await asyncio.sleep(0.3)  # the command is running in the endpoint
        node.mute_replies = True  # the broker's confirms no longer reach the bridge
        release.set()
        async with asyncio.timeout(WAIT):  # routed to the client: only the confirm is lost
            while not seen[str(command.command_id)]:
                await asyncio.sleep(0.02)
        await node.stop()  # the link dies with the confirm outstanding
        node.mute_replies = False
        await node.start()
        async with asyncio.timeout(WAIT):
            while not conn.connected:
                await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # a re-published copy would arrive now
        await endpoint.stop()
        await node.stop()
    assert (await asyncio.wait_for(command, WAIT)).status == CluStatus.DONE
    assert seen[str(command.command_id)] == 1
    assert "not re-published" in caplog.text

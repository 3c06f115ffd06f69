"""Replies and commands written as frames: the bytes aiormq would write, batched,
confirmed, in order.

``ReplyFrames`` encodes a clu reply from cached pieces; the bytes must be exactly those
pamqp marshals for the same message (what aiormq's ``basic_publish`` writes).
``CommandFrames`` encodes the commander's commands: the bytes must be those of the
``aio_pika.Message`` it published before (``command_to_message``, pamqp's marshal). The
writer puts the replies started in one loop turn into one write, and each reply still
gets its own confirm from the broker and arrives once, in order, with clu's headers.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from bridge.amqp import writer
from bridge.amqp.frames import CommandFrames, ReplyFrames, _Clock, new_message_id
from bridge.amqp.wire import command_to_message, incoming_reply
from bridge.protocol.clu_messages import EXCHANGE_NAME, CommandMessage, encode_json
from tests.amqp.helpers import WAIT, amqp_connection
from tests.support.aio import aio_test


def pamqp_reply(channel: int, routing_key: str, code: str, commander_id: str | None,
                command_id: str | None, sender: str, internal: bool, body: bytes,
                message_id: str, second: int) -> bytes:
    """The frames pamqp marshals for a clu reply (aio-pika's properties, aiormq's id)."""
    properties = spec.Basic.Properties(
        content_type="text/json",
        headers={"message_code": code, "commander_id": commander_id,
                 "command_id": command_id, "sender": sender, "internal": internal},
        delivery_mode=1, priority=0, correlation_id=command_id, message_id=message_id,
        timestamp=datetime.datetime.fromtimestamp(second, datetime.timezone.utc))
    frames = [spec.Basic.Publish(exchange=EXCHANGE_NAME, routing_key=routing_key),
              ContentHeader(0, len(body), properties), ContentBody(body)]
    return b"".join(pamqp_frame.marshal(frame, channel) for frame in frames)


@pytest.mark.parametrize("commander_id,command_id", [
    ("relaybench.ourshutter", "0b6f3c1e-8c4e-4f7e-9d59-2a3b4c5d6e7f"),
    ("APO.Zoë.camera", "7"),
    (None, None),  # a broadcast
])
@pytest.mark.parametrize("code,internal", [(">", True), ("i", False), (":", False),
                                           ("f", True), ("w", False)])
def test_reply_frames_equal_pamqps_marshal(commander_id: str | None, command_id: str | None,
                                           code: str, internal: bool) -> None:
    routing_key = f"reply.{commander_id}" if commander_id else "reply.broadcast"
    frames = ReplyFrames(EXCHANGE_NAME, routing_key, commander_id, command_id, "shutter")
    for body in ({}, {"text": "Zoë says \"hi\"", "n": [1, 2.5, None, True]}):
        data = json.dumps(body).encode()
        for channel in (1, 7):  # the publish frame is cached per channel number
            got = frames.encode(channel, code, internal, data, "ab" * 16)
            assert got == pamqp_reply(channel, routing_key, code, commander_id, command_id,
                                      "shutter", internal, data, "ab" * 16, _Clock.second)


def aio_pika_command(channel: int, max_content_size: int, command: CommandMessage,
                     message_id: str) -> bytes:
    """The frames of a command as the commander wrote them through aio-pika: its
    ``aio_pika.Message`` (``command_to_message``), aiormq's message id, pamqp's marshal
    of every frame (``writer.message_frames``, what ``AmqpChannel.publish`` writes)."""
    message = command_to_message(command)
    message.message_id = message_id
    return writer.message_frames(channel, max_content_size, EXCHANGE_NAME,
                                 f"command.{ACTOR}", message.body, message.properties,
                                 mandatory=True)


ACTOR = "shutter"
LONG = "set text=" + "Zoë \"q\" \\ \t ☃ 😀 " * 9000  # 369 kB of JSON: 3 frames of 131,064


@pytest.mark.parametrize("commander_id,command_id", [
    ("relaybench.shutter", "0b6f3c1e-8c4e-4f7e-9d59-2a3b4c5d6e7f"),
    ("APO.Zoë.camera.shutter", "7"),
    ("x.shutter", "Zoë-ünïcode-id-" + "9" * 200),
])
@pytest.mark.parametrize("command_string", [
    "ping", "status verbose", "say text=\"Zoë ☃\" \\ \x7f\x00 \ud800 end", LONG])
@pytest.mark.parametrize("internal,write_to_log", [(False, True), (True, False), (True, True)])
@pytest.mark.parametrize("reply_to", ["bridge_replies", None])
def test_command_frames_equal_the_aio_pika_path(commander_id: str, command_id: str,
                                                command_string: str, internal: bool,
                                                write_to_log: bool,
                                                reply_to: str | None) -> None:
    command = CommandMessage(command_id=command_id, commander_id=commander_id,
                             command_string=command_string, internal=internal,
                             write_to_log=write_to_log, reply_to=reply_to)
    assert command.body() == encode_json({"command_string": command_string})
    frames = CommandFrames(EXCHANGE_NAME, f"command.{ACTOR}", commander_id, reply_to)
    for channel in (1, 7, 1):  # the publish frame is cached per channel number
        for size in (131_064, 4_088, 64):  # frame_max - 8 (RabbitMQ's default), small ones
            message_id = new_message_id()
            got = frames.encode(channel, size, command_id, command.body(), message_id,
                                internal, write_to_log)
            assert got == aio_pika_command(channel, size, command, message_id)


def test_long_commands_span_body_frames() -> None:
    command = CommandMessage(command_id="1", commander_id="a.shutter", command_string=LONG)
    body = command.body()
    assert len(body) > 131_064
    data = CommandFrames(EXCHANGE_NAME, "command.shutter", "a.shutter", None).encode(
        1, 131_064, "1", body, "ab" * 16)
    frames, offset = [], 0
    while offset < len(data):
        used, _channel, frame = pamqp_frame.unmarshal(data[offset:])
        offset += used
        frames.append(frame)
    pieces = -(-len(body) // 131_064)
    assert pieces >= 2
    assert [type(f).__name__ for f in frames] == ["Publish", "ContentHeader"] + [
        "ContentBody"] * pieces
    assert frames[0].mandatory is True and frames[0].routing_key == "command.shutter"
    assert frames[1].body_size == len(body)
    assert frames[1].properties.reply_to is None and frames[1].properties.timestamp is None
    assert b"".join(f.value for f in frames[2:]) == body


def test_each_reply_gets_a_new_message_id() -> None:
    frames = ReplyFrames(EXCHANGE_NAME, "reply.a.b", "a.b", "1", "s")
    assert frames.encode(1, "i", False, b"{}") != frames.encode(1, "i", False, b"{}")


class _Collector:
    """Keeps what its consumer callback (:meth:`on_message`) receives; ``all_in``
    resolves at ``expected`` messages."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.received: list[DeliveredMessage] = []
        self.all_in: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_message(self, message: DeliveredMessage) -> None:
        self.received.append(message)
        if len(self.received) == self.expected and not self.all_in.done():
            self.all_in.set_result(None)


REPLIES = 200


@aio_test
async def test_replies_of_one_turn_share_a_write_and_each_is_confirmed_in_order(
    amqp_url: str,
) -> None:
    collector = _Collector(REPLIES)
    received, all_in, on_message = collector.received, collector.all_in, collector.on_message
    async with amqp_connection(amqp_url) as conn:
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("frames_test", ["reply.frames.#"], on_message,
                                              no_ack=True)
        underlay = writer.usable_channel(channel.channel)
        assert underlay is not None
        queue = underlay.write_queue
        items: list[Any] = []
        put_nowait = queue.put_nowait
        queue.put_nowait = lambda item: (items.append(item), put_nowait(item))[1]  # type: ignore[method-assign]
        try:
            frames = ReplyFrames(EXCHANGE_NAME, "reply.frames.test", "frames.test", "c1", "me")
            confirms = [channel.publish_frames_nowait(
                frames, "i" if i < REPLIES - 1 else ":", False,
                json.dumps({"index": i}).encode()) for i in range(REPLIES)]  # one turn
        finally:
            queue.put_nowait = put_nowait  # type: ignore[method-assign]
        assert all(c is not None for c in confirms)
        assert len(items) == 1, f"{REPLIES} replies of one turn took {len(items)} writes"
        results = await asyncio.wait_for(asyncio.gather(*confirms), WAIT)  # type: ignore[arg-type]
        assert all(isinstance(r, spec.Basic.Ack) for r in results)
        await asyncio.wait_for(all_in, WAIT)
        await conn.release_channel(channel)

    decoded = [incoming_reply(m) for m in received]
    assert [d.body["index"] for d in decoded] == list(range(REPLIES))  # in order, each once
    assert {(d.commander_id, d.command_id, d.sender, d.internal) for d in decoded} == {
        ("frames.test", "c1", "me", False)}
    assert [d.message_code for d in decoded] == ["i"] * (REPLIES - 1) + [":"]
    assert len({m.header.properties.message_id for m in received}) == REPLIES


@aio_test
async def test_replies_of_a_held_stretch_leave_in_one_socket_write(amqp_url: str) -> None:
    """``bridge.writes.held`` (a legacy read of several reply lines): the replies it
    publishes are one write on the socket, even the first of the turn (which would
    otherwise go out at once on its own), and each is confirmed and arrives in order."""
    from bridge import writes

    collector = _Collector(3)
    received, all_in, on_message = collector.received, collector.all_in, collector.on_message
    async with amqp_connection(amqp_url) as conn:
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("held_test", ["reply.held.#"], on_message,
                                              no_ack=True)
        underlay = writer.usable_channel(channel.channel)
        assert underlay is not None
        frame_writer = writer.writer_for(underlay)
        direct = frame_writer._direct
        assert direct is not None  # the bridge's connection: first writes go straight out
        await asyncio.sleep(0.05)  # a new turn, aiormq's writer idle
        writes_seen: list[bytes] = []

        def counted(data: bytes) -> bool:
            done = direct(data)
            if done:
                writes_seen.append(data)
            return done

        frame_writer._direct = counted
        queue = underlay.write_queue
        try:
            frames = ReplyFrames(EXCHANGE_NAME, "reply.held.test", "held.test", "c1", "me")
            with writes.held():
                confirms = [channel.publish_frames_nowait(
                    frames, code, False, json.dumps({"index": i}).encode())
                    for i, code in enumerate(">i:")]
                assert writes_seen == [] and queue.empty()
            assert len(writes_seen) == 1 and queue.empty()
        finally:
            frame_writer._direct = direct
        results = await asyncio.wait_for(asyncio.gather(*confirms), WAIT)  # type: ignore[arg-type]
        assert all(isinstance(r, spec.Basic.Ack) for r in results)
        await asyncio.wait_for(all_in, WAIT)
        await conn.release_channel(channel)
    assert [incoming_reply(m).body["index"] for m in received] == [0, 1, 2]


@pytest.mark.parametrize("channel,tag", [(1, 1), (4, 59), (65535, 2 ** 63 - 1)])
def test_ack_frame_equals_pamqps_marshal(channel: int, tag: int) -> None:
    assert writer.ack_frame(channel, tag) == pamqp_frame.marshal(
        spec.Basic.Ack(delivery_tag=tag), channel)


def test_reply_frames_of_many_commands_reuse_the_encoded_parts() -> None:
    """The Basic.Publish of a routing key is encoded once for every command's replies,
    and each command's frames are still exactly pamqp's."""
    a = ReplyFrames(EXCHANGE_NAME, "reply.x.y", "x.y", "1", "shutter")
    b = ReplyFrames(EXCHANGE_NAME, "reply.x.y", "x.y", "2", "shutter")
    assert a.publish_method(3) is b.publish_method(3)
    for frames, command_id in ((a, "1"), (b, "2")):
        data = frames.encode(3, ":", False, b"{}", "m" * 32)
        assert data == pamqp_reply(3, "reply.x.y", ":", "x.y", command_id, "shutter", False,
                                   b"{}", "m" * 32, _Clock.second)

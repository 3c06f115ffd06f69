"""The frame reader of the bridge's aiormq connections (``bridge.amqp.receiver``).

Every complete frame of one socket read is decoded at once; what aiormq's own reader
yields and raises, this one yields and raises: frames split across reads or several in
one read, heartbeats, the end of the stream between frames (end of iteration) or inside
a frame (``AMQPConnectionError``), socket errors, malformed frames (``InvalidFrameError``),
a protocol header where a frame belongs (``ProtocolSyntaxError``). Functional only: no
timing is asserted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import aiormq.connection
import pytest
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader, ProtocolHeader
from pamqp.heartbeat import Heartbeat

from bridge.amqp import receiver
from bridge.amqp.receiver import BatchFrameReceiver, FrameReader
from tests.amqp.helpers import WAIT, amqp_connection
from tests.support.aio import aio_test


def message_frames(channel: int, body: bytes, tag: int = 1) -> list[tuple[Any, bytes]]:
    """(frame, bytes) of one delivered message: method, content header, body (none for
    an empty body, as the broker sends it)."""
    frames = [spec.Basic.Deliver(consumer_tag="ctag", delivery_tag=tag, exchange="ex",
                                 routing_key="rk"),
              ContentHeader(0, len(body), spec.Basic.Properties(
                  content_type="text/json", headers={"message_code": "i"}))]
    if body:
        frames.append(ContentBody(body))
    return [(f, pamqp_frame.marshal(f, channel)) for f in frames]


async def drain(reader: FrameReader) -> list[Any]:
    """Take everything queued (no waiting): [(weight, channel, frame) or exception]."""
    got: list[Any] = []
    frames = BatchFrameReceiver(reader)
    while reader.frames:
        try:
            got.append(await frames.get_frame())
        except Exception as exc:  # noqa: BLE001 - the test compares it
            got.append(exc)
    return got


def new_reader(limit: int = 2 ** 16) -> FrameReader:
    return FrameReader(limit=limit, loop=asyncio.get_running_loop())


def assert_same(frame: Any, expected: Any) -> None:
    assert type(frame) is type(expected)
    assert pamqp_frame.marshal(frame, 0) == pamqp_frame.marshal(expected, 0)


@aio_test
async def test_several_frames_of_one_read_are_all_decoded() -> None:
    pieces = message_frames(3, b'{"a": 1}') + message_frames(5, b"x" * 300, tag=2)
    reader = new_reader()
    reader.feed_data(b"".join(raw for _, raw in pieces))
    got = await drain(reader)
    assert [(w, ch) for w, ch, _ in got] == [(len(raw), ch) for (_, raw), ch in
                                            zip(pieces, [3, 3, 3, 5, 5, 5])]
    for (_, _, frame), (expected, _) in zip(got, pieces):
        assert_same(frame, expected)
    assert reader.queued_bytes == 0


@pytest.mark.parametrize("step", [1, 2, 7, 8, 13, 100])
@aio_test
async def test_frames_split_across_reads_at_every_point(step: int) -> None:
    pieces = message_frames(1, json.dumps({"text": "é" * 50}).encode()) + \
        [(Heartbeat(), Heartbeat().marshal())] + message_frames(2, b"", tag=9)
    data = b"".join(raw for _, raw in pieces)
    reader = new_reader()
    got: list[Any] = []
    for i in range(0, len(data), step):
        reader.feed_data(data[i:i + step])
        got += await drain(reader)
    assert [type(f) for _, _, f in got] == [type(f) for f, _ in pieces]
    for (_, _, frame), (expected, _) in zip(got, pieces):
        assert_same(frame, expected)


@aio_test
async def test_a_heartbeat_is_a_frame_of_channel_zero() -> None:
    reader = new_reader()
    reader.feed_data(Heartbeat().marshal())
    [(weight, channel, frame)] = await drain(reader)
    assert (weight, channel, type(frame)) == (8, 0, Heartbeat)


@aio_test
async def test_end_of_stream_between_frames_ends_the_iteration() -> None:
    reader = new_reader()
    frames = BatchFrameReceiver(reader)
    reader.feed_data(Heartbeat().marshal())
    reader.feed_eof()
    got = [f async for f in frames]
    assert [type(f) for _, _, f in got] == [Heartbeat]


@aio_test
async def test_end_of_stream_while_waiting_for_a_frame_is_a_connection_error() -> None:
    """As aiormq's reader, whose ``readexactly(1)`` finds the stream short."""
    reader = new_reader()
    frames = BatchFrameReceiver(reader)
    reader.feed_data(Heartbeat().marshal())
    assert type((await frames.get_frame())[2]) is Heartbeat
    waiting = asyncio.ensure_future(frames.get_frame())
    await asyncio.sleep(0)
    assert not waiting.done()
    reader.feed_eof()
    with pytest.raises(AMQPConnectionError, match="unexpectedly closed"):
        await waiting


@aio_test
async def test_end_of_stream_inside_a_frame_is_a_connection_error() -> None:
    reader = new_reader()
    frames = BatchFrameReceiver(reader)
    data = message_frames(1, b"body")[0][1]
    reader.feed_data(data[:-3])
    waiting = asyncio.ensure_future(frames.get_frame())
    await asyncio.sleep(0)
    assert not waiting.done()  # an incomplete frame is not delivered
    reader.feed_eof()
    with pytest.raises(AMQPConnectionError, match="unexpectedly closed"):
        await waiting


@aio_test
async def test_a_waiting_reader_gets_the_frame_when_it_completes() -> None:
    reader = new_reader()
    frames = BatchFrameReceiver(reader)
    data = Heartbeat().marshal() + message_frames(4, b"late")[0][1]
    reader.feed_data(data[:10])
    assert type((await frames.get_frame())[2]) is Heartbeat
    waiting = asyncio.ensure_future(frames.get_frame())
    await asyncio.sleep(0)
    assert not waiting.done()
    reader.feed_data(data[10:])
    weight, channel, frame = await asyncio.wait_for(waiting, WAIT)
    assert (channel, type(frame)) == (4, spec.Basic.Deliver)


@pytest.mark.parametrize("error, text", [
    (ConnectionResetError(104, "reset"), "reset"),
    (ConnectionRefusedError(111, "refused"), "refused"),
    (OSError(5, "io"), "communication error"),
])
@aio_test
async def test_a_socket_error_is_a_connection_error_after_the_frames_read(
        error: OSError, text: str) -> None:
    reader = new_reader()
    reader.feed_data(Heartbeat().marshal())
    reader.set_exception(error)

    frames = BatchFrameReceiver(reader)
    first = await frames.get_frame()
    assert type(first[2]) is Heartbeat
    with pytest.raises(AMQPConnectionError, match=text) as caught:
        await frames.get_frame()
    assert caught.value.__cause__ is error


@aio_test
async def test_a_frame_without_its_end_byte_is_invalid_and_ends_decoding() -> None:
    good = Heartbeat().marshal()
    bad = bytearray(message_frames(1, b"x")[0][1])
    bad[-1] = 0
    reader = new_reader()
    reader.feed_data(good + bytes(bad) + good)
    reader.feed_data(good)  # ignored: nothing after a bad frame is decoded
    got = await drain(reader)
    assert type(got[0][2]) is Heartbeat
    assert isinstance(got[1], InvalidFrameError)
    assert len(got) == 2


@aio_test
async def test_a_frame_pamqp_cannot_decode_is_invalid() -> None:
    # A method frame of an unknown class/method id.
    payload = b"\x00\xff\x00\xff"
    raw = b"\x01\x00\x01" + len(payload).to_bytes(4, "big") + payload + b"\xce"
    reader = new_reader()
    reader.feed_data(raw)
    [error] = await drain(reader)
    assert isinstance(error, InvalidFrameError)


@aio_test
async def test_a_protocol_header_instead_of_the_first_frame_is_a_syntax_error() -> None:
    reader = new_reader()
    reader.feed_data(ProtocolHeader().marshal())
    [error] = await drain(reader)
    assert isinstance(error, ProtocolSyntaxError)


class _Transport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


@aio_test
async def test_reading_pauses_while_many_decoded_frames_wait_and_resumes_when_taken() -> None:
    reader = new_reader(limit=1000)
    transport = _Transport()
    reader.set_transport(transport)  # type: ignore[arg-type]
    body = message_frames(1, b"y" * 600)
    reader.feed_data(b"".join(raw for _, raw in body))  # > 2 x limit? not yet
    assert transport.calls == []
    reader.feed_data(b"".join(raw for _, raw in body) * 2)
    assert transport.calls == ["pause"]
    got = await drain(reader)
    assert len(got) == 9
    assert transport.calls == ["pause", "resume"]


@aio_test
async def test_other_readers_keep_aiormqs_own_receiver() -> None:
    receiver.install()
    loop = asyncio.get_running_loop()
    plain = aiormq.connection.FrameReceiver(asyncio.StreamReader(loop=loop))
    ours = aiormq.connection.FrameReceiver(FrameReader(loop=loop))
    assert type(plain) is receiver._AiormqFrameReceiver
    assert type(ours) is BatchFrameReceiver


@aio_test
async def test_the_bridges_connection_receives_through_the_frame_reader(amqp_url: str
                                                                         ) -> None:
    """Messages, confirms and consumer frames arrive through BatchFrameReceiver."""
    received: list[DeliveredMessage] = []
    all_in = asyncio.get_running_loop().create_future()
    count = 50

    async def on_message(message: DeliveredMessage) -> None:
        received.append(message)
        if len(received) == count and not all_in.done():
            all_in.set_result(None)

    async with amqp_connection(amqp_url) as conn:
        underlay = conn.robust_connection.transport.connection
        assert isinstance(underlay._transport_factory, receiver.FrameTransportFactory)
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("receiver_test", ["receiver.#"], on_message,
                                              no_ack=True)
        for i in range(count):
            await channel.publish(
                aio_pika.Message(json.dumps({"i": i, "pad": "z" * (i * 97)})
                                               .encode()), f"receiver.{i}")
        await asyncio.wait_for(all_in, WAIT)
        await conn.release_channel(channel)
    assert [json.loads(m.body)["i"] for m in received] == list(range(count))


@aio_test
async def test_a_plain_function_consumer_is_called_from_the_channel_reader_in_order(
        amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """No task per delivery: every call runs in the same task (the channel's reader); a
    callback that raises is logged and the deliveries after it still arrive."""
    received: list[int] = []
    tasks: set[Any] = set()
    all_in = asyncio.get_running_loop().create_future()
    count = 40

    def on_message(message: DeliveredMessage) -> None:
        tasks.add(asyncio.current_task())
        i = json.loads(message.body)["i"]
        received.append(i)
        if len(received) == count and not all_in.done():
            all_in.set_result(None)
        if i == 7:
            raise RuntimeError("callback failure 7")

    async with amqp_connection(amqp_url) as conn:
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("inline_test", ["inline.#"], on_message,
                                              no_ack=True)
        for i in range(count):
            await channel.publish(aio_pika.Message(json.dumps({"i": i}).encode()),
                                  f"inline.{i}")
        await asyncio.wait_for(all_in, WAIT)
        await conn.release_channel(channel)
    assert received == list(range(count))
    assert len(tasks) == 1
    assert any("Consumer callback failed" in r.getMessage() and r.exc_info
               and "callback failure 7" in str(r.exc_info[1]) for r in caplog.records)

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
from twisted.internet.testing import StringTransport

from bridge import writes
from bridge.amqp import receiver
from bridge.amqp.receiver import BatchFrameReceiver, FrameReader
from bridge.legacy.framing import LineProtocol
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
    # From the socket's read callback (no task) when dispatched by the frame reader,
    # else from the channel's reader task: never a task per delivery.
    assert len(tasks - {None}) <= 1
    assert any("Consumer callback failed" in r.getMessage() and r.exc_info
               and "callback failure 7" in str(r.exc_info[1]) for r in caplog.records)


# -- frames dispatched by the reader itself ---------------------------------------------

class FakeChannel:
    """What :meth:`FrameReader._dispatch` uses of an aiormq channel."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        self.consumers: dict[str, Any] = {}
        #: aiormq's: done once the channel is closed (its ``is_closed``)
        self._closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.publisher_confirms = True
        self.confirmations: dict[int, asyncio.Future[Any]] = {}

    def _confirm_delivery(self, tag: int, frame: Any) -> None:  # as aiormq's, for an ack
        self.confirmations.pop(tag).set_result(frame)


class FakeConnection:
    def __init__(self, *channels: FakeChannel) -> None:
        self.channels = {c.number: c for c in channels}


async def waiting_readers(reader: FrameReader, *channels: FakeChannel) -> list[Any]:
    """Make aiormq's readers wait: the connection's for a frame, each channel's in get."""
    tasks = [asyncio.ensure_future(reader.wait_frames())]
    tasks += [asyncio.ensure_future(c.frames.get()) for c in channels]
    await asyncio.sleep(0)
    return tasks


def inline(received: list[Any], fail_on: bytes | None = None) -> Any:
    def fn(message: DeliveredMessage) -> None:
        received.append(message)
        if message.body == fail_on:
            raise RuntimeError("consumer failure")
    return aiormq.tools.awaitable(receiver.InlineConsumer(fn))


def wire(frames: list[tuple[Any, bytes]]) -> bytes:
    return b"".join(data for _, data in frames)


@aio_test
async def test_a_complete_delivery_goes_to_its_inline_consumer_at_once() -> None:
    reader, channel, received = new_reader(), FakeChannel(1), []
    channel.consumers["ctag"] = inline(received)
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    reader.feed_data(wire(message_frames(1, b'{"a": 1}')) + wire(message_frames(1, b"", 2)))
    assert [(m.delivery.delivery_tag, m.body) for m in received] == [(1, b'{"a": 1}'), (2, b"")]
    assert received[0].channel is channel and received[0].header.body_size == 8
    assert reader.dispatched == 5 and not reader.frames
    assert not any(t.done() for t in tasks)  # aiormq's readers never woke
    for t in tasks:
        t.cancel()


class _CountingTransport(StringTransport):
    """A transport that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


@aio_test
async def test_what_the_deliveries_of_one_read_write_to_a_legacy_peer_leaves_in_one_write(
        ) -> None:
    """Two deliveries in one read (a clu actor's ``>`` and ``:``) are handled in one
    held stretch: the two lines they make the bridge write to a legacy client leave in
    one write (one system call, one wake-up of the client); a read of one delivery
    writes at once, outside any stretch."""
    peer, transport = LineProtocol(), _CountingTransport()
    peer.makeConnection(transport)
    reader, channel, held = new_reader(), FakeChannel(1), []

    def relay(message: DeliveredMessage) -> None:
        held.append(writes.holding())
        peer.send_line(f"1 1 {message.body.decode()}")

    channel.consumers["ctag"] = aiormq.tools.awaitable(receiver.InlineConsumer(relay))
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    reader.feed_data(wire(message_frames(1, b">", 1)) + wire(message_frames(1, b":", 2)))
    assert held == [True, True]
    assert transport.writes == 1 and transport.value() == b"1 1 >\n1 1 :\n"
    reader.feed_data(wire(message_frames(1, b"i", 3)))
    assert held == [True, True, False]
    assert transport.writes == 2 and transport.value().endswith(b"\n1 1 i\n")
    for t in tasks:
        t.cancel()


@aio_test
async def test_what_cannot_be_dispatched_goes_to_aiormq_and_so_does_all_after_it() -> None:
    """A delivery split across reads, one to an ordinary consumer, frames behind one of
    those: all queued for aiormq's reader, in order."""
    reader, channel, received = new_reader(), FakeChannel(1), []
    channel.consumers["ctag"] = inline(received)
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    split = wire(message_frames(1, b"abc", 1))
    reader.feed_data(split[:-5])  # the body frame is incomplete
    reader.feed_data(split[-5:] + wire(message_frames(1, b"def", 2)))
    assert received == [] and reader.dispatched == 0
    await asyncio.sleep(0)
    got = await drain(reader)
    assert [type(f) for _, _, f in got] == [spec.Basic.Deliver, ContentHeader, ContentBody] * 2
    for t in tasks:
        t.cancel()


@aio_test
async def test_nothing_is_dispatched_past_frames_still_queued() -> None:
    reader, channel, received = new_reader(), FakeChannel(1), []
    channel.consumers["ctag"] = inline(received)
    reader.bind(FakeConnection(channel))
    reader.feed_data(wire(message_frames(1, b"x")))  # no reader waits: queued
    tasks = await waiting_readers(reader, channel)  # returns at once: frames are queued
    reader.feed_data(wire(message_frames(1, b"y", 2)))
    assert received == [] and len(reader.frames) == 6
    channel.frames.put_nowait("busy")  # the channel's reader has a frame to handle
    await drain(reader)
    reader._frame_waiter = asyncio.get_running_loop().create_future()  # waiting again
    reader.feed_data(wire(message_frames(1, b"z", 3)))
    assert received == [] and len(reader.frames) == 3
    for t in tasks:
        t.cancel()


@aio_test
async def test_a_delivery_to_an_ordinary_consumer_is_left_to_aiormq() -> None:
    reader, channel = new_reader(), FakeChannel(1)

    async def ordinary(message: DeliveredMessage) -> None:
        raise AssertionError("aiormq calls this, not the reader")

    channel.consumers["ctag"] = aiormq.tools.awaitable(ordinary)
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    reader.feed_data(wire(message_frames(1, b"x")))
    assert reader.dispatched == 0 and len(reader.frames) == 3
    for t in tasks:
        t.cancel()


@aio_test
async def test_a_consumer_that_raises_is_logged_and_the_next_delivery_still_arrives(
        caplog: pytest.LogCaptureFixture) -> None:
    reader, channel, received = new_reader(), FakeChannel(1), []
    channel.consumers["ctag"] = inline(received, fail_on=b"bad")
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    reader.feed_data(wire(message_frames(1, b"bad")) + wire(message_frames(1, b"ok", 2)))
    assert [m.body for m in received] == [b"bad", b"ok"]
    assert any("Consumer callback failed" in r.getMessage() and r.exc_info for r in caplog.records)
    for t in tasks:
        t.cancel()


@aio_test
async def test_publisher_confirms_are_resolved_at_once_single_and_multiple(
        caplog: pytest.LogCaptureFixture) -> None:
    reader, channel = new_reader(), FakeChannel(2)
    loop = asyncio.get_running_loop()
    futures = {tag: loop.create_future() for tag in (1, 2, 3, 4)}
    channel.confirmations.update(futures)
    reader.bind(FakeConnection(channel))
    tasks = await waiting_readers(reader, channel)
    reader.feed_data(pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=1), 2)
                     + pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=3, multiple=True), 2)
                     + pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=9), 2))
    assert [futures[t].done() for t in (1, 2, 3, 4)] == [True, True, True, False]
    assert isinstance(futures[3].result(), spec.Basic.Ack)
    assert reader.dispatched == 3 and not reader.frames
    assert any("Unexpected confirmation frame" in r.getMessage() for r in caplog.records)
    for t in tasks:
        t.cancel()


@aio_test
async def test_the_bridges_connection_dispatches_deliveries_and_confirms(amqp_url: str
                                                                          ) -> None:
    """On a real connection most deliveries and confirms skip aiormq's two reader tasks."""
    received: list[int] = []
    all_in = asyncio.get_running_loop().create_future()
    count = 30

    def on_message(message: DeliveredMessage) -> None:
        received.append(json.loads(message.body)["i"])
        if len(received) == count and not all_in.done():
            all_in.set_result(None)

    async with amqp_connection(amqp_url) as conn:
        factory = conn.robust_connection.transport.connection._transport_factory
        channel = await conn.open_channel()
        await channel.declare_exclusive_queue("dispatch_test", ["dispatch.#"], on_message,
                                              no_ack=True)
        for i in range(count):  # one at a time: each confirm awaited
            await channel.publish(aio_pika.Message(json.dumps({"i": i}).encode()),
                                  f"dispatch.{i}")
        await asyncio.wait_for(all_in, WAIT)
        dispatched = factory.bound.dispatched
        await conn.release_channel(channel)
    assert received == list(range(count))
    assert dispatched >= count  # at least a delivery's frames or a confirm per message

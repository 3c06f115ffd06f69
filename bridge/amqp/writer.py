"""Confirmed publishes written straight onto aiormq's write queue, several per socket write.

aiormq's ``Channel.basic_publish`` costs a coroutine, a lock, two timeouts, pamqp
objects and one queue item (one ``send`` system call) per message. :func:`publish`
does what it does with the channel's own state — the next delivery tag, a
confirmation future in ``channel.confirmations`` (resolved by aiormq's reader when the
broker acknowledges, rejected by aiormq when the channel closes), the message id for
returned mandatory messages — and hands the encoded frames to a :class:`FrameWriter`:
the messages published before aiormq's writer task next runs go out in one write.

Every publish of the bridge goes through here (:meth:`bridge.amqp.connection.AmqpChannel`),
so the order of the frames on a channel is the order of its delivery tags, which is
what the broker confirms by.
"""

from __future__ import annotations

import asyncio
import struct
import weakref
from collections.abc import Callable
from typing import Any

import aiormq
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from .. import writes
from .frames import new_message_id
from .receiver import direct_writer, socket_writer

__all__ = ["FrameWriter", "ack", "confirmation_future", "message_frames", "new_message_id",
           "publish", "publish_message", "usable_channel", "writer_for"]


class _Batch:
    """An item of aiormq's write queue that looks like its ``ChannelFrame``: the payload is
    every frame added until aiormq's writer task takes it (reads :attr:`payload`)."""

    __slots__ = ("parts", "taken")
    should_close = False
    should_drain = False
    drain_future = None

    def __init__(self, data: bytes) -> None:
        self.parts = [data]
        self.taken = False

    @property
    def payload(self) -> bytes:
        self.taken = True
        data = b"".join(self.parts)
        self.parts = []
        return data

    def drain(self) -> None:
        """Nothing waits for a batch to be written."""

    def __repr__(self) -> str:
        return f"<frame batch of {len(self.parts)} taken={self.taken}>"


class FrameWriter:
    """Appends frames to one aiormq connection's write queue (one per queue).

    On a connection opened by :mod:`bridge.amqp.receiver`'s transport factory the first
    write of an event-loop turn goes straight onto the socket when aiormq's writer task
    is idle with nothing queued (:func:`~bridge.amqp.receiver.direct_writer`: the order
    is kept), without the writer task's turn; the writes after it in the same turn are
    batched in the queue as before, so a burst is still one socket write per turn.
    Inside a :class:`bridge.writes.held` stretch (a legacy read of several reply lines)
    what is written is kept and written in one piece when the stretch ends.
    """

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue
        self._batch: _Batch | None = None
        self._putting: set[asyncio.Future[None]] = set()
        self._direct = direct_writer(queue)
        self._ahead = socket_writer(queue)
        self._direct_this_turn = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: What is written inside a held stretch (bridge.writes): one write when it ends.
        self._held = writes.HeldBytes(self._write_kept, "AMQP frame writer")

    def write(self, data: bytes) -> None:
        """Queue ``data`` after everything written before (same order on the socket)."""
        batch = self._batch
        if batch is not None and not batch.taken:
            batch.parts.append(data)
            return
        if self._held.keep(data):  # a held stretch (bridge.writes): one write when it ends
            return
        direct = self._direct
        if direct is not None and not self._direct_this_turn and direct(data):
            self._direct_this_turn = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._next_turn)
            return
        batch = self._batch = _Batch(data)
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:  # the writer is behind: frames added meanwhile join it
            put = asyncio.ensure_future(self.queue.put(batch))
            self._putting.add(put)
            put.add_done_callback(self._putting.discard)

    def _write_kept(self, data: bytes) -> None:
        """Write what a held stretch kept: straight onto the socket when that keeps the
        order (it is already one piece: a second stretch in the same turn, one of a
        long read's pieces, need not wait for aiormq's writer task), else as
        :meth:`write`."""
        direct = self._direct
        batch = self._batch
        if direct is not None and (batch is None or batch.taken) and direct(data):
            return
        self.write(data)

    def write_ahead(self, data: bytes) -> None:
        """Write ``data`` (whole frames whose order relative to the others does not
        matter: an ack) onto the socket now, ahead of frames still queued or held, so
        that it has left before anything the caller sends next, anywhere; where that
        cannot be done (another connection, closing), as :meth:`write`."""
        ahead = self._ahead
        if ahead is None or not ahead(data):
            self.write(data)

    def _next_turn(self) -> None:
        self._direct_this_turn = False


_writers: weakref.WeakKeyDictionary[asyncio.Queue[Any], FrameWriter] = \
    weakref.WeakKeyDictionary()


#: Attribute that keeps a channel's frame writer on the channel (found with a dict look-up).
_WRITER = "_bridge_frame_writer"


def writer_for(channel: aiormq.Channel) -> FrameWriter:
    """The frame writer of ``channel``'s connection."""
    writer: FrameWriter | None = channel.__dict__.get(_WRITER)
    if writer is None:
        queue = channel.write_queue
        writer = _writers.get(queue)
        if writer is None:
            writer = _writers[queue] = FrameWriter(queue)
        setattr(channel, _WRITER, writer)
    return writer


def usable_channel(robust_channel: Any) -> aiormq.Channel | None:
    """The open aiormq channel under an aio-pika channel, if it publishes with confirms."""
    underlay = getattr(robust_channel, "_channel", None)
    channel = getattr(underlay, "channel", None)
    if channel is None or channel._closing.done() or not channel.publisher_confirms:
        return None
    return channel


def publish(channel: aiormq.Channel, encode: Callable[[int], bytes],
            message_id: str | None = None) -> asyncio.Future[Any]:
    """Write the frames ``encode(channel_number)`` as the channel's next publish; return
    the future of the broker's confirm (aiormq's: a ``Basic.Ack`` result, ``DeliveryError``
    for a nack, ``PublishError`` for a returned mandatory message, the channel's close
    reason if it closes first). ``message_id`` is the message's, needed for mandatory
    messages (aiormq finds a returned message's confirmation by it)."""
    if channel._closing.done():  # closed: frames would make the broker close the link
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} is closed")
    data = encode(channel.number)
    channel.delivery_tag += 1
    tag = channel.delivery_tag
    confirmation = confirmation_future(channel)
    channel.confirmations[tag] = confirmation
    if message_id is not None:
        ids = channel.message_id_delivery_tag
        ids[message_id] = tag

        def forget(_future: asyncio.Future[Any]) -> None:
            if ids.get(message_id) == tag:
                del ids[message_id]

        confirmation.add_done_callback(forget)
    writer_for(channel).write(data)
    return confirmation


#: Attribute that marks a channel whose close rejects the confirmations made here.
_WATCHED = "_bridge_rejects_confirmations"


def confirmation_future(channel: aiormq.Channel) -> asyncio.Future[Any]:
    """A future for the broker's confirm of a publish on ``channel``.

    aiormq's ``channel.create_future()`` files each future in the channel's and the
    connection's future stores (two entries, two done callbacks, four calls when it
    resolves) so that closing the channel rejects it. Here the channel is watched once
    instead: when it closes, every confirmation still pending in
    ``channel.confirmations`` is rejected with the channel's close reason, as the store
    would have done. A future that fails with nobody waiting has its exception marked
    retrieved (as aiormq's are), so asyncio does not log it.
    """
    future = channel.loop.create_future()
    future.add_done_callback(_retrieve)
    if _WATCHED not in channel.__dict__:
        _reject_on_close(channel)
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _reject_on_close(channel: aiormq.Channel) -> None:
    """When ``channel`` closes, reject its pending confirmations with the close reason."""
    setattr(channel, _WATCHED, True)
    confirmations = channel.confirmations

    def reject(closing: asyncio.Future[Any]) -> None:
        reason = (None if closing.cancelled() else closing.exception()) \
            or aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        for pending in list(confirmations.values()):
            if isinstance(pending, asyncio.Future) and not pending.done():
                pending.set_exception(reason)

    channel.closing.add_done_callback(reject)


def ack(channel: aiormq.Channel, delivery_tag: int) -> None:
    """Acknowledge a delivery: a ``Basic.Ack`` frame written onto the socket at once,
    ahead of publishes still queued (:meth:`FrameWriter.write_ahead`), so that it has left
    before whatever the command makes the bridge send next (aio-pika's ack is a coroutine
    that waits for aiormq's writer to send it; nothing here waits)."""
    if channel._closing.done():
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} is closed")
    writer_for(channel).write_ahead(ack_frame(channel.number, delivery_tag))


_ACK_FRAME = struct.Struct(">BHIHHQBB")


def ack_frame(channel_number: int, delivery_tag: int) -> bytes:
    """The ``Basic.Ack`` frame (single, not multiple) pamqp marshals for ``delivery_tag``
    on channel ``channel_number``: method frame of 13 bytes, class 60, method 80."""
    return _ACK_FRAME.pack(1, channel_number, 13, 60, 80, delivery_tag, 0, 0xCE)


def message_frames(channel_number: int, max_content_size: int, exchange: str,
                   routing_key: str, body: bytes, properties: spec.Basic.Properties,
                   mandatory: bool = False) -> bytes:
    """Any message's frames, marshalled by pamqp as aiormq's ``basic_publish`` does."""
    frames: list[Any] = [
        spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory),
        ContentHeader(properties=properties, body_size=len(body)),
    ]
    frames += [ContentBody(body[i:i + max_content_size])
               for i in range(0, len(body), max_content_size)] or [ContentBody(body)]
    return b"".join(pamqp_frame.marshal(frame, channel_number) for frame in frames)


def publish_message(channel: aiormq.Channel, exchange: str, routing_key: str, body: bytes,
                    properties: spec.Basic.Properties,
                    mandatory: bool = False) -> asyncio.Future[Any]:
    """:func:`publish` any message (a message id is added if it has none, as aiormq does)."""
    if not properties.message_id:
        properties.message_id = new_message_id()
    size = channel.max_content_size
    return publish(channel, lambda number: message_frames(
        number, size, exchange, routing_key, body, properties, mandatory),
        properties.message_id)

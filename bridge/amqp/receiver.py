"""Receiving AMQP frames: every complete frame of one socket read parsed at once.

aiormq's own frame reader (``aiormq.connection.FrameReceiver``) awaits three
``readexactly`` per frame (type, header, payload), copies them into a ``BytesIO``
under a lock and then lets pamqp decode the copy; a message is three frames. This
module keeps aiormq's connection (its reader loop, channels, heartbeats, close
handling) and changes only where the frames come from:

* :class:`FrameReader` is an :class:`asyncio.StreamReader` whose ``feed_data`` --
  called by asyncio's stream protocol with each chunk the socket gave -- decodes
  every complete frame of the chunk (:func:`~bridge.amqp.decoding.decode_frame`: pamqp's objects) into a
  queue, keeping an incomplete tail for the next chunk;
* :class:`BatchFrameReceiver` is aiormq's ``FrameReceiver`` for such a reader: its
  ``get_frame`` pops the next decoded frame and only waits when none is left;
* :class:`FrameTransportFactory` is an aiormq ``TransportFactory`` (the hook aiormq
  offers for opening the socket) that opens the connection with a :class:`FrameReader`.

aiormq builds its receiver by calling the module's ``FrameReceiver`` name with the
reader the transport factory returned; :func:`install` points that name at
:class:`BatchFrameReceiver`, which hands any other reader to aiormq's own class, so
connections opened without this factory (clu's, the benchmark peers') are untouched.

:func:`deliver_inline` goes one step further on a channel: a consumer that is a plain
function (:class:`InlineConsumer`) is called from the channel's reader as soon as a
delivery is read, without the task aiormq starts for each delivery.

What aiormq's reader raises, this one raises the same way: end of stream between
frames ends the iteration, end of stream inside a frame and socket errors raise
``AMQPConnectionError``, a malformed frame ``InvalidFrameError``, a protocol header
instead of a frame ``ProtocolSyntaxError``. Frames decoded before an error are
delivered before it. Decoded frames waiting for aiormq count against the reader's
limit as buffered bytes do in asyncio's reader (reading pauses above twice the limit
and resumes at or below it).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import aiormq.connection

from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.constants import FRAME_END, FRAME_HEADER_SIZE
from pamqp.exceptions import PAMQPException
from pamqp.header import ContentHeader
from yarl import URL

from .. import writes
from .decoding import decode_frame

__all__ = ["BatchFrameReceiver", "FrameReader", "FrameTransportFactory", "InlineConsumer",
           "deliver_inline", "direct_writer", "install", "socket_writer"]

log = logging.getLogger(__name__)

_AiormqFrameReceiver = aiormq.connection.FrameReceiver
_HEADER = struct.Struct(">BHI")
Deliver, Ack, Nack = Basic.Deliver, Basic.Ack, Basic.Nack
#: Bytes of frame header and end marker around a frame's payload.
_OVERHEAD = FRAME_HEADER_SIZE + 1


class FrameReader(asyncio.StreamReader):
    """A stream reader that decodes AMQP frames as the data arrives (see the module doc).

    Only :class:`BatchFrameReceiver` reads from it (``frames``); the byte-level reading
    methods of :class:`asyncio.StreamReader` are not meant to be used on it.
    """

    def __init__(self, limit: int = 2 ** 16, loop: asyncio.AbstractEventLoop | None = None
                 ) -> None:
        super().__init__(limit=limit, loop=loop)
        #: Decoded frames ``(bytes, channel, frame)`` in arrival order; an exception in
        #: the queue is raised when reached (nothing after it is decoded).
        self.frames: deque[Any] = deque()
        self.queued_bytes = 0
        self._tail = bytearray()  # the start of an incomplete frame
        self._need = 0  # how many bytes that frame needs (at least)
        self._started = False
        self._broken = False
        self._frame_waiter: asyncio.Future[None] | None = None
        #: The aiormq connection reading from this reader, once :meth:`bind` was called:
        #: deliveries and confirms may then be dispatched as they are decoded.
        self.connection: Any = None
        #: How many frames :meth:`_dispatch` handled (the rest went through aiormq).
        self.dispatched = 0
        #: The connection's writer (set by :class:`FrameTransportFactory`).
        self.stream_writer: asyncio.StreamWriter | None = None

    def bind(self, connection: Any) -> None:
        """Let this reader dispatch hot frames of aiormq ``connection`` itself
        (:meth:`_dispatch`): a complete delivery to an :class:`InlineConsumer` and a
        publisher confirm, when nothing read before them is still waiting in a queue."""
        self.connection = connection
        if self.stream_writer is not None:
            _bound[connection.write_queue] = self

    # -- fed by asyncio's StreamReaderProtocol ---------------------------------------

    def feed_data(self, data: bytes) -> None:
        if self._broken or not data:
            return
        if self._tail:
            self._tail += data
            if len(self._tail) < self._need:
                return  # the incomplete frame is still incomplete: no copy, no parse
            data = bytes(self._tail)
        size = len(data)
        pos = 0
        decoded: list[Any] = []
        while size - pos >= FRAME_HEADER_SIZE:
            if not self._started:
                if data.startswith(b"AMQP", pos):
                    self._fail(decoded, ProtocolSyntaxError("Unexpected AMQP protocol header"))
                    break
                self._started = True
            _, channel, length = _HEADER.unpack_from(data, pos)
            end = pos + length + _OVERHEAD
            if end > size:
                self._need = end - pos
                break
            if data[end - 1] != FRAME_END:
                self._fail(decoded,
                           InvalidFrameError(f"frame end byte missing: {data[pos:end]!r}"))
                break
            try:
                frame = decode_frame(data, pos, end)
            except PAMQPException as exc:
                self._fail(decoded, InvalidFrameError(str(exc)))
                break
            decoded.append((end - pos, channel, frame))
            pos = end
        if pos == size or self._broken:
            self._tail = bytearray()
        else:
            self._tail = bytearray(data[pos:]) if pos else bytearray(data)
            if size - pos < FRAME_HEADER_SIZE:
                self._need = FRAME_HEADER_SIZE
        if not decoded:
            return
        if self.connection is not None and self._frame_waiter is not None:
            done = self._dispatch(decoded)
            if done:
                del decoded[:done]
                if not decoded:
                    return
        self._queue(decoded)

    def _queue(self, decoded: list[Any]) -> None:
        """Hand decoded frames to aiormq's connection reader (through :attr:`frames`)."""
        self.frames.extend(decoded)
        queued = sum(item[0] for item in decoded if item.__class__ is tuple)
        if queued:
            self.queued_bytes += queued
            if (self._transport is not None and not self._paused
                    and self.queued_bytes > 2 * self._limit):
                try:
                    self._transport.pause_reading()
                except NotImplementedError:
                    self._transport = None
                else:
                    self._paused = True
        self._wake()

    def _dispatch(self, decoded: list[Any]) -> int:
        """Handle the leading frames of ``decoded`` here, as aiormq's readers would;
        return how many were handled (the rest go to aiormq, in order).

        Called only while aiormq's connection reader waits for a frame (nothing decoded
        before is still queued for it). A frame is handled here only if its channel's
        own reader waits too, with nothing queued: a complete delivery (method, content
        header, body) to an :class:`InlineConsumer` -- what :func:`deliver_inline`
        does, without the two reader tasks' hops -- and a publisher confirm (``Basic.Ack``
        / ``Basic.Nack``, as aiormq's ``_on_confirm_frame``). The first frame that is
        anything else stops it: what follows must not overtake it.

        Several deliveries in one read (more frames than one delivery's three: a
        command's ``>`` and ``:``, say) are handled inside a :class:`bridge.writes.held`
        stretch, so that what they make the bridge write to one peer (a legacy client)
        leaves in one write.
        """
        if len(decoded) > 3:
            with writes.held():
                return self._dispatch_frames(decoded)
        return self._dispatch_frames(decoded)

    def _dispatch_frames(self, decoded: list[Any]) -> int:
        connection = self.connection
        channels = connection.channels
        count = len(decoded)
        i = 0
        while i < count:
            item = decoded[i]
            if item.__class__ is not tuple or not item[1]:
                break
            channel = channels.get(item[1])
            if channel is None or channel._closing.done():  # aiormq's is_closed
                break
            queue = channel.frames
            # its reader waits between frames (a delivery's content frames never interleave
            # with others on its channel, so a reader waiting inside one never sees a
            # method frame next): nothing queued, somebody in get()
            if queue._queue or not queue._getters:
                break
            frame = item[2]
            kind = frame.__class__
            if kind is Deliver:
                used = _deliver(channel, decoded, i)
                if not used:
                    break
                i += used
            elif kind is Ack or kind is Nack:
                _confirm(channel, frame)
                i += 1
            else:
                break
        if i:
            self.dispatched += i
            connection._Connection__last_frame_time = self._loop.time()
        return i

    def feed_eof(self) -> None:
        super().feed_eof()
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        super().set_exception(exc)
        self._wake()

    def _fail(self, decoded: list[Any], exc: Exception) -> None:
        self._broken = True
        decoded.append(exc)

    def _wake(self) -> None:
        waiter = self._frame_waiter
        if waiter is not None:
            self._frame_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- read by BatchFrameReceiver --------------------------------------------------

    def taken(self, weight: int) -> None:
        """A frame of ``weight`` bytes left the queue: resume reading if it had paused."""
        self.queued_bytes -= weight
        if self._paused and self.queued_bytes <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    async def wait_frames(self) -> None:
        """Return once a frame is queued; raise as aiormq's reader does at the end.

        As aiormq's: the end of the stream reached before this call, between frames,
        ends the iteration; an end of stream while waiting (or inside a frame) is a
        connection error (``readexactly`` found it short)."""
        if self._eof and not self._tail and self._exception is None:
            raise StopAsyncIteration
        while not self.frames:
            exc = self._exception
            if exc is not None:
                raise _connection_error(exc)
            if self._eof:
                raise AMQPConnectionError(
                    "Server connection unexpectedly closed. Read "
                    f"{len(self._tail)} bytes but {max(self._need, 1)} bytes expected")
            waiter = self._frame_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._frame_waiter = None


#: The bound reader of each aiormq connection, by the connection's write queue.
_bound: weakref.WeakKeyDictionary[asyncio.Queue[Any], FrameReader] = weakref.WeakKeyDictionary()


def direct_writer(write_queue: asyncio.Queue[Any]) -> Callable[[bytes], bool] | None:
    """For the aiormq connection that writes from ``write_queue`` (one opened by
    :class:`FrameTransportFactory`): a function that writes bytes straight onto its
    socket when that keeps their order -- aiormq's writer task waits for the queue with
    nothing in it, so all that was queued before is written, and the connection is not
    closing -- and returns False (nothing written) otherwise. None for other connections.
    """
    reader = _bound.get(write_queue)
    if reader is None or reader.stream_writer is None:
        return None
    closing = reader.connection._closing  # done once aiormq's is_closed is True
    transport = reader.stream_writer.transport
    pending = write_queue._queue  # type: ignore[attr-defined]
    getters = write_queue._getters  # type: ignore[attr-defined]

    def write(data: bytes) -> bool:
        # aiormq's writer task waits in get() with nothing queued: all before is written
        if pending or not getters or closing.done() or transport.is_closing():
            return False
        transport.write(data)
        return True

    return write


def socket_writer(write_queue: asyncio.Queue[Any]) -> Callable[[bytes], bool] | None:
    """For the aiormq connection that writes from ``write_queue`` (one opened by
    :class:`FrameTransportFactory`): a function that writes whole frames straight onto
    its socket now, *ahead* of anything still queued for aiormq's writer task (which
    writes each queued item in one transport write, so no frame is split), and returns
    False (nothing written) if the connection is closing. For frames whose order
    relative to those queued does not matter (an ack). None for other connections.
    """
    reader = _bound.get(write_queue)
    if reader is None or reader.stream_writer is None:
        return None
    closing = reader.connection._closing
    transport = reader.stream_writer.transport

    def write(data: bytes) -> bool:
        if closing.done() or transport.is_closing():
            return False
        transport.write(data)
        return True

    return write


def _deliver(channel: Any, decoded: list[Any], i: int) -> int:
    """Call the :class:`InlineConsumer` of the ``Basic.Deliver`` at ``decoded[i]`` if its
    content header and body frames follow it in ``decoded``; return how many frames
    that took (0: not handled here)."""
    number = decoded[i][1]
    frame = decoded[i][2]
    consumers = channel.consumers
    inline = getattr(consumers.get(frame.consumer_tag), "__wrapped__", None)
    if inline.__class__ is not InlineConsumer:
        return 0
    count = len(decoded)
    j = i + 1
    if j >= count:
        return 0
    item = decoded[j]
    if item.__class__ is not tuple or item[1] != number or item[2].__class__ is not ContentHeader:
        return 0
    header = item[2]
    size = header.body_size
    parts: list[bytes] = []
    got = 0
    j += 1
    while got < size:  # as aiormq's _read_content: body frames until body_size
        if j >= count:
            return 0
        item = decoded[j]
        if item.__class__ is not tuple or item[1] != number \
                or item[2].__class__ is not ContentBody:
            return 0
        value = item[2].value
        parts.append(value)
        got += len(value)
        j += 1
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    try:
        inline.fn(DeliveredMessage(delivery=frame, header=header, body=body, channel=channel))
    except Exception:
        log.exception("Consumer callback failed")
    return j - i


def _confirm(channel: Any, frame: Any) -> None:
    """A publisher confirm, as aiormq's ``Channel._on_confirm_frame`` handles it."""
    if not channel.publisher_confirms:
        return
    confirmations = channel.confirmations
    tag = frame.delivery_tag
    if tag not in confirmations:
        log.error("Unexpected confirmation frame %r from broker", frame)
        return
    if getattr(frame, "multiple", False):
        # Tags were added in increasing order (and a dict keeps that order), so the
        # confirmed ones are at the front: stop at the first later one rather than
        # scanning the whole window on every ack.
        confirmed = []
        for pending in confirmations:
            if pending > tag:
                break
            confirmed.append(pending)
        for pending in confirmed:
            channel._confirm_delivery(pending, frame)
    else:
        channel._confirm_delivery(tag, frame)


def _connection_error(exc: BaseException) -> BaseException:
    """The error aiormq's reader raises for a socket error ``exc``."""
    if isinstance(exc, ConnectionRefusedError):
        text = "Server connection refused"
    elif isinstance(exc, ConnectionResetError):
        text = "Server connection reset"
    elif isinstance(exc, ConnectionError):
        text = "Server connection error"
    elif isinstance(exc, OSError):
        text = "Server communication error"
    else:
        return exc
    error = AMQPConnectionError(f"{text}: {exc!r}")
    error.__cause__ = exc
    return error


class BatchFrameReceiver(_AiormqFrameReceiver):
    """aiormq's frame receiver for a :class:`FrameReader` (any other reader gets
    aiormq's own class, see :func:`install`)."""

    def __new__(cls, reader: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(reader, FrameReader):
            return super().__new__(cls)
        return _AiormqFrameReceiver(reader, *args, **kwargs)

    def __init__(self, reader: FrameReader) -> None:  # no lock: one reader at a time
        self.reader = reader
        self.started = True

    async def get_frame(self) -> aiormq.connection.ReceivedFrame:
        reader = self.reader
        frames = reader.frames
        if not frames:
            await reader.wait_frames()
        item = frames.popleft()
        if item.__class__ is tuple:
            reader.taken(item[0])
            return item
        raise item

    # ``async for`` awaits what ``__anext__`` returns: the coroutine of get_frame.
    __anext__ = get_frame  # type: ignore[assignment]


class FrameTransportFactory(aiormq.connection.TransportFactory):
    """Opens aiormq's socket with a :class:`FrameReader` (TLS for ``amqps`` URLs).

    The connection that called :meth:`create` last is made known to its reader with
    :meth:`bind` once it is open (see :meth:`FrameReader.bind`).
    """

    def __init__(self) -> None:
        self.last_reader: FrameReader | None = None
        #: The reader bound last (that of the connection in use).
        self.bound: FrameReader | None = None

    def bind(self, connection: Any) -> None:
        """Bind the reader :meth:`create` made last to aiormq ``connection`` (opened with it)."""
        reader, self.last_reader = self.last_reader, None
        if reader is not None and connection is not None:
            reader.bind(connection)
            self.bound = reader

    async def create(self, url: URL, **kwargs: Any
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        install()
        provider = kwargs.pop("ssl_context_provider", None)
        ssl = None
        if url.scheme == "amqps" and provider is not None:
            ssl = await provider.get_context()
        loop = asyncio.get_running_loop()
        reader = self.last_reader = FrameReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol, url.host, url.port, ssl=ssl, **kwargs)
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        writer = reader.stream_writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return reader, writer


def install() -> None:
    """Make aiormq build a :class:`BatchFrameReceiver` for a :class:`FrameReader`
    (idempotent; other readers keep aiormq's own receiver)."""
    aiormq.connection.FrameReceiver = BatchFrameReceiver  # type: ignore[misc]


# -- deliveries without a task each --------------------------------------------------------

class InlineConsumer:
    """A consumer aiormq calls ``fn(message)`` for, from its channel reader, without the
    task aiormq starts per delivery (see :func:`deliver_inline`). To aiormq it is an
    ordinary consumer callback (calling it returns a coroutine that calls ``fn``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[DeliveredMessage], Any]) -> None:
        self.fn = fn

    async def __call__(self, message: DeliveredMessage) -> None:
        self.fn(message)


def deliver_inline(channel: Any) -> None:
    """Make aiormq's ``channel`` call each :class:`InlineConsumer` as soon as a delivery's
    frames are read, in the channel's reader, in delivery order (idempotent).

    aiormq reads the content header and body of a ``Basic.Deliver`` and then starts a
    task for the consumer callback; a plain function needs none. Deliveries to other
    consumers keep aiormq's own handling. What ``fn`` raises is logged (aiormq logs what
    a consumer task raises); it must not block: the channel reads nothing meanwhile.
    """
    if "_on_deliver_frame" in channel.__dict__:
        return
    own = channel._on_deliver_frame
    consumers = channel.consumers
    read_header = channel._Channel__get_content_header
    read_content = channel._read_content

    async def on_deliver_frame(frame: Any) -> None:
        # aiormq keeps the consumer wrapped (``aiormq.tools.awaitable``, ``__wrapped__``).
        inline = getattr(consumers.get(frame.consumer_tag), "__wrapped__", None)
        if inline.__class__ is not InlineConsumer:
            await own(frame)
            return
        message = await read_content(frame, await read_header())
        # Looked up again as aiormq does after reading: a cancel may have come between.
        if frame.consumer_tag not in consumers:
            return
        try:
            inline.fn(message)
        except Exception:
            log.exception("Consumer callback failed")

    channel._on_deliver_frame = on_deliver_frame

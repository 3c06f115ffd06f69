"""Line framing on Twisted TCP connections, robust against bad input.

Lines end with ``\\n``; a ``\\r`` before it is dropped, so ``\\r\\n`` works too. A
connection whose :attr:`LineProtocol.eol` is ``\\r`` (the TCC's framing: tron's
``ASCIIReplyDecoder(EOL='\\r', stripChars='\\n')`` and ``ASCIICmdEncoder(EOL='\\r')``)
ends lines with ``\\r`` both ways and drops every ``\\n`` from what it reads.
A line longer than ``max_line_length`` bytes is discarded up to its end and
reported once through :meth:`LineProtocol.line_too_long` (the connection stays
up); bytes that are not UTF-8 are decoded with U+FFFD replacement characters and
reported through :meth:`LineProtocol.bad_encoding`. Unlike Twisted's
``LineOnlyReceiver``, no line that follows an oversized one in the same TCP
segment is lost. A server-side connection can bound what its peer leaves unread
(:attr:`LineProtocol.max_unsent`): a client that stops reading is dropped instead of
growing the process's memory without end.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from twisted.internet.interfaces import IPushProducer
from twisted.internet.main import CONNECTION_DONE as _CONNECTION_DONE
from twisted.internet.main import CONNECTION_LOST as _CONNECTION_LOST
from twisted.internet.posixbase import _NO_FILEDESC
from twisted.internet.protocol import Protocol
from twisted.internet.tcp import Connection as _TcpConnection
from twisted.python.failure import Failure
from zope.interface import implementer

from .. import writes

log = logging.getLogger(__name__)

#: Default limit for one line, in bytes (the asyncio stream limit clu has).
DEFAULT_MAX_LINE_LENGTH = 64 * 1024
#: Writes per event-loop turn sent at once; later ones of the turn go out together.
SENT_AT_ONCE = 4
#: Bytes a turn's later writes gather before they are sent anyway, without waiting for
#: the turn to end: a long burst (an actor's loop of a thousand replies) leaves in
#: pieces of about this size, so that its peer works on the first while the rest is
#: being written.
SEND_PIECE = 4096
#: Lines of one read handed on inside one :class:`bridge.writes.held` stretch: what the
#: lines of a long read (an actor's burst of replies) make the bridge write leaves in
#: pieces of this many, so that the peer (the broker) works on the first piece while
#: the bridge parses the next, rather than waiting for the whole read.
HELD_LINES = 32
#: Default bound of a server connection's unread output, in bytes.
DEFAULT_MAX_UNSENT = 16 * 1024 * 1024
#: Largest write sent straight on the socket (Twisted sends at most this much at a time).
_SEND_LIMIT = _TcpConnection.SEND_LIMIT


@implementer(IPushProducer)
class _UnsentGauge:
    """Counts the bytes written while the transport's buffer is over its limit.

    Twisted pauses a registered streaming producer when the transport buffers more than
    its ``bufferSize`` (64 kB) and resumes it once everything is sent; what is written
    in between is what the peer has not read yet (kernel buffers aside).
    """

    def __init__(self) -> None:
        self.paused = False
        self.unsent = 0

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.unsent = 0

    def stopProducing(self) -> None:
        self.paused = False


class LineProtocol(Protocol):
    """A Twisted protocol that delivers decoded lines to :meth:`line_received`."""

    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    #: Line terminator, written by :meth:`send_line` and split on when reading:
    #: ``b"\n"`` (a ``\r`` before it is dropped) or ``b"\r"`` (every ``\n`` is dropped).
    eol: bytes = b"\n"
    #: Bytes the peer may leave unread before the connection is dropped (None: no bound).
    max_unsent: int | None = None

    def __init__(self) -> None:
        self._buffer = b""
        self._discarding = False
        self._sent_this_turn = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once
        self._gauge: _UnsentGauge | None = None
        self._dropped = False
        #: The socket of a plain TCP transport, written to directly (see :meth:`_write`).
        self._socket: socket.socket | None = None
        #: What is written inside a :class:`bridge.writes.held` stretch, sent at its end.
        self._held = writes.HeldBytes(self._write, self)

    @property
    def unsent(self) -> int:
        """Bytes written while the peer was not reading fast enough (0 once it caught up)."""
        gauge = self._gauge
        return gauge.unsent if gauge is not None else 0

    # -- Twisted hooks -----------------------------------------------------------------
    def connectionMade(self) -> None:
        if isinstance(self.transport, _TcpConnection):
            self._socket = self.transport.socket
            self._read_directly()
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)  # replies are small: never wait for Nagle (tron's 40 ms stall)
        register = getattr(self.transport, "registerProducer", None)
        if self.max_unsent is not None and register is not None:
            self._gauge = _UnsentGauge()
            register(self._gauge, True)
        self.connection_made()

    def dataReceived(self, data: bytes) -> None:
        eol = self.eol
        if eol != b"\n":
            data = data.replace(b"\n", b"")  # tron's stripChars='\n' for CR-framed peers
        if self._discarding:
            end = data.find(eol)
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1:]
        lines = (self._buffer + data).split(eol)
        self._buffer = lines.pop()
        count = len(lines)
        if count > HELD_LINES:  # what a long read's lines make the bridge write: in pieces
            for start in range(0, count, HELD_LINES):
                with writes.held():
                    self._deliver_all(lines[start:start + HELD_LINES])
        elif count > 1:  # what the lines make the bridge write leaves together
            with writes.held():
                self._deliver_all(lines)
        else:
            self._deliver_all(lines)
        if len(self._buffer) > self.max_line_length:
            size = len(self._buffer)
            self._buffer = b""
            self._discarding = True
            self._report_too_long(size)

    def _deliver_all(self, lines: list[bytes]) -> None:
        max_length = self.max_line_length
        for raw in lines:
            if len(raw) > max_length:
                self._report_too_long(len(raw))
                continue
            self._deliver(raw)

    def connectionLost(self, reason: Failure = Failure(ConnectionError("closed"))) -> None:
        self.connection_lost(reason)

    # -- API for subclasses ------------------------------------------------------------
    def connection_made(self) -> None:
        """Called when the connection is up (after TCP_NODELAY is set)."""

    def connection_lost(self, reason: Failure) -> None:
        """Called once when the connection is gone."""

    def line_received(self, line: str) -> None:
        """Called for every complete line, without its terminator."""
        raise NotImplementedError

    def line_too_long(self, size: int) -> None:
        """Called once per discarded line (``size`` is at least the bytes seen)."""
        log.warning("%s: discarded a line of %d bytes (limit %d)", self, size, self.max_line_length)

    def peer_not_reading(self, unsent: int) -> None:
        """Called once, before the connection is aborted, when the peer has left more
        than :attr:`max_unsent` bytes unread."""
        log.warning("%s: dropped: the peer left more than %d bytes unread (limit %d)",
                    self, unsent, self.max_unsent)

    def bad_encoding(self, line: str) -> None:
        """Called before :meth:`line_received` for a line that was not valid UTF-8."""
        log.warning("%s: line is not valid UTF-8, decoded with replacement characters", self)

    def send_line(self, line: str) -> None:
        """Write one line (UTF-8) followed by :attr:`eol`."""
        if self.transport is not None:
            self._write(line.encode("utf-8", "replace") + self.eol)

    def send_lines(self, lines: list[str]) -> None:
        """Write several lines in one write."""
        if self.transport is not None and lines:
            self._write(b"".join(l.encode("utf-8", "replace") + self.eol for l in lines))

    # -- internals -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        """Write ``data``; the first few writes of an event-loop turn are sent at once.

        Twisted buffers a write and sends it when the reactor next finds the socket
        writable, one event-loop turn later, so a relayed reply would wait for every
        other callback of that turn. The first :data:`SENT_AT_ONCE` writes of a turn
        (a command's ``>``, a few ``i`` and its ``:``) are sent now; what the socket
        does not take stays buffered and goes out as usual. Later writes of the same
        turn stay buffered and go out together on the next turn, in one system call: a
        burst of lines is not split into one send each; a long burst goes out in pieces
        of :data:`SEND_PIECE` bytes as it is written (when the socket took all before),
        so that the peer need not wait for its end. Not while the connection is
        closing: then the reactor's own write must see the buffer empty and close the
        connection.

        Sent now, on a TCP transport whose buffer is empty (nothing written before can
        still be waiting): straight on its socket, without Twisted's ``write``, which
        would register the socket for writing and ``doWrite`` unregister it again (two
        ``epoll_ctl`` and a dozen calls per line). What the socket does not take (a
        partial send, ``EAGAIN``) goes into Twisted's buffer, and so does everything on
        an error (peer gone): the reactor's next ``doWrite`` reports it and closes the
        connection, as when Twisted's own send fails. Otherwise (something already
        buffered, another transport) the write goes through Twisted's buffer and, if
        it is to be sent now, the transport's ``doWrite``.

        Inside a :class:`bridge.writes.held` stretch (a read that hands on several
        messages: lines of a legacy socket, deliveries of one AMQP read, say a command's
        ``>`` and ``:``) what is written is kept and written in one piece when the
        stretch ends: one system call, one wake-up of the peer.
        """
        transport = self.transport
        if self._dropped or transport is None or self._held.keep(data):
            return
        sent_now = self._sent_this_turn
        if sent_now < SENT_AT_ONCE:
            sock = self._socket
            if sock is not None and not transport.dataBuffer \
                    and not transport._tempDataLen and transport.connected \
                    and not transport.disconnecting and not transport._writeDisconnecting \
                    and not transport.TLS and len(data) <= _SEND_LIMIT:
                self._count_sent(sent_now)
                try:
                    sent = sock.send(data)
                except OSError:  # EAGAIN, ENOBUFS: later; an error: the reactor reports it
                    sent = 0
                if sent == len(data):
                    return
                self._buffer_write(data[sent:] if sent else data)
                return
        if self._buffer_write(data):
            return
        if getattr(transport, "disconnecting", True) or not hasattr(transport, "doWrite"):
            return
        if sent_now >= SENT_AT_ONCE and (getattr(transport, "_tempDataLen", 0) < SEND_PIECE
                                         or getattr(transport, "dataBuffer", b"")):
            return  # goes with the turn's other writes (or the socket is full)
        self._count_sent(sent_now)
        # An error (peer gone) is left to the reactor: the writer stays registered, and
        # its next doWrite reports it and closes the connection.
        transport.doWrite()  # type: ignore[union-attr]

    def _buffer_write(self, data: bytes) -> bool:
        """Write ``data`` into the transport's buffer (the reactor sends it when the
        socket is writable); True if the connection was dropped because its peer leaves
        more than :attr:`max_unsent` bytes unread."""
        transport = self.transport
        transport.write(data)  # type: ignore[union-attr]
        gauge = self._gauge
        if gauge is not None and gauge.paused:
            gauge.unsent += len(data)
            if self.max_unsent is not None and gauge.unsent > self.max_unsent:
                self._dropped = True
                self._guard(self.peer_not_reading, gauge.unsent)
                transport.abortConnection()  # type: ignore[union-attr]
                return True
        return False

    def _read_directly(self) -> None:
        """Have the event loop call :meth:`_read_ready` when the socket is readable.

        The asyncio reactor registers a TCP connection's socket with a callback that
        goes through ``callWithLogger`` (the log prefix in Twisted's context stack: a
        dozen calls and dict copies per read) to ``_readOrWrite`` and ``doRead``.
        The same registration, now with our callback, does what those do (see
        :meth:`_read_ready`). Only where the reactor is the asyncio one and this protocol
        is the transport's own (not wrapped); the reactor still owns the registration:
        ``stopReading`` (a lost connection, ``pauseProducing``) removes it, and
        ``startReading`` registers its own callback again.
        """
        transport = self.transport
        reactor = transport.reactor  # type: ignore[union-attr]
        loop = getattr(reactor, "_asyncioEventloop", None)
        readers = getattr(reactor, "_readers", None)
        if loop is None or not isinstance(readers, dict) \
                or not hasattr(reactor, "_disconnectSelectable") \
                or transport.protocol is not self:  # type: ignore[union-attr]
            return
        fd = readers.get(transport)
        if fd is not None:
            loop.add_reader(fd, self._read_ready)

    def _read_ready(self) -> None:
        """The socket is readable: Twisted's ``_readOrWrite(transport, read=True)`` with
        ``tcp.Connection.doRead``, without the reactor's logging context. Reads up to the
        transport's ``bufferSize``; nothing to read yet: wait; end of stream or an error:
        the reactor disconnects the transport as its own read would have."""
        transport = self.transport
        sock = self._socket
        if sock.fileno() == -1:  # type: ignore[union-attr]
            why: Exception = _NO_FILEDESC
        else:
            try:
                data = sock.recv(transport.bufferSize)  # type: ignore[union-attr]
            except BlockingIOError:
                return
            except OSError:
                why = _CONNECTION_LOST
            else:
                if data:
                    try:
                        self.dataReceived(data)
                        return
                    except Exception as exc:
                        log.exception("%s: error while reading", self)
                        why = exc
                else:
                    why = _CONNECTION_DONE
        transport.reactor._disconnectSelectable(transport, why, True)  # type: ignore[union-attr]

    def _count_sent(self, sent_now: int) -> None:
        """One more write sent at once this turn (``sent_now`` before it); the count
        starts again on the next turn."""
        if not sent_now:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._next_turn)
        self._sent_this_turn = sent_now + 1

    def _next_turn(self) -> None:
        self._sent_this_turn = 0

    def _deliver(self, raw: bytes) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "replace")
            self._guard(self.bad_encoding, line)
        self._guard(self.line_received, line)

    def _report_too_long(self, size: int) -> None:
        self._guard(self.line_too_long, size)

    def _guard(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        """Run a handler; an exception is logged, never allowed to drop the connection."""
        try:
            fn(*args)
        except Exception:
            log.exception("%s: error while handling input", self)

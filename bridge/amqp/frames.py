"""The AMQP frames of a clu reply or command, encoded with pamqp's encoders and cached where
they repeat.

aiormq's ``basic_publish`` builds pamqp objects and marshals every property of every
message (the headers table alone costs more than the rest of a relayed reply). A
command's replies differ only in their code, body, message id and timestamp, so
:class:`ReplyFrames` encodes the parts that repeat once — each with pamqp's own
encoders — and joins them per message. The bytes are exactly those aiormq would
write for the same message (``tests/amqp/test_frames.py`` compares them with pamqp's
``marshal``): method frame ``Basic.Publish``, content header with the properties clu's
actor sends (``content_type``, ``headers``, ``delivery_mode`` 1, ``priority`` 0,
``correlation_id``, ``message_id``, ``timestamp``), body frame.

:class:`CommandFrames` does the same for the commands one commander id sends to one actor
(what :meth:`bridge.amqp.commander.AmqpCommander` published as an ``aio_pika.Message``:
``Basic.Publish`` with ``mandatory``, properties ``content_type``, ``headers``,
``delivery_mode`` 1, ``priority`` 0, ``correlation_id``, ``reply_to``, ``message_id``,
no timestamp; ``tests/amqp/test_frames.py`` compares them with that path's bytes).
"""

from __future__ import annotations

import functools
import struct
import time
from random import getrandbits
from typing import Any

from pamqp import commands as spec
from pamqp import constants, encode
from pamqp import frame as pamqp_frame

from bridge.protocol.clu_messages import CONTENT_TYPE

_FLAGS = spec.Basic.Properties.flags
#: Properties of every reply, in pamqp's order; ``correlation_id`` only for a command's.
_REPLY_FLAGS = (_FLAGS["content_type"] | _FLAGS["headers"] | _FLAGS["delivery_mode"]
                | _FLAGS["priority"] | _FLAGS["message_id"] | _FLAGS["timestamp"])
_CORRELATION = _FLAGS["correlation_id"]
_CONTENT_TYPE = encode.short_string(CONTENT_TYPE)
#: delivery_mode 1 (not persistent, aio-pika's default) and priority 0, as aio-pika sends.
_MODE_PRIORITY = encode.octet(1) + encode.octet(0)
_FRAME_HEAD = struct.Struct(">BHI")
_HEADER_HEAD = struct.Struct(">HHQH")
_FRAME_END = bytes((constants.FRAME_END,))
_HEADER_FRAME = constants.FRAME_HEADER
_BODY_FRAME = constants.FRAME_BODY


def table_entry(name: str, value: Any) -> bytes:
    """One ``name: value`` entry of an AMQP field table, as pamqp encodes it."""
    return encode.field_table({name: value})[4:]


#: Size of the caches of encoded parts that repeat across commands (a bridge sees a
#: bounded set of senders, commanders and routing keys).
_CACHED = 4096


@functools.lru_cache(maxsize=_CACHED)
def _cached_entry(name: str, value: str | None) -> bytes:
    """:func:`table_entry` of a header value that repeats (sender, commander id)."""
    return table_entry(name, value)


def _string_entry(key: bytes, value: str | None) -> bytes:
    """A table entry of a string (``S``) or null (``V``) value, as pamqp encodes it;
    ``key`` is the name already encoded as a short string."""
    if value is None:
        return key + b"V"
    data = value.encode("utf-8")
    return key + b"S" + _LONG.pack(len(data)) + data


_LONG = struct.Struct(">I")
_COMMAND_ID_NAME = encode.short_string("command_id")


def table(entries: bytes) -> bytes:
    """A field table made of encoded entries (:func:`table_entry`)."""
    return encode.long_int(len(entries)) + entries


_CODE_ENTRIES: dict[str, bytes] = {}
_INTERNAL_ENTRIES = {True: table_entry("internal", True), False: table_entry("internal", False)}


def _code_entry(code: str) -> bytes:
    entry = _CODE_ENTRIES.get(code)
    if entry is None:
        entry = _CODE_ENTRIES[code] = table_entry("message_code", code)
    return entry


def new_message_id() -> str:
    """A random message id as aiormq gives a message without one (32 hex digits)."""
    return "%032x" % getrandbits(128)


class _Clock:
    """The encoded timestamp of the current second (AMQP timestamps are whole seconds)."""

    second = -1
    encoded = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.encoded = second, encode.long_long_int(second)
        return cls.encoded


@functools.lru_cache(maxsize=_CACHED)
def _publish_method(exchange: str, routing_key: str, mandatory: bool, channel: int) -> bytes:
    """The marshalled ``Basic.Publish`` frame (one per replies routing key and channel)."""
    return pamqp_frame.marshal(spec.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                                  mandatory=mandatory), channel)


class _PublishFrames:
    """The ``Basic.Publish`` frame of every message one encoder makes, cached per
    channel number (and across encoders with the same routing)."""

    __slots__ = ("_routing", "_publish")

    def __init__(self, exchange: str, routing_key: str, mandatory: bool) -> None:
        self._routing = (exchange, routing_key, mandatory)
        self._publish: tuple[int, bytes] | None = None

    def publish_method(self, channel: int) -> bytes:
        """The ``Basic.Publish`` frame (cached per channel number)."""
        cached = self._publish
        if cached is None or cached[0] != channel:
            cached = self._publish = (channel, _publish_method(*self._routing, channel))
        return cached[1]


class ReplyFrames(_PublishFrames):
    """Encodes the replies to one command (or the broadcasts of one sender).

    ``commander_id``/``command_id`` None make broadcasts (null header values, no
    ``correlation_id``). :meth:`encode` returns the frames of one reply for channel
    ``channel``: ``Basic.Publish`` on ``exchange`` with ``routing_key``, the content
    header and one body frame (the caller keeps bodies below the frame size).
    """

    __slots__ = ("_ids", "_sender", "_tables", "_correlation", "_flags")

    def __init__(self, exchange: str, routing_key: str, commander_id: str | None,
                 command_id: str | None, sender: str | None) -> None:
        super().__init__(exchange, routing_key, mandatory=False)
        # pamqp writes a table's entries sorted by name: command_id, commander_id,
        # internal, message_code, sender.
        ids = _string_entry(_COMMAND_ID_NAME, command_id) \
            if command_id is None or command_id.__class__ is str \
            else table_entry("command_id", command_id)
        self._ids = ids + _cached_entry("commander_id", commander_id)
        self._sender = _cached_entry("sender", sender)
        self._tables: dict[tuple[str, bool], bytes] = {}
        if command_id is not None:
            correlation = str(command_id)
            self._correlation = _short_string(correlation) if len(correlation) < 64 \
                else encode.short_string(correlation)
            self._flags = _REPLY_FLAGS | _CORRELATION
        else:
            self._correlation = b""
            self._flags = _REPLY_FLAGS

    def _table(self, code: str, internal: bool) -> bytes:
        key = (code, internal)
        encoded = self._tables.get(key)
        if encoded is None:
            encoded = self._tables[key] = b"".join((
                _CONTENT_TYPE,
                table(self._ids + _INTERNAL_ENTRIES[bool(internal)] + _code_entry(code)
                      + self._sender),
                _MODE_PRIORITY,
                self._correlation))
        return encoded

    def encode(self, channel: int, code: str, internal: bool, body: bytes,
               message_id: str | None = None) -> bytes:
        """All frames of one reply: method, content header, body."""
        properties = b"".join((
            _HEADER_HEAD.pack(60, 0, len(body), self._flags),
            self._table(code, internal),
            encode.short_string(message_id or new_message_id()),
            _Clock.now(),
        ))
        return b"".join((
            self.publish_method(channel),
            _FRAME_HEAD.pack(_HEADER_FRAME, channel, len(properties)), properties, _FRAME_END,
            _FRAME_HEAD.pack(_BODY_FRAME, channel, len(body)), body, _FRAME_END,
        ))


_COMMAND_FLAGS = (_FLAGS["content_type"] | _FLAGS["headers"] | _FLAGS["delivery_mode"]
                  | _FLAGS["priority"] | _FLAGS["correlation_id"] | _FLAGS["message_id"])
_REPLY_TO = _FLAGS["reply_to"]
_SHORT = struct.Struct(">B")
_COMMAND_ID_KEY = _COMMAND_ID_NAME + b"S"
_COMMAND_FLAG_ENTRIES = {
    (internal, log): table_entry("internal", internal) + table_entry("write_to_log", log)
    for internal in (False, True) for log in (False, True)}


def _short_string(value: str) -> bytes:
    """``encode.short_string`` without its checks (the caller's values fit: 255 bytes)."""
    data = value.encode()
    return _SHORT.pack(len(data)) + data


class CommandFrames(_PublishFrames):
    """Encodes the commands one commander id sends to one actor (``routing_key``
    ``command.<actor>``), with ``reply_to`` the commander's replies queue (None: no
    ``reply_to``). :meth:`encode` returns every frame of one command for channel
    ``channel``: ``Basic.Publish`` (``mandatory`` as given), the content header and the
    body, split into frames of ``max_content_size`` bytes as aiormq splits it.
    ``binding`` is free for the caller (the commander keeps the replies binding the
    commands need there).
    """

    __slots__ = ("_commander", "_tail", "_flags", "binding")

    def __init__(self, exchange: str, routing_key: str, commander_id: str,
                 reply_to: str | None, mandatory: bool = True) -> None:
        super().__init__(exchange, routing_key, mandatory)
        # pamqp writes a table's entries sorted by name: command_id, commander_id,
        # internal, write_to_log (clu's own order too).
        self._commander = table_entry("commander_id", commander_id)
        if reply_to is not None:
            self._tail = _short_string(reply_to)
            self._flags = _COMMAND_FLAGS | _REPLY_TO
        else:
            self._tail = b""
            self._flags = _COMMAND_FLAGS
        self.binding: Any = None

    def encode(self, channel: int, max_content_size: int, command_id: str, body: bytes,
               message_id: str, internal: bool = False, write_to_log: bool = True) -> bytes:
        """All frames of one command: method, content header, body frame(s)."""
        command_id_bytes = command_id.encode()
        entries = b"".join((
            _COMMAND_ID_KEY, _LONG.pack(len(command_id_bytes)), command_id_bytes,
            self._commander, _COMMAND_FLAG_ENTRIES[bool(internal), bool(write_to_log)]))
        properties = b"".join((
            _HEADER_HEAD.pack(60, 0, len(body), self._flags),
            _CONTENT_TYPE, _LONG.pack(len(entries)), entries, _MODE_PRIORITY,
            _SHORT.pack(len(command_id_bytes)), command_id_bytes,  # correlation_id
            self._tail,  # reply_to
            _short_string(message_id),
        ))
        parts = [self.publish_method(channel),
                 _FRAME_HEAD.pack(_HEADER_FRAME, channel, len(properties)), properties,
                 _FRAME_END]
        if len(body) <= max_content_size:
            parts += (_FRAME_HEAD.pack(_BODY_FRAME, channel, len(body)), body, _FRAME_END)
        else:
            for start in range(0, len(body), max_content_size):
                chunk = body[start:start + max_content_size]
                parts += (_FRAME_HEAD.pack(_BODY_FRAME, channel, len(chunk)), chunk, _FRAME_END)
        return b"".join(parts)

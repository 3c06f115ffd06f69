"""The frames of a delivery and of a confirm, decoded straight into pamqp's objects.

``pamqp.frame.unmarshal`` decodes any frame by walking the frame class's attributes and
dispatching every field by the name of its type (``decode.by_type``), with a slice of
the rest of the data per field. The frames the bridge receives most -- a delivery's
``Basic.Deliver``, content header and body, and a publisher confirm's ``Basic.Ack`` /
``Basic.Nack`` -- have fixed layouts, so :func:`decode_frame` decodes those directly
(pamqp's own decoders for tables and timestamps, its classes for the results) and hands
every other frame to pamqp. The objects are those pamqp builds, attribute for
attribute (``tests/amqp/test_decoding.py`` compares them); whatever the direct way
cannot decode (a truncated field, bad UTF-8, ...) is decoded by pamqp, which then
raises as it always does.
"""

from __future__ import annotations

import struct
from typing import Any

import pamqp.frame
from pamqp import decode
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.constants import FRAME_BODY, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_METHOD
from pamqp.header import ContentHeader

__all__ = ["decode_frame"]

_unmarshal = pamqp.frame.unmarshal
_INDEX = struct.Struct(">I")
_TAG = struct.Struct(">Q")
_HEADER_START = struct.Struct(">HHQH")
_FLAGS = struct.Struct(">H")
_Deliver, _Ack, _Nack, _Properties = Basic.Deliver, Basic.Ack, Basic.Nack, Basic.Properties
_DELIVER, _ACK, _NACK = _Deliver.index, _Ack.index, _Nack.index
_new = object.__new__

#: (attribute, flag, type) of every property, in pamqp's (the wire's) order.
_PROPERTY_FIELDS = tuple((name, _Properties.flags[name], getattr(_Properties, "_" + name))
                         for name in _Properties.__slots__)
_DEFAULTS = tuple((name, "" if name == "cluster_id" else None)
                  for name, _, _ in _PROPERTY_FIELDS)


def decode_frame(data: bytes, start: int, end: int) -> Any:
    """The pamqp object of the frame ``data[start:end]`` (frame header to end byte, whose
    presence the caller checked), as ``pamqp.frame.unmarshal`` returns it."""
    kind = data[start]
    payload = start + FRAME_HEADER_SIZE
    try:
        if payload == end - 1:
            pass  # no payload: pamqp's (a heartbeat, or refused)
        elif kind == FRAME_BODY:
            return ContentBody(data[payload:end - 1])
        if kind == FRAME_HEADER:
            return _header(data, payload, end - 1)
        if kind == FRAME_METHOD:
            index = _INDEX.unpack_from(data, payload)[0]
            if index == _DELIVER:
                return _deliver(data, payload + 4, end - 1)
            if index == _ACK or index == _NACK:
                return _confirm(index, data, payload + 4, end - 1)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        pass  # pamqp decodes it (or raises what it raises for it)
    return _unmarshal(data[start:end])[2]


def _short_str(data: bytes, pos: int, stop: int) -> tuple[int, str]:
    after = pos + 1 + data[pos]
    if after > stop:
        raise ValueError("short string past the frame's end")
    return after, data[pos + 1:after].decode("utf-8")


def _deliver(data: bytes, pos: int, stop: int) -> Any:
    pos, consumer_tag = _short_str(data, pos, stop)
    if pos + 9 > stop:
        raise ValueError("Basic.Deliver truncated")
    delivery_tag = _TAG.unpack_from(data, pos)[0]
    redelivered = (data[pos + 8] & 1) != 0
    pos, exchange = _short_str(data, pos + 9, stop)
    pos, routing_key = _short_str(data, pos, stop)
    frame = _new(_Deliver)
    frame.consumer_tag = consumer_tag
    frame.delivery_tag = delivery_tag
    frame.redelivered = redelivered
    frame.exchange = exchange
    frame.routing_key = routing_key
    return frame


def _confirm(index: int, data: bytes, pos: int, stop: int) -> Any:
    if pos + 9 > stop:
        raise ValueError("confirm truncated")
    bits = data[pos + 8]
    if index == _ACK:
        frame = _new(_Ack)
    else:
        frame = _new(_Nack)
        frame.requeue = (bits & 2) != 0
    frame.delivery_tag = _TAG.unpack_from(data, pos)[0]
    frame.multiple = (bits & 1) != 0
    return frame


def _header(data: bytes, pos: int, stop: int) -> Any:
    if pos + 14 > stop:
        raise ValueError("content header truncated")
    class_id, weight, body_size, word = _HEADER_START.unpack_from(data, pos)
    pos += 14
    flags, shift = word, 0
    while word & 1:  # continued flag words (none are defined for Basic)
        word = _FLAGS.unpack_from(data, pos)[0]
        pos += 2
        shift += 16
        flags |= word << shift
    properties = _new(_Properties)
    for name, value in _DEFAULTS:
        setattr(properties, name, value)
    for name, flag, kind in _PROPERTY_FIELDS:
        if not flags & flag:
            continue
        if kind == "shortstr":
            pos, value = _short_str(data, pos, stop)
        elif kind == "octet":
            value = data[pos]
            pos += 1
        elif kind == "table":
            pos, value = _table(data, pos, stop)
        else:  # timestamp
            pos, value = _timestamp(data, pos)
        if pos > stop:
            raise ValueError("content header truncated")
        setattr(properties, name, value)
    header = _new(ContentHeader)
    header.class_id = class_id
    header.weight = weight
    header.body_size = body_size
    header.properties = properties
    return header


_S, _T, _V, _NUL = b"S"[0], b"t"[0], b"V"[0], 0
_embedded_value = decode.embedded_value


def _table(data: bytes, pos: int, stop: int) -> tuple[int, dict[str, Any]]:
    """A field table, as ``decode.field_table(data[pos:stop])`` decodes it: long strings,
    booleans and voids (every value of clu's headers) here, any other value by pamqp's
    ``embedded_value`` on the same bytes pamqp would give it. Anything irregular (an
    entry past the table's end, bad UTF-8) raises, and the frame goes to pamqp."""
    end = pos + 4 + _INDEX.unpack_from(data, pos)[0]
    if end > stop:
        raise ValueError("field table past the frame's end")
    pos += 4
    out: dict[str, Any] = {}
    while pos < end:
        after = pos + 1 + data[pos]
        key = data[pos + 1:after].decode("utf-8")
        kind = data[after]
        pos = after + 1
        if kind == _S:
            after = pos + 4 + _INDEX.unpack_from(data, pos)[0]
            value: Any = data[pos + 4:after].decode("utf-8")
            pos = after
        elif kind == _T:
            value = data[pos] != 0
            pos += 1
        elif kind == _V or kind == _NUL:
            value = None
        else:
            used, value = _embedded_value(data[after:stop])
            pos = after + used
        if pos > end:
            raise ValueError("field table entry past the table's end")
        out[key] = value
    return end, out


_last_timestamp: tuple[bytes, Any] = (b"", None)


def _timestamp(data: bytes, pos: int) -> tuple[int, Any]:
    """A timestamp as pamqp decodes it (an aware UTC datetime), the one of the last call
    again when the 8 bytes are the same (replies within one second: datetimes are
    immutable)."""
    global _last_timestamp
    raw = data[pos:pos + 8]
    last = _last_timestamp
    if raw == last[0]:
        return pos + 8, last[1]
    used, value = decode.timestamp(raw)
    _last_timestamp = (raw, value)
    return pos + used, value

"""``bridge.amqp.decoding.decode_frame`` gives what ``pamqp.frame.unmarshal`` gives.

For the frames it decodes itself (deliveries, content headers, bodies, confirms) the
objects are compared attribute by attribute and by type, over generated values; frames
it cannot decode are decoded (or refused) by pamqp exactly as before.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.exceptions import PAMQPException
from pamqp.header import ContentHeader

from bridge.amqp.decoding import decode_frame

short = st.text(max_size=40).filter(lambda s: len(s.encode()) < 256)
tags = st.integers(min_value=0, max_value=2 ** 63 - 1)  # what pamqp encodes
exchanges = st.from_regex(r"[a-zA-Z0-9_.:-]{0,60}", fullmatch=True)
scalars = st.one_of(st.booleans(), st.integers(-2 ** 31, 2 ** 31 - 1), short,
                    st.none(), st.floats(allow_nan=False, width=32))
tables = st.dictionaries(st.text(min_size=1, max_size=10).filter(
    lambda s: len(s.encode()) < 128), st.one_of(scalars, st.lists(scalars, max_size=3),
                                               st.dictionaries(short.filter(bool), scalars,
                                                               max_size=3)), max_size=6)
timestamps = st.integers(min_value=0, max_value=2 ** 32 - 1).map(
    lambda s: datetime.datetime.fromtimestamp(s, tz=datetime.UTC))


def both(frame: Any, channel: int = 3) -> tuple[Any, Any]:
    data = pamqp_frame.marshal(frame, channel)
    return decode_frame(data, 0, len(data)), pamqp_frame.unmarshal(data)[2]


def state(obj: Any) -> dict[str, Any]:
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(obj, "__dict__", {}))
    out = {n: getattr(obj, n) for n in names if hasattr(obj, n)}
    return {n: (type(v), state(v) if hasattr(v, "__slots__") and not isinstance(v, str)
                else v) for n, v in out.items()}


def assert_same(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs)
    assert state(ours) == state(theirs)


@settings(max_examples=200, deadline=None)
@given(short, tags, st.booleans(), exchanges, short)
def test_deliver(consumer_tag: str, tag: int, redelivered: bool, exchange: str,
                 routing_key: str) -> None:
    assert_same(*both(spec.Basic.Deliver(consumer_tag, tag, redelivered, exchange,
                                         routing_key)))


@settings(max_examples=100, deadline=None)
@given(tags, st.booleans(), st.booleans())
def test_confirms(tag: int, multiple: bool, requeue: bool) -> None:
    assert_same(*both(spec.Basic.Ack(tag, multiple)))
    assert_same(*both(spec.Basic.Nack(tag, multiple, requeue)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 ** 63), st.fixed_dictionaries({}, optional={
    "content_type": short, "content_encoding": short, "headers": tables,
    "delivery_mode": st.sampled_from([1, 2]), "priority": st.integers(0, 255),
    "correlation_id": short, "reply_to": short, "expiration": short,
    "message_id": short, "timestamp": timestamps, "message_type": short,
    "user_id": short, "app_id": short}))
def test_content_headers(body_size: int, properties: dict[str, Any]) -> None:
    assert_same(*both(ContentHeader(0, body_size, spec.Basic.Properties(**properties))))


def test_an_empty_body_frame_is_refused_as_pamqp_refuses_it() -> None:
    data = pamqp_frame.marshal(ContentBody(b""), 1)
    with pytest.raises(PAMQPException):
        decode_frame(data, 0, len(data))


@pytest.mark.parametrize("body", [b"x", b'{"text": "Pong."}', bytes(range(256)) * 40])
def test_bodies(body: bytes) -> None:
    assert_same(*both(ContentBody(body)))


def test_other_frames_are_pamqps() -> None:
    for frame in (spec.Basic.ConsumeOk("ctag"), spec.Channel.CloseOk(),
                  spec.Basic.Return(312, "NO_ROUTE", "ex", "rk")):
        assert_same(*both(frame))


def test_a_clu_reply_as_the_broker_delivers_it() -> None:
    header = ContentHeader(0, 17, spec.Basic.Properties(
        content_type="text/json", delivery_mode=1, priority=0,
        correlation_id="2e24b414-dff4-4128-b907-350d1a62668c",
        message_id="438bf5fb1a91470aa6bf362541bb235b",
        timestamp=datetime.datetime(2026, 12, 5, 9, 0, tzinfo=datetime.UTC),
        headers={"command_id": "2e24b414-dff4-4128-b907-350d1a62668c",
                 "commander_id": "relaybench.camera", "internal": True,
                 "message_code": ":", "sender": "camera"}))
    ours, theirs = both(header)
    assert_same(ours, theirs)
    assert ours.properties.headers["message_code"] == ":"


def corrupted(frame: Any, cut: int) -> bytes:
    """The frame with its payload cut short by ``cut`` bytes (sizes adjusted)."""
    data = pamqp_frame.marshal(frame, 1)
    payload = data[7:-1][:-cut]
    return data[:3] + len(payload).to_bytes(4, "big") + payload + data[-1:]


@pytest.mark.parametrize("frame", [
    spec.Basic.Deliver("ctag", 7, False, "sdss_exchange", "reply.x"),
    spec.Basic.Ack(9, True),
    ContentHeader(0, 5, spec.Basic.Properties(content_type="text/json",
                                              headers={"a": "b"}, message_id="m")),
])
@pytest.mark.parametrize("cut", [1, 3, 8])
def test_truncated_frames_are_refused_or_decoded_as_pamqp_does(frame: Any, cut: int) -> None:
    data = corrupted(frame, cut)
    try:
        theirs = pamqp_frame.unmarshal(data)[2]
    except PAMQPException as exc:
        with pytest.raises(type(exc)):
            decode_frame(data, 0, len(data))
    else:
        assert_same(decode_frame(data, 0, len(data)), theirs)


def test_bad_utf8_is_left_to_pamqp() -> None:
    data = bytearray(pamqp_frame.marshal(spec.Basic.Deliver("ab", 1, False, "", "rk"), 1))
    data[12] = 0xFF  # inside the consumer tag
    data = bytes(data)
    with pytest.raises(PAMQPException):
        pamqp_frame.unmarshal(data)
    with pytest.raises(PAMQPException):
        decode_frame(data, 0, len(data))


def _header_with_table(entries: bytes) -> bytes:
    """A content header frame whose only property is a headers table of raw ``entries``."""
    flags = spec.Basic.Properties.flags["headers"]
    payload = (b"\x00\x3c\x00\x00" + (5).to_bytes(8, "big") + flags.to_bytes(2, "big")
               + len(entries).to_bytes(4, "big") + entries)
    return b"\x02\x00\x01" + len(payload).to_bytes(4, "big") + payload + b"\xce"


@pytest.mark.parametrize("entries", [
    b"\x01aS\x00\x00\x00\x02\xff\xfe",  # not UTF-8: pamqp gives bytes
    b"\x01a\x00\x01bV\x01ct\x02",  # NUL and V are void; any non-zero octet is true
    b"\x01aI\x00\x00\x00\x07\x01bF\x00\x00\x00\x00",  # others go to pamqp's decoders
    b"\x01aS\x00\x00\x00\x09abc",  # a string past the table's end (and the frame's)
])
def test_irregular_header_tables_decode_as_pamqp_decodes_them(entries: bytes) -> None:
    data = _header_with_table(entries)
    try:
        theirs = pamqp_frame.unmarshal(data)[2]
    except Exception as exc:  # pamqp refuses it: so must we, the same way
        with pytest.raises(type(exc)):
            decode_frame(data, 0, len(data))
        return
    assert_same(decode_frame(data, 0, len(data)), theirs)


def test_clu_headers_are_decoded_without_falling_back_to_pamqp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.amqp import decoding

    header = ContentHeader(0, 17, spec.Basic.Properties(
        content_type="text/json", headers={"command_id": "7", "commander_id": "a.b",
                                           "internal": False, "message_code": "i",
                                           "sender": None},
        timestamp=datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)))
    data = pamqp_frame.marshal(header, 1)
    expected = pamqp_frame.unmarshal(data)[2]

    def refuse(_data: bytes) -> Any:
        raise AssertionError("fell back to pamqp")

    monkeypatch.setattr(decoding, "_unmarshal", refuse)
    monkeypatch.setattr(decoding, "_embedded_value", refuse)
    for _ in range(2):  # the second time with the cached timestamp
        assert_same(decode_frame(data, 0, len(data)), expected)

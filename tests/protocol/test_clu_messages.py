"""Unit tests for the sans-IO clu AMQP contract (bridge.protocol.clu_messages)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.protocol import clu_messages as cm
from bridge.protocol.clu_messages import (
    CommandMessage,
    MessageError,
    ReplyMessage,
    decode_command,
    decode_reply,
    encode_json,
)

HEADERS = {"command_id": "id-1", "commander_id": "me.camera", "internal": False, "write_to_log": True}


def body(command_string: Any) -> bytes:
    return json.dumps({"command_string": command_string}).encode()


# -- names -------------------------------------------------------------------------------


def test_topology_names() -> None:
    assert (cm.EXCHANGE_NAME, cm.EXCHANGE_TYPE) == ("sdss_exchange", "topic")
    assert cm.EXCHANGE_AUTO_DELETE is True and cm.EXCHANGE_DURABLE is False
    assert cm.commands_queue_name("camera") == "camera_commands"
    assert cm.replies_queue_name("me") == "me_replies"
    assert cm.commands_binding("camera") == "command.camera.#"
    assert cm.command_routing_key("camera") == "command.camera"
    assert cm.REPLIES_BINDING == "reply.#"
    assert cm.reply_routing_key("a.b.c") == "reply.a.b.c"
    assert cm.reply_routing_key(None) == cm.reply_routing_key("a", broadcast=True) == "reply.broadcast"
    assert cm.default_commander_id("me", "camera") == "me.camera"
    assert cm.routing_failure_body("x") == {"error": "Failed routing message to consumer 'x'."}


@pytest.mark.parametrize("name", ["", "a.b", "a#", "a*", "a b", "a\tb"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        cm.check_name(name)


def test_codes() -> None:
    assert [c for c in ">idwef:!" if cm.is_terminal(c)] == ["f", ":", "!"]
    assert [c for c in ">idwef:!" if cm.is_failure(c)] == ["f", "!"]
    for bad in ("F", "x", "", "::"):
        with pytest.raises(ValueError):
            cm.check_code(bad)
    assert cm.default_internal(">", False) is True
    assert cm.default_internal("i", False) is False and cm.default_internal(":", True) is True


# -- commands ------------------------------------------------------------------------------


def test_command_builders_match_clu_client() -> None:
    cmd = CommandMessage("id-1", "me.camera", "expose 1", internal=True, reply_to="me_replies")
    assert cmd.headers() == {
        "command_id": "id-1", "commander_id": "me.camera", "internal": True, "write_to_log": True,
    }
    assert cmd.properties() == {
        "content_type": "text/json", "correlation_id": "id-1", "reply_to": "me_replies",
    }
    assert cmd.body() == b'{"command_string": "expose 1"}'
    assert "reply_to" not in CommandMessage("i", "c", "s").properties()


def test_decode_command_round_trip() -> None:
    cmd = CommandMessage("id-1", "me.camera", "expose 1 --dark", reply_to="me_replies")
    got = decode_command(cmd.headers(), cmd.body(), "id-1", reply_to="me_replies")
    assert got == cmd


def test_decode_command_defaults_and_extras() -> None:
    got = decode_command(
        {"command_id": b"id-1", "commander_id": "me.camera", "internal": None},
        b'{"command_string": "ping", "extra": 1}', None,
    )
    assert got == CommandMessage("id-1", "me.camera", "ping", internal=False, write_to_log=True)


@given(st.text(st.characters(blacklist_characters="\r\n"), min_size=1).filter(str.strip))
def test_any_single_line_command_string_round_trips(text: str) -> None:
    cmd = CommandMessage("id", "a.b", text)
    assert decode_command(cmd.headers(), cmd.body(), "id").command_string == text


BAD_COMMANDS: list[tuple[str, dict[str, Any], bytes, str]] = [
    ("non-json", HEADERS, b"ping", "not valid JSON"),
    ("bad-utf8", HEADERS, b"\xff", "not valid JSON"),
    ("list", HEADERS, b"[1]", "must be a JSON object, not list"),
    ("string", HEADERS, b'"ping"', "must be a JSON object, not str"),
    ("missing", HEADERS, b"{}", "no command_string"),
    ("null", HEADERS, body(None), "must be a string, not null"),
    ("number", HEADERS, body(3), "must be a string, not int"),
    ("lf", HEADERS, body("a\nb"), "CR or LF"),
    ("cr", HEADERS, body("a\r"), "CR or LF"),
    ("empty", HEADERS, body(""), "empty command_string"),
    ("blank", HEADERS, body(" \t "), "empty command_string"),
    ("no-commander", {"command_id": "id-1"}, body("ping"), "missing commander_id"),
    ("int-commander", {**HEADERS, "commander_id": 7}, body("ping"), "commander_id header must be a string"),
    ("empty-commander", {**HEADERS, "commander_id": ""}, body("ping"), "empty commander_id"),
    ("no-command-id", {"commander_id": "me.camera"}, body("ping"), "missing command_id"),
    ("int-command-id", {**HEADERS, "command_id": 5}, body("ping"), "command_id header must be a string"),
    ("bad-internal", {**HEADERS, "internal": "no"}, body("ping"), "internal header must be a boolean"),
    ("bad-write", {**HEADERS, "write_to_log": 2}, body("ping"), "write_to_log header must be a boolean"),
    ("task", {"commander_id": "me.camera", "task": True}, b'{"task": "t1"}', "task messages (task 't1')"),
]


@pytest.mark.parametrize(("headers", "data", "reason"), [c[1:] for c in BAD_COMMANDS],
                         ids=[c[0] for c in BAD_COMMANDS])
def test_bad_commands_raise_one_error_type(headers: dict[str, Any], data: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as info:
        decode_command(headers, data, "corr-1")
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_message_error_recovers_ids_for_an_answer() -> None:
    with pytest.raises(MessageError) as info:
        decode_command({"commander_id": "me.camera", "internal": True}, body("ping"), "corr-1")
    err = info.value
    assert (err.commander_id, err.command_id, err.internal) == ("me.camera", "corr-1", True)
    assert err.answerable
    with pytest.raises(MessageError) as info:
        decode_command({**HEADERS, "command_id": "hdr"}, b"nope", "corr-1")
    assert info.value.command_id == "hdr"  # the header wins over the correlation id
    with pytest.raises(MessageError) as info:
        decode_command(None, b"nope", None)
    assert (info.value.commander_id, info.value.command_id) == (None, None)
    assert not info.value.answerable


# -- replies ---------------------------------------------------------------------------------


def test_reply_builders_match_clu_actor() -> None:
    cmd = CommandMessage("id-1", "me.camera", "ping", internal=False)
    started = ReplyMessage.for_command(cmd, ">", None, "camera")
    done = ReplyMessage.for_command(cmd, ":", {"text": "Pong."}, "camera")
    assert started.headers() == {
        "message_code": ">", "commander_id": "me.camera", "command_id": "id-1",
        "sender": "camera", "internal": True,
    }
    assert list(started.headers()) == ["message_code", "commander_id", "command_id", "sender", "internal"]
    assert done.headers()["internal"] is False and done.is_terminal and not done.is_failure
    assert started.routing_key() == "reply.me.camera"
    assert done.body_bytes() == b'{"text": "Pong."}' and started.body_bytes() == b"{}"
    now = datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert done.properties(now) == {
        "content_type": "text/json", "correlation_id": "id-1", "timestamp": now,
    }
    assert done.properties()["timestamp"].tzinfo is timezone.utc
    internal_cmd = CommandMessage("id-2", "a.b", "x", internal=True)
    assert ReplyMessage.for_command(internal_cmd, "i", {}, "b").internal is True
    assert ReplyMessage.for_command(cmd, "i", {}, "camera", internal=True).internal is True
    with pytest.raises(ValueError):
        ReplyMessage.for_command(cmd, "I", {}, "camera")


def test_broadcast_reply() -> None:
    reply = ReplyMessage.broadcast_reply("i", {"text": "hola"}, "camera")
    assert reply.routing_key() == "reply.broadcast"
    assert reply.headers() == {
        "message_code": "i", "commander_id": None, "command_id": None,
        "sender": "camera", "internal": False,
    }
    assert reply.properties()["correlation_id"] is None


def test_reply_round_trip_with_nan_and_infinity() -> None:
    reply = ReplyMessage(
        "i", "me.camera", "id-1", "camera",
        body={"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "s": "Zoë"},
    )
    data = reply.body_bytes()
    assert data == json.dumps(reply.body).encode()  # what clu's json.dumps writes
    assert b"NaN" in data and b"-Infinity" in data
    got = decode_reply(reply.headers(), data, "id-1", routing_key="reply.me.camera")
    assert math.isnan(got.body["nan"]) and got.body["inf"] == math.inf and got.body["s"] == "Zoë"
    assert (got.message_code, got.commander_id, got.command_id, got.sender) == (
        "i", "me.camera", "id-1", "camera",
    )
    assert not got.broadcast


def test_decode_reply_like_clu_amqp_reply() -> None:
    broadcast = decode_reply(
        {"message_code": "i", "commander_id": None, "command_id": None, "sender": "camera",
         "internal": False},
        b'{"text": "hola"}', None, routing_key="reply.broadcast",
    )
    assert broadcast.broadcast and broadcast.command_id is None and broadcast.commander_id is None
    # Missing sender is only a warning in clu: still valid.
    assert decode_reply({"message_code": ":"}, b"{}", "id-1").sender is None
    # Timed commands: integer command id 0 is falsy, not compared.
    assert decode_reply({"message_code": "i", "command_id": 0}, b"{}", "0").command_id == "0"
    # The correlation id is the reply's command id even without the header.
    assert decode_reply({"message_code": "i"}, b"{}", "abc").command_id == "abc"


@pytest.mark.parametrize(
    ("headers", "data", "correlation_id", "reason"),
    [
        ({}, b"{}", "id", "no message_code"),
        ({"message_code": ""}, b"{}", "id", "no message_code"),
        ({"message_code": "i", "command_id": 5}, b"{}", "5", "differs from its correlation_id"),
        ({"message_code": "i", "command_id": "a"}, b"{}", "b", "differs from its correlation_id"),
        ({"message_code": "i", "command_id": "a"}, b"{}", None, "differs from its correlation_id"),
        ({"message_code": "i"}, b"not json", "id", "not valid JSON"),
        ({"message_code": "i"}, b"[]", "id", "must be a JSON object"),
    ],
)
def test_invalid_replies(headers: dict[str, Any], data: bytes, correlation_id: str | None,
                         reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_reply(headers, data, correlation_id)


@given(
    st.sampled_from(sorted(cm.MESSAGE_CODES)),
    st.dictionaries(
        st.text(min_size=1),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=5,
    ),
    st.booleans(),
)
def test_reply_round_trip_property(code: str, payload: dict[str, Any], internal: bool) -> None:
    cmd = CommandMessage("cid", "x.y.z", "go", internal=internal)
    reply = ReplyMessage.for_command(cmd, code, payload, "z")
    got = decode_reply(reply.headers(), reply.body_bytes(), reply.properties()["correlation_id"],
                       routing_key=reply.routing_key())
    assert got.body == payload and got.internal == reply.internal
    assert got.message_code == code and got.is_terminal == cm.is_terminal(code)


def test_ids_too_long_for_amqp_short_strings() -> None:
    """``reply.<commander_id>`` is a routing key and the command id becomes the replies'
    correlation id: both AMQP short strings (255 bytes). Found by the AMQP fuzz test: a
    300-character commander id made the rejection itself unpublishable (no reply at all)."""
    good = {"command_id": "c1", "commander_id": "a.b"}
    body = b'{"command_string": "ping"}'
    longest = "x" * (255 - len("reply."))
    assert cm.usable_commander_id(longest) and not cm.usable_commander_id(longest + "x")
    assert not cm.usable_commander_id("\u00e9" * 125)  # 250 characters, 250 + 6 bytes
    assert decode_command({**good, "commander_id": longest}, body, "c1").commander_id == longest
    with pytest.raises(MessageError, match="commander_id header too long") as info:
        decode_command({**good, "commander_id": longest + "x"}, body, "c1")
    assert info.value.commander_id is None and info.value.command_id == "c1"  # broadcast
    with pytest.raises(MessageError, match="command_id header too long") as info:
        decode_command({**good, "command_id": "y" * 256}, body, "c1")
    assert info.value.commander_id == "a.b" and info.value.command_id == "c1"
    # Both too long: answered where a reply can go (the broadcast, null ids).
    with pytest.raises(MessageError, match="too long") as info:
        decode_command({"command_id": "z" * 300, "commander_id": "q" * 300}, b"{}", None)
    assert info.value.commander_id is None and info.value.command_id is None


@pytest.mark.parametrize("text", [
    '{"a": 1}', '{"a": 1, "a": 2}', '{"big": 123456789012345678901234567890}',
    '{"u64": 18446744073709551615}', '{"neg": -9223372036854775809}', '[-9223372036854775808]',
    '{"x": NaN, "y": -Infinity}', '"\\ud800"', '{"f": 1e400, "g": 0.1}',
    '{"s": "caf\\u00e9 \\u2603", "l": [1, 2.5, null, true]}',
])
def test_decode_json_gives_the_standard_librarys_values(text: str) -> None:
    """The fast decoder never changes a value: big integers stay integers, what
    orjson refuses is read by the standard library."""
    for data in (text, text.encode()):
        decoded, expected = cm.decode_json(data), json.loads(text)
        assert repr(decoded) == repr(expected)
        assert type(decoded) is type(expected)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20))
def test_decode_json_agrees_with_the_standard_library(value: Any) -> None:
    text = json.dumps(value)
    assert repr(cm.decode_json(text.encode())) == repr(json.loads(text))


@pytest.mark.parametrize("data", [b"{", b"\xff\xfe", b"[1,]", b"\xef\xbb\xbf{}"])
def test_decode_json_errors_are_the_standard_librarys(data: bytes) -> None:
    with pytest.raises(ValueError) as fast:
        cm.decode_json(data)
    with pytest.raises(ValueError) as slow:
        json.loads(data.decode("utf-8"))
    assert type(fast.value) is type(slow.value)


# -- encode_json: json.dumps's bytes and errors through a C encoder made once ------------

_JSON_CASES = [
    {}, {"a": 1}, {"text": "h\u00e9llo \u2603 \"q\"\n\t"}, [1, "a"], 5, 1.0, None, True, "s",
    {"x": [1, 2.5, float("nan"), float("inf"), -float("inf"), None, True, False]},
    {"nested": {"a": [{"b": []}, (1, 2)]}}, {1: "int key", 2.5: "f", None: 1, True: 2},
    {"big": 10**30, "small": 1e-7, "neg": -0.0},
]


@pytest.mark.parametrize("obj", _JSON_CASES, ids=range(len(_JSON_CASES)))
def test_encode_json_is_json_dumps(obj):
    assert encode_json(obj) == json.dumps(obj).encode()


def _circular() -> dict:
    d: dict = {}
    d["self"] = d
    return d


@pytest.mark.parametrize("bad", [_circular, lambda: {"o": object()}, lambda: {("t",): 1},
                                 lambda: {"ok": [1, {"deep": object()}]}])
def test_encode_json_raises_what_json_dumps_raises_and_recovers(bad):
    with pytest.raises(Exception) as expected:
        json.dumps(bad())
    with pytest.raises(expected.type, match=re.escape(str(expected.value))):
        encode_json(bad())
    shared = [1, 2]
    assert encode_json({"a": shared, "b": shared}) == b'{"a": [1, 2], "b": [1, 2]}'


def test_encode_json_forgets_what_a_failed_call_marked():
    inner: list[Any] = [object()]
    outer = {"x": inner}
    with pytest.raises(TypeError):
        encode_json(outer)  # fails inside ``inner``: it and ``outer`` were being encoded
    inner[0] = 1
    assert encode_json(outer) == b'{"x": [1]}'  # not "Circular reference detected"
    assert encode_json({"y": inner}) == b'{"y": [1]}'

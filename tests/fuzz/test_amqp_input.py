"""Fuzzed AMQP input, published raw with aio-pika: command messages (bodies, headers,
properties) to the bridge's faces, and reply messages into the bridge's commander.

Commands go to the AMQP face of a real clu legacy actor and to the bridge's control
actor. Each message gets exactly one terminal reply from the bridge: its own (a valid
command), or an ``f`` naming the problem, sent to its commander when the headers name
one, else broadcast and logged. The consumer stays up (a sentinel command after each
message is answered) and nothing stays in flight.

Replies (anything on ``reply.#``, hostile bodies from the AMQP actor a legacy face
serves, forged ids) reach the bridge's commander: the legacy clients of that face and
of the hub port only ever get well-formed lines, one per message at most; a command
running meanwhile still ends exactly once; the commander keeps consuming.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from hypothesis import given
from hypothesis import strategies as st

from bridge.protocol import parse_actor_reply, parse_hub_reply
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_actor, raw_publisher, wire_spy
from tests.faults.helpers import LineClient, RobustClient, code, in_flight, until
from tests.fuzz.helpers import (
    FUZZ_SETTINGS,
    HOSTILE_JSON,
    ONE_LINE_TEXT,
    Counter,
    drive,
)
from tests.hub.helpers import RawCommander
from tests.support.aio import aio_test
from tests.support.ports import free_port

NAME = "fuzzamqp"
TERMINAL = (":", "f", "!")

# -- command messages ----------------------------------------------------------------------

HEADER_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    # Finite only: RabbitMQ closes the *publisher's* connection (541 INTERNAL_ERROR) for a
    # NaN or infinite float in a header table, so such a message never reaches the bridge
    # (test_non_finite_float_header_never_reaches_the_bridge).
    st.floats(width=32, allow_nan=False, allow_infinity=False), ONE_LINE_TEXT,
    st.binary(max_size=20).map(bytearray),  # as pamqp packs
    st.sampled_from(["", " ", "a.b", "x" * 300, "a" * 250 + ".bb", "\u2603.\U0001f600",
                     "a\nb", "a b", "a.#", "*", "reply.x"]),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
    st.dictionaries(st.text(max_size=4),  # AMQP tables hold 64-bit integers at most
                    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1), max_size=2))
HEADERS = st.fixed_dictionaries({}, optional={
    "command_id": HEADER_VALUES, "commander_id": HEADER_VALUES, "internal": HEADER_VALUES,
    "write_to_log": HEADER_VALUES, "task": HEADER_VALUES,
    "message_code": HEADER_VALUES, "sender": HEADER_VALUES,
}).flatmap(lambda h: st.dictionaries(st.text(max_size=8), HEADER_VALUES, max_size=2).map(
    lambda extra: {**extra, **h}))
COMMAND_TEXT = st.one_of(
    st.sampled_from(["ping", "status", "echo a b", "fail_me", "help", "version", "",
                     "   ", "ping\nstatus", "ping\r", "ping\x00", "slow 0.01", "status\n",
                     "x" * 70_000, "echo " + "y" * 1_000_000, "\u2603", "echo NaN inf"]),
    ONE_LINE_TEXT)
BODIES = st.one_of(
    st.binary(max_size=100),
    HOSTILE_JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda t, extra: json.dumps({"command_string": t, **extra}).encode(),
              COMMAND_TEXT, st.dictionaries(st.text(max_size=6), HOSTILE_JSON, max_size=2)),
    st.builds(lambda v: json.dumps({"command_string": v}).encode(), HOSTILE_JSON),
    st.sampled_from([b'{"command_string": NaN}', b'{"command_string": "ping"', b"\xff\xfe",
                     b'{"command_string": "ping", "command_string": "status"}', b"null",
                     b'"ping"', b"[]", b"{}", b'{"task": "expose", "exptime": 1}']))


async def publish(exchange, key: str, body: bytes, headers: dict, correlation: str | None):
    await exchange.publish(aio_pika.Message(body, headers=headers, correlation_id=correlation,
                                            content_type="text/json"), routing_key=key)


@aio_test
async def test_fuzzed_command_messages(amqp_url, start_clu_shutter):
    shutter = start_clu_shutter()
    count = Counter("AMQP command messages (bodies, headers)")
    config = parse_config({"name": NAME, "timeouts": {"command": 20},
                           "actors": {"shutter": {"lives": "legacy", "port": shutter.port}}})
    async with Bridge(config, amqp_url) as bridge, wire_spy(amqp_url) as spy, \
            raw_publisher(amqp_url) as exchange:
        await bridge.router.target("shutter").start(wait=True, timeout=30)
        endpoints = {"shutter": bridge.actors["shutter"].amqp_face.endpoint,
                     NAME: bridge.control.endpoint}
        sentinels = itertools.count()

        async def check(target, suffix, headers, body, correlation):
            start = len(spy.messages)
            await publish(exchange, f"command.{target}{suffix}", body, headers, correlation)
            count.add()
            # A well-formed command after it: answered, so the consumer is still up.
            sentinel = f"sentinel-{next(sentinels)}"
            await publish(exchange, f"command.{target}", b'{"command_string": "ping"}',
                          {"command_id": sentinel, "commander_id": f"fuzzer.{target}"},
                          sentinel)
            await spy.wait_terminal(sentinel, timeout=60)
            endpoint = endpoints[target]
            await until(lambda: not endpoint.in_flight, "the fuzzed command to end", 60)
            await asyncio.sleep(0.05)  # a second terminal reply would be here
            new = [m for m in spy.messages[start:] if m.correlation_id != sentinel
                   and (m.headers or {}).get("sender") == target]
            ends = [m for m in new if (m.headers or {}).get("message_code") in TERMINAL]
            assert len(ends) == 1, [(m.routing_key, m.headers, m.body[:200]) for m in new]
            for m in new:
                assert isinstance(json.loads(m.body), dict)

        def hypothesis_test(run):
            return FUZZ_SETTINGS(given(
                target=st.sampled_from(["shutter", "shutter", NAME]),
                suffix=st.sampled_from(["", "", ".extra"]), headers=HEADERS, body=BODIES,
                correlation=st.one_of(st.none(), ONE_LINE_TEXT, st.just("x" * 255)))(
                lambda **example: run(**example)))

        await drive(check, hypothesis_test)
        await until(lambda: not in_flight(bridge), "nothing in flight")
        assert bridge.status()["actors"][0]["state"] == "connected"
    count.report()


@aio_test
async def test_non_finite_float_header_never_reaches_the_bridge(amqp_url, start_clu_shutter):
    """RabbitMQ cannot hold NaN/infinity in a header table: it closes the publisher's
    connection (541 INTERNAL_ERROR) and drops the message. The bridge never sees it and
    keeps serving on its own connection."""
    shutter = start_clu_shutter()
    config = parse_config({"name": NAME, "actors": {"shutter": {"lives": "legacy",
                                                                "port": shutter.port}}})
    async with Bridge(config, amqp_url) as bridge, wire_spy(amqp_url) as spy:
        await bridge.router.target("shutter").start(wait=True, timeout=30)
        for value in (float("nan"), float("inf"), float("-inf")):
            async with raw_publisher(amqp_url) as exchange:
                channel = exchange.channel
                try:
                    await publish(exchange, "command.shutter", b'{"command_string": "ping"}',
                                  {"commander_id": "fuzzer.shutter", "command_id": "nan",
                                   "x": value}, "nan")
                except Exception as exc:  # the broker's answer, if it comes first
                    assert "INTERNAL_ERROR" in repr(exc), repr(exc)
                await until(lambda: channel.is_closed,
                            "the broker to close the publisher's connection", 30)
        async with raw_publisher(amqp_url) as exchange:
            await publish(exchange, "command.shutter", b'{"command_string": "ping"}',
                          {"commander_id": "fuzzer.shutter", "command_id": "after"}, "after")
            await spy.wait_terminal("after", timeout=30)
        assert not [m for m in spy.messages if m.correlation_id == "nan"]
        assert bridge.connection.connected
        await until(lambda: not in_flight(bridge), "nothing in flight")


# -- reply messages ------------------------------------------------------------------------

@asynccontextmanager
async def camera_served(amqp_url: str) -> AsyncIterator[tuple[Bridge, Any, LineClient,
                                                               RawCommander]]:
    """A clu AMQP actor ``camera`` served by the bridge on a legacy port and on its hub
    port; yields the bridge, a raw publisher, a greeted client of the face, a hub client."""
    face_port, hub_port = free_port(), free_port()
    config = parse_config({"name": NAME, "hub": {"port": hub_port},
                           "actors": {"camera": {"lives": "amqp", "legacy_port": face_port}}})
    async with clu_actor(amqp_url, "camera"), Bridge(config, amqp_url) as bridge, \
            raw_publisher(amqp_url) as exchange:
        face = await LineClient.connect(face_port)
        hub = await RawCommander.connect(hub_port, "fuzz.hub")
        try:
            await until(lambda: face.user_id is not None, "the greeting")
            yield bridge, exchange, face, hub
        finally:
            await face.close()
            await hub.close()


@aio_test
async def test_fuzzed_reply_messages(amqp_url):
    count = Counter("AMQP reply messages (bodies, headers, forged ids)")
    async with camera_served(amqp_url) as (bridge, exchange, face, hub):
        client = await RobustClient("fuzzer").start(amqp_url)
        mids = itertools.count(1)
        try:
            async def check(key, headers, body, running):
                face_start, hub_start = len(face.lines), len(hub.lines)
                mid = next(mids)
                if running:  # a command in flight through the face while the junk arrives
                    face.send(f"{mid} ping")
                await publish(exchange, key, body, headers,
                              headers.get("command_id") if isinstance(
                                  headers.get("command_id"), str) else None)
                count.add()
                if running:
                    await face.wait_terminal(mid, 60)
                # The commander still consumes: a command through it is answered.
                assert code(await client.call(NAME, "ping", 60)) == ":"
                sentinel = hub.send("camera", "ping")
                await hub.wait_for(sentinel, timeout=60)
                await until(lambda: not in_flight(bridge), "nothing in flight", 60)
                await asyncio.sleep(0.05)
                new_face = face.lines[face_start:]
                for line in new_face:
                    parse_actor_reply(line)
                broadcasts = [l for l in new_face if l.startswith("0 0 ")]
                # The hub sentinel's reply reaches the face's clients too (cid 0); the junk
                # adds at most one line.
                assert "0 0 : text=Pong." in broadcasts, new_face
                assert len(broadcasts) <= 2, new_face
                if running:
                    assert face.terminals[mid] == 1, new_face
                for line in hub.lines[hub_start:]:
                    parse_hub_reply(line)
                assert not face.closed

            sender = st.sampled_from(["camera", "camera", "other", "", None, 5])
            forged = st.fixed_dictionaries({
                "message_code": st.sampled_from([">", "i", "w", "e", "f", ":", "!", "x", "",
                                                 None, 1]),
                "sender": sender,
                "commander_id": st.one_of(st.none(), ONE_LINE_TEXT,
                                          st.sampled_from([f"{NAME}.camera", "fuzzer.x"])),
                "command_id": st.one_of(st.none(), ONE_LINE_TEXT,
                                        st.builds(lambda: str(uuid.uuid4()))),
                "internal": st.one_of(st.booleans(), st.none(), st.just("yes")),
            }).flatmap(lambda h: st.sampled_from([h, {**h, "extra": "x"},
                                                  {k: v for k, v in h.items()
                                                   if k != "message_code"}]))
            bodies = st.one_of(
                HOSTILE_JSON.filter(lambda v: isinstance(v, dict)).map(
                    lambda v: json.dumps(v).encode()),
                st.dictionaries(st.sampled_from(["text", "a b", "x=y", "q\"", "n\nl", "",
                                                 "spam_index", "k;v", "é"]),
                                HOSTILE_JSON, max_size=3).map(lambda v: json.dumps(v).encode()),
                st.binary(max_size=60),
                st.sampled_from([b'{"v": NaN, "w": Infinity}', b'{"t": "a\\nb\\r\\u0000c"}',
                                 b"[1,2]", b"null", b'{"x": ' + b"[" * 500 + b"]" * 500 + b"}",
                                 b'{"s": "' + b"z" * 200_000 + b'"}']))

            def hypothesis_test(run):
                return FUZZ_SETTINGS(given(
                    key=st.sampled_from(["reply.broadcast", "reply.broadcast",
                                         f"reply.{NAME}.camera", "reply.fuzzer.x", "reply"]),
                    headers=forged, body=bodies, running=st.booleans())(
                    lambda **example: run(**example)))

            await drive(check, hypothesis_test)
        finally:
            await client.stop()
    count.report()


@aio_test
async def test_reply_with_an_unknown_code_reaches_no_legacy_client(amqp_url, caplog):
    """Found by the reply fuzz test: a reply whose message_code is no reply code (``1``,
    ``x``) was relayed to hub-port clients as a broken line (``.camera 0 camera 1``)."""
    async with camera_served(amqp_url) as (_bridge, exchange, face, hub):
        for code_ in (1, "x", "ii", " "):
            await publish(exchange, "reply.broadcast", b'{"a": 1}',
                          {"message_code": code_, "sender": "camera"}, None)
        await publish(exchange, "reply.broadcast", b'{"b": 2}',
                      {"message_code": "i", "sender": "camera"}, None)
        await hub.read_until(lambda l: l.startswith(".camera 0 camera i b=2"))
        await face.wait_terminal(await_ping(face), 30)
    assert [l for l in face.lines if l.startswith("0 0 ")
            and "UserInfo" not in l] == ["0 0 i b=2"]
    assert [l for l in hub.lines if l.startswith(".camera ")] == [".camera 0 camera i b=2"]
    assert sum("is not a reply code" in r.getMessage() for r in caplog.records) == 4


def await_ping(face: LineClient) -> int:
    face.send("99 ping")
    return 99

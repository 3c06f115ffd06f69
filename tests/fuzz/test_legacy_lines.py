"""Fuzzed legacy input into the assembled bridge: command lines on an AMQP actor's legacy
face and on the hub port (routes to a clu AMQP actor, a clu legacy actor, the bridge's
control actor and the hub itself), and endless lines that would fill a buffer.

For every line: a well-formed command gets exactly one terminal reply for its mid; any
other line gets at most one terminal reply per mid (an ``f`` naming the problem, or
nothing); every line the bridge writes is a well-formed reply line; the connection
stays up (a sentinel command after each line that is not a command is answered);
nothing stays in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter as Tally
from contextlib import asynccontextmanager

from hypothesis import assume, given
from hypothesis import strategies as st

from bridge.protocol import parse_actor_reply, parse_hub_reply
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.amqp.helpers import clu_actor
from tests.faults.helpers import LineClient, in_flight, until
from tests.fuzz.helpers import FUZZ_SETTINGS, ONE_LINE_BYTES, ONE_LINE_TEXT, Counter, drive, rss_mb
from tests.hub.helpers import RawCommander
from tests.support.aio import aio_test
from tests.support.ports import free_port

NAME = "fuzzbridge"
SENTINEL = 10 ** 9
KNOWN = st.sampled_from(["ping", "status", "fail_me", "levels", "values", "help", "version",
                         "ping extra args", "--help", "levels --nope", "", "   ", "\t",
                         "ping\r", "ping\x00", "pi\x00ng", "ping\rstatus", "x" * 3000,
                         'ping "unterminated', "ping 'a b'", "☃ ping", "\x1b[31mping"])
TEXT = st.one_of(KNOWN, ONE_LINE_TEXT)
COMMANDER = st.one_of(st.none(), st.sampled_from(["APO.john", "a.b", "x.y.z", "tron.tron"]),
                      st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}(\.[A-Za-z0-9_]{1,6}){1,2}",
                                    fullmatch=True))
COMMAND = st.tuples(st.just("cmd"), COMMANDER, TEXT, st.sampled_from(["\n", "\r\n"]))
GARBAGE = st.tuples(st.just("raw"), st.one_of(
    ONE_LINE_BYTES,
    st.sampled_from([b"", b"\r", b"   ", b"5", b"a.b 7", b"a.b 7   ", b"1 2", b"1 2 ",
                     b"\x00\x00\x00", b"\xff\xfe 3 ping", b"\xc3\x28 ping", b"4 pi\xffng",
                     b"a.b 9 " + b"y" * 70_000, b"z" * 70_000])))
HUB_ACTORS = st.sampled_from(["camera", "shutter", NAME, "hub", "keys", "msg", "nosuch",
                              "Camera", "camera.x"])
HUB_COMMAND = st.tuples(st.just("cmd"), HUB_ACTORS, TEXT, st.sampled_from(["\n", "\r\n"]))
TERMINAL = ":fF!"


@asynccontextmanager
async def fuzz_bridge(amqp_url, shutter_port):
    face_port, hub_port = free_port(), free_port()
    config = parse_config({"name": NAME, "hub": {"port": hub_port},
                           "timeouts": {"command": 20},
                           "actors": {"camera": {"lives": "amqp", "legacy_port": face_port},
                                      "shutter": {"lives": "legacy", "port": shutter_port}}})
    async with clu_actor(amqp_url, "camera"), Bridge(config, amqp_url) as bridge:
        await bridge.router.target("shutter").start(wait=True, timeout=30)
        await until(lambda: not in_flight(bridge), "the hub's init commands")
        yield bridge, face_port, hub_port


def starts_with_number(text: str) -> bool:
    """``cmdr mid 5 rest`` reaches a legacy actor that reads tron's ``cid mid text`` header
    as mid 5 (see tests/hub/test_hub_fuzz.py): a property of those actors."""
    return re.match(r"[ \t]*\d+(?:[ \t]|\Z)", text) is not None


@aio_test
async def test_fuzzed_lines_on_a_legacy_face(amqp_url, start_clu_shutter):
    shutter = start_clu_shutter()
    count = Counter("legacy command lines (legacy face)")
    mids = itertools.count(1)
    sentinels = itertools.count(SENTINEL)
    async with fuzz_bridge(amqp_url, shutter.port) as (bridge, face_port, _hub):
        face = bridge.actors["camera"].legacy_face
        client = await LineClient.connect(face_port)
        await until(lambda: client.user_id is not None, "the greeting")

        async def check(items):
            for item in items:
                start = len(client.lines)
                expect = None
                if item[0] == "cmd":
                    _, commander, text, eol = item
                    expect = next(mids)
                    head = f"{commander} {expect}" if commander else f"{expect}"
                    client.send_raw(f"{head} {text}{eol}".encode())
                else:
                    client.send_raw(item[1] + b"\n")
                count.add()
                sentinel = None
                if expect is None:  # a sentinel command shows the line has been handled
                    sentinel = next(sentinels)
                    await client.command(f"fuzz.sentinel {sentinel} ping", sentinel, 60)
                else:
                    await client.wait_terminal(expect, 60)
                await until(lambda: face.in_flight == 0, "the face's commands to end")
                new = client.lines[start:]
                ends = Tally(parse_actor_reply(l).mid for l in new
                             if parse_actor_reply(l).code in TERMINAL)
                assert all(n == 1 for n in ends.values()), new
                assert ends[expect if sentinel is None else sentinel] == 1, new

        def hypothesis_test(run):
            def one(items):
                run(items=items)
            return FUZZ_SETTINGS(given(items=st.lists(st.one_of(COMMAND, COMMAND, GARBAGE),
                                                      min_size=1, max_size=4))(one))

        await drive(check, hypothesis_test)
        assert not client.closed
        await until(lambda: not in_flight(bridge), "nothing in flight")
        await client.close()
    count.report()


@aio_test
async def test_fuzzed_lines_on_the_hub_port(amqp_url, start_clu_shutter):
    shutter = start_clu_shutter()
    count = Counter("hub command lines (hub port)")
    mids = itertools.count(1)
    sentinels = itertools.count(SENTINEL)
    async with fuzz_bridge(amqp_url, shutter.port) as (bridge, _face, hub_port):
        hub = bridge.hub_server
        client = await RawCommander.connect(hub_port, "fuzz.hub")

        async def check(items):
            for item in items:
                start = len(client.lines)
                expect = None
                if item[0] == "cmd":
                    _, actor, text, eol = item
                    expect = str(next(mids))
                    client.send_raw(f"fuzz.hub {expect} {actor} {text}{eol}".encode())
                else:
                    client.send_raw(item[1] + b"\n")
                count.add()
                if expect is None:  # a sentinel command shows the line has been handled
                    await client.wait_for(client.send("hub", "version", mid=next(sentinels)),
                                          timeout=60)
                else:
                    await client.wait_for(int(expect), timeout=60)
                await until(lambda: not hub.commands_in_flight, "the hub's commands to end")
                await asyncio.sleep(0)
                new = client.lines[start:]
                replies = [parse_hub_reply(l) for l in new]  # all well-formed
                ends = Tally((r.commander, r.mid) for r in replies
                             if r.code in TERMINAL and not r.commander.startswith("."))
                assert all(n == 1 for n in ends.values()), new
                if expect is not None:
                    assert ends["fuzz.hub", int(expect)] == 1, new

        def hypothesis_test(run):
            def one(items):
                assume(not any(i[0] == "cmd" and i[1] == "shutter" and starts_with_number(i[2])
                               for i in items))
                run(items=items)
            return FUZZ_SETTINGS(given(items=st.lists(st.one_of(HUB_COMMAND, HUB_COMMAND,
                                                                GARBAGE),
                                                      min_size=1, max_size=4))(one))

        await drive(check, hypothesis_test)
        await until(lambda: not in_flight(bridge), "nothing in flight")
        await client.close()
    count.report()


@aio_test
async def test_endless_lines_are_discarded_without_buffering(amqp_url, start_clu_shutter):
    """64 MB without a line end, to the legacy face and to the hub port: the bridge keeps
    at most one line's worth (64 KiB), answers with one "line too long", and serves on."""
    shutter = start_clu_shutter()
    async with fuzz_bridge(amqp_url, shutter.port) as (bridge, face_port, hub_port):
        face = await LineClient.connect(face_port)
        hub = await RawCommander.connect(hub_port, "fuzz.big")
        try:
            before = rss_mb()
            chunk = b"\x00\xffspam " * 6554  # ~64 KiB, NULs and invalid UTF-8 included
            for _ in range(1000):
                face.send_raw(chunk)
                hub.send_raw(chunk)
                await face.writer.drain()
                await hub.writer.drain()
            face.send_raw(b"\n")
            hub.send_raw(b"\n")
            grown = rss_mb() - before
            assert code_of_last(await face.command("7 ping", 7)) == ":"
            assert (await hub.call("camera", "ping"))[-1].split(" ")[3] == ":"
            too_long = [l for l in face.lines if "Line too long" in l]
            assert len(too_long) == 1 and too_long[0].startswith(f"{face.user_id} 0 f ")
            assert sum("line too long" in l for l in hub.lines) == 1
            assert grown < 32, f"the bridge's process grew by {grown:.0f} MB"
        finally:
            await face.close()
            await hub.close()
    count = Counter("endless lines (64 MB each, legacy face and hub port)")
    count.add(2)
    count.report()


@aio_test
async def test_blank_command_to_an_amqp_actor_fails_at_once(amqp_url, start_clu_shutter):
    """A clu actor never answers a blank command; the bridge must not send one (found by
    the hub-port fuzz test: such commands waited for the time limit, or forever)."""
    shutter = start_clu_shutter()
    async with fuzz_bridge(amqp_url, shutter.port) as (bridge, _face, hub_port):
        client = await RawCommander.connect(hub_port, "fuzz.blank")
        try:
            for text in ("", "  ", "\t"):
                lines = await client.call("camera", text, timeout=10)
                assert lines[-1].split(" ")[3] == "f" and "empty command" in lines[-1], lines
            assert not in_flight(bridge)
        finally:
            await client.close()


def code_of_last(lines: list[str]) -> str:
    return lines[-1].split(" ")[2]

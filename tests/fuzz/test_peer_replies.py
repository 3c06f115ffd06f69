"""Fuzzed lines from the bridge's peers: reply lines from a legacy actor (into an
ActorLink) and lines from a Tron hub (into the TronConnection).

A scripted peer (a raw TCP server) answers each command with hypothesis-chosen lines
(garbage bytes, broken keywords, NaN and huge numbers, other mids, other commanders,
wrong connection ids, oversized lines, early terminal lines), then with a proper
terminal line. Whatever it writes: every command gets exactly one terminal reply at its
commander (AMQP and hub port), every reply the bridge writes is well-formed (JSON a clu
client decodes, hub lines that parse), the bridge keeps its one connection to the peer,
and nothing stays in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter as Tally
from contextlib import asynccontextmanager

from hypothesis import given
from hypothesis import strategies as st

from bridge.protocol import parse_hub_reply
from bridge.service.bridge import Bridge
from bridge.service.config import parse_config
from tests.faults.helpers import RobustClient, code, in_flight, until
from tests.fuzz.helpers import FUZZ_SETTINGS, ONE_LINE_BYTES, ONE_LINE_TEXT, Counter, drive
from tests.hub.helpers import RawCommander
from tests.support.aio import aio_test
from tests.support.ports import free_port

TERMINAL = ":fF!"


class ScriptedPeer:
    """A raw TCP peer. Each line it reads is handed to ``answer(line)``, which returns the
    bytes to write back; ``greeting`` is written on connect."""

    def __init__(self, greeting: bytes, answer) -> None:
        self.greeting = greeting
        self.answer = answer
        self.script: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(self.greeting)
        try:
            while line := await reader.readline():
                writer.write(self.answer(line.decode("utf-8", "replace").rstrip("\r\n"),
                                         self.script))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@asynccontextmanager
async def scripted_peer(greeting: bytes, answer):
    peer = ScriptedPeer(greeting, answer)
    peer.server = await asyncio.start_server(peer._serve, "127.0.0.1", 0, limit=1 << 22)
    try:
        yield peer
    finally:
        peer.server.close()


def fill(script: list[bytes], **fields: str) -> bytes:
    out = b""
    for line in script:
        for key, value in fields.items():
            line = line.replace(b"{" + key.encode() + b"}", value.encode())
        out += line + b"\n"
    return out


# What a peer may write in answer to a command before the proper terminal line.
# ``{mid}`` (and ``{cmdr}`` for the hub) are replaced by the command's own values.
KEYWORD_TEXT = st.one_of(ONE_LINE_TEXT, st.sampled_from([
    "x=nan; y=inf; z=-inf; w=1e999", "n=" + "9" * 400, "a=1,2,,3", 'q="unterminated',
    "k=", "=v", ";;;", "a=\x00b", 'text="a\\"b"', "big=" + "x" * 5000, "T=F", "None=None",
    "dup=1; dup=2", "spaces in name=1", "t=\u2603; u=\U0001f600"]))


def actor_lines() -> st.SearchStrategy[bytes]:
    code = st.sampled_from(list(">iwdeIWDE:fF!"))
    return st.one_of(
        ONE_LINE_BYTES,
        st.builds(lambda c, k: f"1 {{mid}} {c} {k}".encode("utf-8", "surrogatepass"),
                  st.sampled_from(list(">iwdeIWDE")), KEYWORD_TEXT),
        st.builds(lambda c, k: f"1 99999 {c} {k}".encode(), code, KEYWORD_TEXT),  # other mid
        st.builds(lambda c: f"7 {{mid}} {c} x=1".encode(), code),  # another client's mid
        st.builds(lambda c: f"0 0 {c} bcast=1".encode(), code),  # broadcast
        st.sampled_from([b"1 {mid} i", b"1 {mid}", b"1 {mid} : ", b'1 {mid} f error="early"',
                         b'1 {mid} F text="TCC style"', b'1 {mid} : q="unterminated',
                         b"1 {mid} i t=\xff\xfe\x00", b"1 {mid} i a=1\r", b"1 {mid} i a=\rb",
                         b"1 {mid} i " + b"y" * 70_000, b"  1   {mid}   i   a = 1 ", b"\x00",
                         b"{mid} 1 : swapped=1", b"1 {mid} ? x=1", b"1 -{mid} : x=1"]))


def hub_lines() -> st.SearchStrategy[bytes]:
    return st.one_of(
        ONE_LINE_BYTES,
        st.builds(lambda c, k: f"{{cmdr}} {{mid}} remote {c} {k}".encode(),
                  st.sampled_from(list(">iwdeIWDE")), KEYWORD_TEXT),
        st.builds(lambda c, k: f"other.user {{mid}} remote {c} {k}".encode(),
                  st.sampled_from(list("i:fF")), KEYWORD_TEXT),  # another commander
        st.builds(lambda c: f"{{cmdr}} 99999 remote {c} x=1".encode(),
                  st.sampled_from(list("i:f"))),  # our commander, another mid
        st.sampled_from([b".hub 0 hub i Actors=remote,ghost", b"{cmdr} 0 keys_remote i a=1",
                         b'{cmdr} {mid} hub f NoTarget="remote"', b"{cmdr} {mid} remote",
                         b"{cmdr} {mid}", b".remote 0 remote i x=nan; y=1e999",
                         b"{cmdr} {mid} remote i " + b"y" * 70_000, b"\xff\xfe\x00",
                         b"{cmdr} {mid} remote : q=\"unterminated", b"{cmdr}  {mid}  remote  :"]))


def actor_answer(line: str, script: list[bytes]) -> bytes:
    """``cmdr mid text`` in; the scripted lines, then ``1 mid : done=1``."""
    parts = line.split(" ", 2)
    mid = parts[1] if len(parts) > 1 and parts[1].isdigit() else "0"
    return fill(script, mid=mid) + f"1 {mid} : done=1\n".encode()


def hub_answer(line: str, script: list[bytes]) -> bytes:
    """``cmdr mid actor text`` in; the scripted lines, then ``cmdr mid actor : done=1``."""
    parts = line.split(" ", 3)
    if len(parts) < 3:
        return b""
    cmdr, mid, actor = parts[:3]
    return fill(script, cmdr=cmdr, mid=mid) + f"{cmdr} {mid} {actor} : done=1\n".encode()


def check_amqp_reply(message) -> None:
    """What a clu client needs of a reply: its headers and a JSON object body."""
    headers = message.headers or {}
    assert headers.get("message_code") in list(">iwdef:!"), headers
    assert isinstance(json.loads(message.body), dict), message.body


@aio_test
async def test_fuzzed_reply_lines_from_a_legacy_actor(amqp_url):
    count = Counter("reply lines from a legacy actor")
    async with scripted_peer(b"1 0 i yourUserID=1; num_users=1\n", actor_answer) as actor:
        hub_port = free_port()
        config = parse_config({"name": "fuzzlink", "hub": {"port": hub_port}, "actors": {
            "scripted": {"lives": "legacy", "port": actor.port}}})
        async with Bridge(config, amqp_url) as bridge:
            link = bridge.router.target("scripted")
            await link.start(wait=True, timeout=30)
            await until(lambda: not in_flight(bridge), "the hub's init commands")
            client = await RobustClient("fuzzer").start(amqp_url)
            hub = await RawCommander.connect(hub_port, "fuzz.hub")

            async def check(script, via_hub):
                actor.script = script
                count.add(len(script))
                if via_hub:
                    start = len(hub.lines)
                    mid = hub.send("scripted", "go")
                    await hub.wait_for(mid, timeout=60)
                    await until(lambda: not in_flight(bridge), "the command to end")
                    await asyncio.sleep(0.05)  # a second terminal line would be here
                    replies = [parse_hub_reply(l) for l in hub.lines[start:]]
                    ends = Tally(r.mid for r in replies
                                 if r.commander == "fuzz.hub" and r.code in TERMINAL)
                    assert ends == {mid: 1}, hub.lines[start:]
                else:
                    command_id = await client.send("scripted", "go")
                    await client.wait_terminal(command_id, timeout=60)
                    await until(lambda: not in_flight(bridge), "the command to end")
                    await asyncio.sleep(0.05)
                    assert len(client.terminals(command_id)) == 1
                    for message in client.replies[command_id]:
                        check_amqp_reply(message)
                assert actor.connections == 1 and link.connected

            def hypothesis_test(run):
                return FUZZ_SETTINGS(given(script=st.lists(actor_lines(), max_size=6),
                                           via_hub=st.booleans())(
                    lambda script, via_hub: run(script=script, via_hub=via_hub)))

            try:
                await drive(check, hypothesis_test)
                # The link is still the first connection and still serves.
                actor.script = []
                assert code(await client.call("scripted", "go")) == ":"
            finally:
                await client.stop()
                await hub.close()
    count.report()


@aio_test
async def test_fuzzed_lines_from_a_tron_hub(amqp_url):
    count = Counter("lines from a Tron hub")
    async with scripted_peer(b"", hub_answer) as fake_hub:
        config = parse_config({"name": "fuzztron", "tron": {"port": fake_hub.port},
                               "actors": {"remote": {"lives": "hub"}}})
        async with Bridge(config, amqp_url) as bridge:
            await bridge.tron.wait_connected(30)
            client = await RobustClient("fuzzer").start(amqp_url)

            async def check(script):
                fake_hub.script = script
                count.add(len(script))
                command_id = await client.send("remote", "go")
                await client.wait_terminal(command_id, timeout=60)
                await until(lambda: not in_flight(bridge), "the command to end")
                await asyncio.sleep(0.05)  # a second terminal reply would be here
                assert len(client.terminals(command_id)) == 1
                for message in client.replies[command_id]:
                    check_amqp_reply(message)
                assert fake_hub.connections == 1 and bridge.tron.connected

            def hypothesis_test(run):
                return FUZZ_SETTINGS(given(script=st.lists(hub_lines(), max_size=6))(
                    lambda script: run(script=script)))

            try:
                await drive(check, hypothesis_test)
                fake_hub.script = []
                assert code(await client.call("remote", "go")) == ":"
            finally:
                await client.stop()
    count.report()

"""Per-actor settings of tron's nubs on an ActorLink: CR framing, init commands, greeting.

The peer is a TCC-like actor (tests/legacy/tcc_peer.py) that speaks the TCC's framing
(``\\r`` both ways, ``<mid> <text>`` commands, ``<mid> <cid>`` reply headers) and
replays a real TCC's reply lines.
"""

from __future__ import annotations

import asyncio

import pytest

from bridge.core import KeywordCache
from bridge.legacy.actor_link import INIT_COMMANDER, ActorLink
from bridge.service.config import ConfigError, parse_config
from tests.legacy.tcc_peer import TccPeer
from tests.support.aio import aio_test

#: tron's APO TCC nub (tron/Nubs/tcc.py): initCmds.
TCC_INIT = ("show version", "show users", "show time", "show status", "show inst/full",
            "show object/full", "show axisconfig", "show focus", "axis status", "mir status")


async def _until(predicate, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def tcc_link(port: int, **kw) -> ActorLink:
    return ActorLink("tcc", "127.0.0.1", port, mid_first=True, command_header="mid",
                     eol="\r", max_delay=0.5, **kw)


@aio_test
async def test_cr_framed_tcc_commands_replies_greeting_and_broadcasts():
    peer = TccPeer()
    port = peer.start()
    cache = KeywordCache()
    link = tcc_link(port, cache=cache)
    heard = []
    link.add_reply_listener(heard.append)
    await link.start(wait=True)
    try:
        assert link.cid == 11  # from the greeting's <mid=0> <cid=11> header (mid first)
        # The greeting is cached at once, whoever listens (tron's keys getFor=tcc).
        assert cache.get("tcc") == {"YourUserNum": 11, "NumUsers": 1}
        assert [k.name for k in link.greeting] == ["YourUserNum", "NumUsers"]
        weather = await link.send_command("tcc", "show weather", commander="APO.john")
        assert peer.commands[-1] == "1 show weather"  # mid, text: no commander, no cid
        assert [r.code for r in weather.replies] == ["I"] * 5 + [":"]
        assert list(weather.replies[2].json) == ["Pressure", "Humidity", "TLapse"]
        obj = await link.send_command("tcc", "show object")
        assert list(obj.replies[0].json) == ["ObjNetPos"]  # the TCC's `Key = values` form
        peer.broadcast("I", 'ObjName=" "')
        await _until(lambda: any("ObjName" in r.json for r in heard), "the broadcast")
    finally:
        await link.stop()
        peer.stop()


@aio_test
async def test_lf_link_to_a_cr_actor_reads_nothing():
    """Without eol = CR the same actor's lines never end: the setting is what makes it work."""
    peer = TccPeer()
    port = peer.start()
    link = ActorLink("tcc", "127.0.0.1", port, mid_first=True, command_header="mid")
    await link.start(wait=True)
    try:
        assert link.cid is None and link.greeting is None
        handle = link.send_command("tcc", "show time", time_limit=0.5)
        await handle
        assert handle.failed and peer.commands == []  # the command never ended for it
    finally:
        await link.stop()
        peer.stop()


@aio_test
async def test_link_sends_its_init_commands_each_time_it_comes_up():
    peer = TccPeer()
    port = peer.start()
    link = tcc_link(port, init_commands=TCC_INIT, send_init=True)
    replies = []
    link.add_command_reply_listener(lambda reply, handle: replies.append((handle, reply)))
    await link.start(wait=True)
    try:
        await _until(lambda: len(peer.commands) == len(TCC_INIT), "the init commands")
        assert [c.split(" ", 1)[1] for c in peer.commands] == list(TCC_INIT)
        await _until(lambda: sum(r.code == ":" for _, r in replies) == len(TCC_INIT),
                     "their replies")
        assert {h.commander for h, _ in replies} == {INIT_COMMANDER}
        # Reconnect: sent again (tron's nub sends them on every connection).
        peer.stop()
        await _until(lambda: not link.connected, "the link to notice")
        peer2 = TccPeer(first_cid=40)
        peer2.start(port)
        try:
            await link.start(wait=False)
            await _until(lambda: len(peer2.commands) == len(TCC_INIT), "init after reconnect")
            assert link.cid == 40
        finally:
            peer2.stop()
    finally:
        await link.stop()
        peer.stop()


@aio_test
async def test_init_commands_are_left_to_the_owner_without_send_init():
    peer = TccPeer()
    port = peer.start()
    link = tcc_link(port, init_commands=TCC_INIT)
    await link.start(wait=True)
    try:
        assert link.init_commands == TCC_INIT
        await (link.send_command("tcc", "show focus"))
        assert peer.commands == ["1 show focus"]
    finally:
        await link.stop()
        peer.stop()


def test_config_per_actor_keys_reach_the_route():
    cfg = parse_config({"actors": {
        "tcc": {"lives": "legacy", "port": 2500, "eol": "\r", "mid_first": True,
                "command_header": "mid", "init_commands": list(TCC_INIT),
                "safe_commands": "(^device )|(status$)"},
        "boss": {"lives": "legacy", "port": 9998, "needs_auth": False, "init_commands": []},
        "hal": {"lives": "legacy", "port": 19980},
    }})
    tcc, boss, hal = (cfg.actor(n).route() for n in ("tcc", "boss", "hal"))
    assert tcc.options["eol"] == "\r" and tcc.options["init_cmds"] == TCC_INIT
    assert tcc.options["needs_auth"] is True and tcc.mid_first
    assert boss.options["needs_auth"] is False and boss.options["init_cmds"] == ()
    assert hal.options["eol"] == "\n" and "init_cmds" not in hal.options  # the hub's default


@pytest.mark.parametrize("actor, key", [
    ({"lives": "legacy", "port": 1, "eol": "\r\n"}, "actors.x.eol"),
    ({"lives": "legacy", "port": 1, "init_commands": "ping"}, "actors.x.init_commands"),
    ({"lives": "legacy", "port": 1, "init_commands": ["ping\rstatus"]}, "actors.x.init_commands"),
    ({"lives": "amqp", "eol": "\r"}, "actors.x.eol"),
    ({"lives": "amqp", "legacy_port": 5, "init_commands": ["ping"]}, "actors.x.init_commands"),
    ({"lives": "legacy", "port": 1, "needs_auth": "yes"}, "actors.x.needs_auth"),
])
def test_config_refuses_bad_per_actor_keys(actor, key):
    with pytest.raises(ConfigError) as info:
        parse_config({"actors": {"x": actor}})
    assert info.value.key == key


class _Echo:
    """A LegacyServer handler: answers ``echo=<text>`` and ends the command."""

    def handle(self, command):
        command.reply("i", {"echo": command.text})
        command.finish()


@aio_test
async def test_legacy_server_with_cr_framing_as_a_face_for_tron_tcc_nub():
    """A face with eol CR (an AMQP actor served to tron's TCC nub) reads ``<mid> <text>\\r``
    commands and writes ``\\r``-terminated, mid-first replies; a CR link talks to it."""
    from bridge.legacy.server import LegacyServer

    server = LegacyServer(_Echo(), name="tcc", mid_first=True, eol="\r", version="1.0")
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"7 show time\r\n")  # tron's encoder: `<mid> <text>\r` (a \n is dropped)
        data = b""
        while b'7 1 :' not in data:
            data += await asyncio.wait_for(reader.read(4096), 5)
        lines = data.split(b"\r")
        assert b"\n" not in data
        assert lines[0].startswith(b"0 1 i yourUserID=1")  # greeting: mid 0, cid 1
        assert lines[3:] == [b'7 1 i echo="show time"', b"7 1 : ", b""]
        writer.close()
        link = tcc_link(server.port)
        await link.start(wait=True)
        try:
            assert link.cid == 1
            done = await link.send_command("tcc", "show focus")
            assert done.succeeded and done.replies[0].json == {"echo": "show focus"}
        finally:
            await link.stop()
    finally:
        await server.stop()


@aio_test
async def test_bridge_without_hub_port_sends_init_commands_and_serves_a_cr_actor_on_amqp(
        amqp_url):
    """The whole bridge, no hub port: the link sends the actor's init commands itself; a
    clu client commands the CR-framed TCC through the AMQP face; the greeting is cached."""
    from bridge.service.bridge import Bridge
    from tests.amqp.helpers import clu_client, clu_command

    peer = TccPeer()
    port = peer.start()
    config = parse_config({"name": "crbridge", "actors": {"tcc": {
        "lives": "legacy", "port": port, "eol": "\r", "mid_first": True,
        "command_header": "mid", "init_commands": ["show version", "show time"]}}})
    try:
        async with Bridge(config, amqp_url) as bridge, clu_client(amqp_url, "obs") as client:
            await _until(lambda: peer.texts() == ["show version", "show time"],
                         "the init commands", 15)
            await _until(lambda: bridge.cache.value("tcc", "YourUserNum") == 11, "greeting")
            cmd = await clu_command(client, "tcc", "show focus")
            assert cmd.status.did_succeed
            assert peer.commands[-1] == "3 show focus"
            assert {"SecFocus": 40.0} in [r.message for r in cmd.replies]
    finally:
        peer.stop()


@aio_test
async def test_legacy_face_of_an_amqp_actor_speaks_cr_when_configured(amqp_url):
    """[actors.X] eol = "\\r" on an AMQP actor's legacy face: what tron's TCC nub would
    need to reach a TCC that moved to AMQP (`<mid> <text>\\r` in, `<mid> <cid>` CR out)."""
    from bridge.service.bridge import Bridge
    from tests.amqp.helpers import clu_actor
    from tests.support.ports import free_port

    face_port = free_port()
    config = parse_config({"name": "facebridge", "actors": {"tcc": {
        "lives": "amqp", "legacy_port": face_port, "eol": "\r", "mid_first": True}}})
    async with clu_actor(amqp_url, "tcc"), Bridge(config, amqp_url):
        reader, writer = await asyncio.open_connection("127.0.0.1", face_port)
        try:
            writer.write(b"7 ping\r")
            data = b""
            while b"7 1 :" not in data:
                data += await asyncio.wait_for(reader.read(4096), 10)
            assert b"\n" not in data
            lines = data.split(b"\r")
            assert lines[0].startswith(b"0 1 i yourUserID=1")
            assert any(line.startswith(b"7 1 :") for line in lines)
        finally:
            writer.close()

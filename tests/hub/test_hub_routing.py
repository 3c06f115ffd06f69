"""Our hub port in front of a real clu LegacyActor (subprocess) reached through an ActorLink:
routing, fan-out to every commander, diagnostics, unsolicited output, failures."""

from __future__ import annotations

import asyncio
import re

from bridge.core import RoutingTable
from tests.hub.helpers import (
    RawCommander,
    code,
    echo_actor,
    header,
    is_terminal_for,
    legacy_route,
    running_hub,
    shutter_behind_hub,
    until,
)
from tests.support.aio import aio_test
from tests.support.ports import free_port

STATUS_INFO = ('shutter=closed; shutter_moves=0; open_time=0.0; limit_switches=F,T; '
               'motor_current=0.125; controller="Bonn shutter v2 (fake)"')
QUEUED = re.compile(r'\.hub 0 cmds d CmdQueued=(\d+),\d+\.\d\d,"a\.b",(\d+),"shutter",(\d+),'
                    r'"(.*)"\Z')


@aio_test
async def test_commands_are_routed_and_every_commander_sees_every_line(start_clu_shutter):
    async with shutter_behind_hub(start_clu_shutter) as (hub, shutter):
        a = await RawCommander.connect(hub.port, "a.b")
        b = await RawCommander.connect(hub.port, "other.person")
        try:
            await asyncio.sleep(0.2)
            status = await a.call("shutter", "status")
            assert status == ["a.b 1 shutter > ", f"a.b 1 shutter i {STATUS_INFO}",
                              "a.b 1 shutter : "]
            seen_by_b = await b.read_until(lambda l: l.startswith('.hub 0 cmds d CmdDone'))
            assert '.hub 0 cmds d CmdIn="a.b","shutter","status"' in seen_by_b
            assert [l for l in seen_by_b if l.startswith("a.b ")] == status
            queued = next(QUEUED.match(l) for l in seen_by_b if QUEUED.match(l))
            assert queued.group(2) == "1" and queued.group(4) == "status"
            assert seen_by_b[-1] == f'.hub 0 cmds d CmdDone={queued.group(1)},":"'

            opened = await a.call("shutter", "open")
            assert opened[-1] == "a.b 2 shutter : shutter=open; shutter_moves=1"
            assert hub.cache.value("shutter", "shutter") == "open"
            assert hub.cache.value("shutter", "shutter_moves") == 1

            failed = await a.call("shutter", "fail_me")
            assert failed[-1] == 'a.b 3 shutter f error="fail_me always fails"'
            done = await a.read_until(lambda l: "CmdDone" in l)
            assert done[-1].endswith(',"f"')

            # CRLF in, bare LF out (RawCommander asserts it); leading zeros: the mid as a number.
            crlf = await a.wait_for(a.send("shutter", "echo x y", mid=7, eol="\r\n"))
            assert crlf == ["a.b 7 shutter > ", "a.b 7 shutter : echo=x,y"]
            a.send_raw("a.b 0008 shutter echo z\n")
            assert (await a.wait_for(8))[-1] == "a.b 8 shutter : echo=z"

            missing = await a.call("nosuch", "status")
            assert missing == ['a.b 4 hub f NoTarget="the target named nosuch is not connected"']

            # Unsolicited output of the actor (here: clu's UserInfo broadcast when another
            # client connects to it directly) reaches every commander as `.shutter 0 shutter`.
            _r, direct = await asyncio.open_connection("127.0.0.1", shutter.port)
            for cmdr in (a, b):
                line = await cmdr.read_until(lambda l: l.startswith(".shutter 0 shutter i UserInfo"))
                assert line[-1] in (".shutter 0 shutter i UserInfo=1,127.0.0.1",
                                    ".shutter 0 shutter i UserInfo=2,127.0.0.1")
            direct.close()
            assert not hub.commands_in_flight
        finally:
            await a.close()
            await b.close()


@aio_test
async def test_hub_verbs_and_keys(start_clu_shutter):
    async with shutter_behind_hub(start_clu_shutter, version="9.8.7") as (hub, _shutter):
        a = await RawCommander.connect(hub.port, "a.b")
        b = await RawCommander.connect(hub.port, "other.person")
        try:
            await asyncio.sleep(0.2)
            assert await a.call("hub", "version") == ['a.b 1 hub : version="9.8.7"']
            assert await a.call("hub", "actors") == [
                'a.b 2 hub i Actors="perms","hub","keys","msg","shutter"', "a.b 2 hub : "]
            assert await a.call("hub", "commanders") == [
                'a.b 3 hub i Commanders="client.v1","client.v2"', "a.b 3 hub i users",
                "a.b 3 hub : "]
            for verb in ("status", "ping"):
                lines = await a.call("hub", verb)
                assert [l.split(" ", 4)[4] for l in lines] == [
                    'version="9.8.7"', 'Actors="perms","hub","keys","msg","shutter"',
                    'Commanders="client.v1","client.v2"', "users",
                    "route=shutter,legacy,legacy", ""]
            assert await a.call("hub", "") == ["a.b 6 hub : "]
            assert await a.call("hub", "dbg") == ['a.b 7 hub f hubTxt="No command named dbg"']
            msg = await a.call("msg", "hello world")
            assert re.fullmatch(r'a\.b 8 msg : msg="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d","hello world"',
                                msg[0])

            # keys: the data lines only to the requester, the end to everybody.
            await a.call("shutter", "status")
            mid = a.send("keys", "getFor=shutter shutter SHUTTER_MOVES nosuch")
            assert await a.wait_for(mid) == [
                f'a.b {mid} keys w unmatchedKeys="nosuch"',
                f"a.b {mid} keys_shutter i shutter=closed; shutter_moves=0",
                f"a.b {mid} keys : "]
            seen_by_b = await b.read_until(lambda l: l == f"a.b {mid} keys : ")
            assert not [l for l in seen_by_b if "keys_shutter" in l or "unmatchedKeys" in l]
            everything = await a.call("keys", "getFor=shutter")
            assert everything[0].startswith(f"a.b {mid + 1} keys_shutter i ")
            assert "controller=" in everything[0] and "yourUserID=1" in everything[0]
            assert (await a.call("keys", "getFor=hub actors version"))[0] == (
                f'a.b {mid + 2} keys_hub i Actors=perms,hub,keys,msg,shutter; version=9.8.7')
            assert await a.call("keys", "getFor=nosuch x") == [
                f'a.b {mid + 3} keys f keysTxt="actor nosuch is not connected"']
            assert await a.call("keys", "foo") == [
                f'a.b {mid + 4} keys f keysTxt="No command named foo"']
        finally:
            await a.close()
            await b.close()


@aio_test
async def test_nub_control_and_actor_restarts(start_clu_shutter):
    async with shutter_behind_hub(start_clu_shutter) as (hub, shutter):
        a = await RawCommander.connect(hub.port, "a.b")
        try:
            assert await a.call("hub", "startNubs") == [
                'a.b 1 hub f text="must specify one or more nubs to start..."']
            assert await a.call("hub", "startNubs nosuch") == [
                'a.b 2 hub i text="(re-)starting nub nosuch"',
                'a.b 2 hub w text="failed to start nub nosuch: no route for actor nosuch"',
                "a.b 2 hub : "]

            # A command in flight when the actor dies fails once, and Actors drops it.
            slow = a.send("shutter", "slow 30")
            await a.read_until(lambda l: l.startswith(f"a.b {slow} shutter i text="))
            shutter.kill()
            lines = await a.read_until(lambda l: is_terminal_for(l, "a.b", slow))
            assert code(lines[-1]) == "f" and "Lost connection to actor shutter" in lines[-1]
            await a.read_until(lambda l: l == '.hub 0 hub i Actors="perms","hub","keys","msg"')
            assert (await a.call("shutter", "status"))[-1] == (
                'a.b 4 hub f NoTarget="the target named shutter is not connected"')

            # The actor comes back and asks for its nub: the hub connects at once.
            await asyncio.to_thread(shutter.restart)
            started = await a.call("hub", "startNubs shutter", timeout=15)
            assert started == ['a.b 5 hub i text="(re-)starting nub shutter"', "a.b 5 hub : "]
            assert "shutter" in hub.actor_names()
            assert (await a.call("shutter", "ping"))[-1] == "a.b 6 shutter : text=Pong."

            stopped = await a.call("hub", "stopNubs shutter")
            assert stopped == ['a.b 7 hub i text="stopping nub shutter"', "a.b 7 hub : "]
            assert "shutter" not in hub.actor_names()
            assert code((await a.call("shutter", "ping"))[-1]) == "f"
            assert (await a.call("hub", "startNubs shutter"))[-1] == "a.b 9 hub : "
            assert (await a.call("shutter", "ping"))[-1] == "a.b 10 shutter : text=Pong."
            slow_lines = [l for l in a.lines if header(l)[:2] == ("a.b", str(slow))]
            assert [code(l) for l in slow_lines] == [">", "i", "f"]  # exactly one terminal
        finally:
            await a.close()


@aio_test
async def test_stopping_the_hub_ends_running_commands(start_clu_shutter):
    async with shutter_behind_hub(start_clu_shutter) as (hub, _shutter):
        a = await RawCommander.connect(hub.port, "a.b")
        slow = a.send("shutter", "slow 30")
        await a.read_until(lambda l: l == f"a.b {slow} shutter > ")
        await hub.stop()
        lines = await a.read_until(lambda l: is_terminal_for(l, "a.b", slow))
        assert lines[-1] == f'a.b {slow} shutter f error="hub is stopping."'
        await asyncio.wait_for(a.reader.read(), 10)  # then the hub closes the connection
        assert not hub.commands_in_flight
        await a.close()


@aio_test
async def test_commanders_are_announced_and_malformed_lines_keep_the_connection():
    async with running_hub(max_line_length=1000) as hub:
        a = await RawCommander.connect(hub.port, "a.b")
        assert await a.read_line() == '.hub 0 hub i Commanders="client.v1"'
        assert await a.read_line() == ".hub 0 hub i users"
        b = await RawCommander.connect(hub.port, "b.c")
        assert await a.read_line() == '.hub 0 hub i Commanders="client.v1","client.v2"'
        assert await a.read_line() == ".hub 0 hub i users"
        await b.quiet(0.1)

        a.send_raw("garbage\n")
        assert await a.read_line() == (
            ".hub 0 hub w ParseError=\"Command from client.v1 could not be parsed: 'garbage'\"")
        a.send_raw("a.b 5 9bad x\n")
        assert (await a.read_line()).startswith('a.b 5 hub f ParseError="Command from client.v1')
        a.send_raw(b"a.b 6 hub st\xffatus\r\n")
        assert (await a.read_line()).startswith('a.b 6 hub f ParseError="Command ')
        a.send_raw("a.b 7 hub ver\x00sion\n")
        assert "control characters" in await a.read_line()
        a.send_raw(b"a.b 8 hub " + b"x" * 5000 + b"\n")
        assert (await a.read_line()).startswith('.hub 0 hub w ParseError="line too long')
        a.send_raw("\r\n   \n")
        assert await a.call("hub", "version") == [f'a.b 1 hub : version="{hub.version}"']
        # b saw only what was addressed to a command (f), not a's unaddressable garbage.
        seen_by_b = await b.quiet(0.3)
        assert not [l for l in seen_by_b if "garbage" in l or "too long" in l]
        assert [header(l)[:2] for l in seen_by_b if code(l) == "f"] == [
            ("a.b", "5"), ("a.b", "6"), ("a.b", "7")]

        await b.close()
        await a.read_until(lambda l: l == '.hub 0 hub i Commanders="client.v1"')
        await a.close()
        await until(lambda: not hub.connections, "connections closed")


@aio_test
async def test_start_nubs_never_hangs_on_an_actor_that_is_not_there():
    async with running_hub([legacy_route("ghost", free_port())], nub_timeout=0.5) as hub:
        a = await RawCommander.connect(hub.port, "a.b")
        lines = await a.call("hub", "startNubs ghost")
        assert lines[0] == 'a.b 1 hub i text="(re-)starting nub ghost"'
        assert re.fullmatch(r'a\.b 1 hub w text="failed to start nub ghost: could not connect '
                            r'to 127\.0\.0\.1:\d+ within 0\.5 s \(still trying\)"', lines[1])
        assert lines[2:] == ["a.b 1 hub : "]
        assert "NoTarget" in (await a.call("ghost", "ping"))[-1]
        await a.close()


@aio_test
async def test_route_changes_are_announced_and_followed():
    async with echo_actor("echo") as echo, echo_actor("echo2") as echo2, running_hub() as hub:
        a = await RawCommander.connect(hub.port, "a.b")
        await a.quiet(0.1)
        router = hub.router
        await router.apply(RoutingTable([legacy_route("echo", echo.port)]))
        await a.read_until(lambda l: l == '.hub 0 hub i Actors="perms","hub","keys","msg","echo"')
        assert (await a.call("echo", "hi"))[-1] == "a.b 1 echo : echo=hi"
        echo.broadcast("i", {"n": 1})
        await a.read_until(lambda l: l == ".echo 0 echo i n=1")

        # The route moves to another actor process: the old link is drained and its
        # output no longer mirrored; the new one is followed.
        old_link = router.target("echo")
        await router.apply(RoutingTable([legacy_route("echo", echo2.port)]))
        await until(lambda: router.target("echo").connected, "the new link")
        echo.broadcast("i", {"n": 2})
        echo2.broadcast("i", {"n": 3})
        lines = await a.read_until(lambda l: l == ".echo 0 echo i n=3")
        assert ".echo 0 echo i n=2" not in lines and old_link is not router.target("echo")
        assert (await a.call("echo", "again"))[-1] == "a.b 2 echo : echo=again"

        # A commander that leaves does not take its command with it: the end still goes out.
        b = await RawCommander.connect(hub.port, "b.c")
        b.send("echo", "slow 0.3", mid=5)
        await a.read_until(lambda l: l == "b.c 5 echo > ")
        await b.close()
        await a.read_until(lambda l: l == "b.c 5 echo : slept=0.3")

        await router.apply(RoutingTable())
        await a.read_until(lambda l: l == '.hub 0 hub i Actors="perms","hub","keys","msg"')
        assert "NoTarget" in (await a.call("echo", "x"))[-1]
        assert (await a.call("hub", "startNubs echo"))[1] == (
            'a.b 4 hub w text="failed to start nub echo: no route for actor echo"')
        await a.close()

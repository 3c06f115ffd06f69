"""TronConnection against a scripted hub: a real Twisted TCP server on loopback, written here.

The scripted hub records every command line it receives and writes whatever reply
lines the test tells it to, to every connected commander (as the real hub does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import Factory

from bridge.core import CommandHandle, Reply
from bridge.legacy.framing import LineProtocol
from bridge.legacy.tron import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    LOST_CONNECTION,
    TronConnection,
    cache_actor,
    is_valid_commander,
)
from bridge.protocol import HubCommand, HubReply, Keyword, parse_hub_command
from bridge.runtime import as_future
from tests.support.aio import aio_test
from tests.support.ports import LOOPBACK

TIMEOUT = 10.0
FAST = {"initial_delay": 0.05, "max_delay": 0.3}


class _HubSide(LineProtocol):
    def __init__(self, hub: ScriptedHub) -> None:
        super().__init__()
        self.hub = hub

    def connection_made(self) -> None:
        self.hub.clients.append(self)
        self.hub.connections += 1

    def connection_lost(self, reason: Any) -> None:
        if self in self.hub.clients:
            self.hub.clients.remove(self)

    def line_received(self, line: str) -> None:
        self.hub.raw_lines.append(line)
        self.hub.commands.put_nowait(parse_hub_command(line))
        if self.hub.responder is not None:
            for reply in self.hub.responder(parse_hub_command(line)):
                self.hub.send(reply)


class ScriptedHub:
    """A tiny hub: collects command lines, writes given reply lines to every client."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.clients: list[_HubSide] = []
        self.raw_lines: list[str] = []
        self.commands: asyncio.Queue[HubCommand] = asyncio.Queue()
        self.connections = 0
        self.responder: Callable[[HubCommand], list[str]] | None = None
        self._listening: Any = None

    def start(self) -> None:
        factory = Factory.forProtocol(lambda: _HubSide(self))
        self._listening = reactor.listenTCP(self.port, factory, interface=LOOPBACK)
        self.port = self._listening.getHost().port

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        for client in list(self.clients):
            client.transport.loseConnection()
        if self._listening is not None:
            await as_future(self._listening.stopListening())
            self._listening = None
        for _ in range(200):
            if not self.clients:
                break
            await asyncio.sleep(0.01)

    def send(self, line: str) -> None:
        for client in self.clients:
            client.send_line(line)

    def reply(self, cmd: HubCommand, code: str, keywords: str = "", actor: str | None = None,
              commander: str | None = None) -> None:
        self.send(f"{commander or cmd.commander} {cmd.mid} {actor or cmd.actor} {code} {keywords}")

    async def next_command(self, timeout: float = TIMEOUT) -> HubCommand:
        return await asyncio.wait_for(self.commands.get(), timeout)

    async def wait_clients(self, count: int = 1) -> None:
        for _ in range(int(TIMEOUT / 0.01)):
            if len(self.clients) >= count:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("no client connected")


async def _started(**kwargs: Any) -> tuple[ScriptedHub, TronConnection]:
    hub = ScriptedHub()
    hub.start()
    tron = TronConnection(LOOPBACK, hub.port, commander=kwargs.pop("commander", "tester.tester"),
                          **{**FAST, **kwargs})
    await tron.start(timeout=TIMEOUT)
    await hub.wait_clients()
    return hub, tron


async def _finish(hub: ScriptedHub, tron: TronConnection) -> None:
    await tron.stop()
    await hub.stop()


async def _until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# -- pure helpers --------------------------------------------------------------------


def test_commander_names() -> None:
    assert is_valid_commander("shutter.shutter") and is_valid_commander("APO.john.tcc")
    assert is_valid_commander("apo2.x1")
    for bad in ("shutter", ".hub", "a..b", "1a.b", "a.b c", "a.b\n", "a-b.c", "a.b."):
        assert not is_valid_commander(bad), bad


def test_keys_prefix_is_stripped_once_and_only_as_prefix() -> None:
    assert cache_actor("keys_shutter") == "shutter"
    assert cache_actor("keys_my_actor") == "my_actor"  # not split on the first underscore
    assert cache_actor("keys_keys_x") == "keys_x"
    assert cache_actor("my_actor") == "my_actor"
    assert cache_actor("keys") == "keys" and cache_actor("keys_") == "keys_"


def test_invalid_commander_is_refused_at_construction() -> None:
    try:
        TronConnection(LOOPBACK, 1, commander="nodot")
    except ValueError as exc:
        assert "nodot" in str(exc)
    else:
        raise AssertionError("a commander without a dot was accepted")


# -- commands ------------------------------------------------------------------------


@aio_test
async def test_command_line_and_reply_matching() -> None:
    hub, tron = await _started()
    try:
        seen: list[Reply] = []
        handle = tron.send_command("shutter", "open --delay 1", callback=seen.append)
        assert not handle.done()  # returns at once
        cmd = await hub.next_command()
        assert hub.raw_lines[-1] == f"tester.tester {cmd.mid} shutter open --delay 1"
        assert handle.command_id == cmd.mid and handle.commander == "tester.tester"

        hub.reply(cmd, ">")
        hub.reply(cmd, "i", 'text="Opening the shutter"; shutter=moving')
        hub.reply(cmd, ":", "shutter=open; shutter_moves=1")
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.succeeded
        assert [r.code for r in handle.replies] == [">", "i", ":"]
        assert [r.code for r in seen] == [">", "i", ":"]
        assert handle.replies[-1].sender == "shutter"
        assert handle.replies[-1].command_id == cmd.mid
        assert handle.keywords == {"text": "Opening the shutter", "shutter": "open",
                                   "shutter_moves": 1}
        assert tron.commands_in_flight == 0
    finally:
        await _finish(hub, tron)


@aio_test
async def test_replies_for_other_commanders_feed_cache_but_not_our_command() -> None:
    hub, tron = await _started()
    try:
        handle = tron.send_command("shutter", "status")
        cmd = await hub.next_command()
        # Same mid, other commanders: someone else's command (the hub fans out everything).
        hub.reply(cmd, ":", "shutter=closed", commander="APO.john")
        hub.reply(cmd, "f", 'error="not yours"', commander="tester.tester.child")
        hub.reply(cmd, "i", "moves=7")
        hub.reply(cmd, ":")
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.succeeded
        assert [r.json for r in handle.replies] == [{"moves": 7}, {}]
        assert tron.cache.get("shutter") == {"shutter": "closed", "error": "not yours", "moves": 7}
    finally:
        await _finish(hub, tron)


@aio_test
async def test_mids_are_unique_among_commands_in_flight() -> None:
    hub, tron = await _started()
    try:
        handles = [tron.send_command("a", f"cmd{i}") for i in range(5)]
        cmds = [await hub.next_command() for _ in handles]
        mids = [c.mid for c in cmds]
        assert len(set(mids)) == 5 and all(m > 0 for m in mids)
        assert [h.command_id for h in handles] == mids
        # Finish them out of order; each reply goes to its own command.
        for cmd in reversed(cmds):
            hub.reply(cmd, ":", f'which="{cmd.text}"')
        for handle in handles:
            await asyncio.wait_for(handle, TIMEOUT)
            assert handle.replies[-1].json == {"which": handle.text}
    finally:
        await _finish(hub, tron)


@aio_test
async def test_hub_rejection_completes_the_command_whatever_the_actor_column() -> None:
    hub, tron = await _started()
    try:
        handle = tron.send_command("nosuch", "status")
        cmd = await hub.next_command()
        hub.reply(cmd, "f", 'NoTarget="the target named nosuch is not connected"', actor="hub")
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.failed
        assert handle.replies[-1].sender == "hub"
        assert handle.keywords["NoTarget"] == "the target named nosuch is not connected"
    finally:
        await _finish(hub, tron)


@aio_test
async def test_fatal_and_upper_case_codes_end_commands() -> None:
    hub, tron = await _started()
    try:
        fatal = tron.send_command("a", "x")
        upper = tron.send_command("tcc", "y")
        c1, c2 = await hub.next_command(), await hub.next_command()
        hub.reply(c1, "!", 'text="crashed"')
        hub.reply(c2, "I", "AirTemp=4.40")
        hub.reply(c2, "F", 'text="bad"')
        await asyncio.wait_for(fatal, TIMEOUT)
        await asyncio.wait_for(upper, TIMEOUT)
        assert fatal.failed and upper.failed
        assert [r.code for r in upper.replies] == ["I", "F"]
    finally:
        await _finish(hub, tron)


@aio_test
async def test_explicit_commander_is_sent_and_matched() -> None:
    hub, tron = await _started()
    try:
        handle = tron.send_command("tcc", "show status", commander="APO.john.tester")
        cmd = await hub.next_command()
        assert hub.raw_lines[-1].startswith("APO.john.tester ")
        hub.reply(cmd, ":", commander="tester.tester")  # our default commander: not this one
        hub.reply(cmd, "i", "x=1")
        hub.reply(cmd, ":")
        await asyncio.wait_for(handle, TIMEOUT)
        assert [r.code for r in handle.replies] == ["i", ":"]
        assert handle.commander == "APO.john.tester"
    finally:
        await _finish(hub, tron)


@aio_test
async def test_refusals_fail_at_once_without_sending() -> None:
    hub, tron = await _started()
    try:
        crlf = tron.send_command("shutter", "open\nclose")
        cr = tron.send_command("shutter", "open\r")
        bad_actor = tron.send_command("bad actor", "x")
        bad_cmdr = tron.send_command("shutter", "x", commander="nodot")
        for handle in (crlf, cr, bad_actor, bad_cmdr):
            assert handle.done() and handle.failed, handle
            assert len(handle.replies) == 1 and handle.replies[0].code == "f"
        assert "line terminator" in crlf.replies[0].json["error"]
        assert "line terminator" in cr.replies[0].json["error"]
        assert "actor" in bad_actor.replies[0].json["error"]
        assert "commander" in bad_cmdr.replies[0].json["error"]
        ok = tron.send_command("shutter", "ping")
        cmd = await hub.next_command()
        assert cmd.text == "ping" and hub.raw_lines == [f"tester.tester {cmd.mid} shutter ping"]
        hub.reply(cmd, ":")
        await asyncio.wait_for(ok, TIMEOUT)
        assert tron.commands_in_flight == 0
    finally:
        await _finish(hub, tron)


@aio_test
async def test_not_connected_fails_at_once() -> None:
    tron = TronConnection(LOOPBACK, 9, commander="tester.tester", **FAST)
    handle = tron.send_command("shutter", "status")
    assert handle.done() and handle.failed
    assert "Not connected to the hub" in handle.replies[-1].json["error"]
    assert tron.state == DISCONNECTED and not tron.connected


@aio_test
async def test_time_limit_fails_the_command_and_later_replies_are_ignored() -> None:
    hub, tron = await _started()
    try:
        handle = tron.send_command("shutter", "slow 100", time_limit=0.2)
        cmd = await hub.next_command()
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.failed and "timed out" in handle.replies[-1].json["error"]
        assert tron.commands_in_flight == 0
        hub.reply(cmd, ":", "slept=100")
        await _until(lambda: tron.cache.value("shutter", "slept") == 100, "late reply cached")
        assert len(handle.replies) == 1
    finally:
        await _finish(hub, tron)


@aio_test
async def test_unparseable_lines_are_skipped() -> None:
    hub, tron = await _started()
    try:
        handle = tron.send_command("a", "x")
        cmd = await hub.next_command()
        for junk in ("garbage", "a.b notamid a :", "a.b 1 a : key=\"unterminated", "",
                     "   ", "a.b 1 a x key=1", "\x00\xff", "a.b 1 a : k=1,,2"):
            hub.send(junk)
        hub.reply(cmd, ":", "ok")
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.succeeded and tron.connected
        assert handle.replies[-1].json == {"ok": []}
    finally:
        await _finish(hub, tron)


# -- keyword cache, listeners, dictionaries --------------------------------------------


@aio_test
async def test_broadcasts_and_keys_lines_feed_the_cache() -> None:
    hub, tron = await _started()
    changes: list[tuple[str, dict[str, Any]]] = []
    tron.cache.subscribe(lambda actor, changed: changes.append((actor, changed)))
    try:
        hub.send(".hub 0 hub i Actors=\"hub\",\"keys\",\"shutter\"")
        hub.send(".shutter 0 shutter i shutter=open; moves=3")
        hub.send("tester.tester 9 keys_my_actor i version=\"1.2\"; Temp=4.5")
        hub.send("tester.tester 9 keys_shutter i moves=3")
        hub.send(".shutter 0 shutter i moves=4")
        await _until(lambda: tron.cache.value("shutter", "moves") == 4, "broadcast cached")
        assert tron.cache.get("hub") == {"Actors": ["hub", "keys", "shutter"]}
        assert tron.cache.get("my_actor") == {"version": "1.2", "Temp": 4.5}
        assert tron.cache.value("my_actor", "temp") == 4.5
        assert tron.cache.get("keys_my_actor") == {} and tron.cache.get("my") == {}
        assert changes == [
            ("hub", {"Actors": ["hub", "keys", "shutter"]}),
            ("shutter", {"shutter": "open", "moves": 3}),
            ("my_actor", {"version": "1.2", "Temp": 4.5}),
            ("shutter", {"moves": 4}),
        ]
    finally:
        await _finish(hub, tron)


@aio_test
async def test_reply_listeners_get_every_parsed_line() -> None:
    hub, tron = await _started()
    plain: list[HubReply] = []
    typed: list[tuple[HubReply, dict[str, Any]]] = []
    tron.add_reply_listener(plain.append)
    tron.add_reply_listener(lambda r, v: typed.append((r, v)), typed=True)

    def broken(reply: HubReply) -> None:
        raise RuntimeError("listener bug")

    tron.add_reply_listener(broken)
    try:
        hub.send("APO.john 5 tcc I AirTemp=4.40")
        hub.send("not a reply")
        hub.send("APO.john 5 tcc : ")
        await _until(lambda: len(plain) == 2, "two replies")
        assert plain[0] == HubReply("APO.john", 5, "tcc", "I", (Keyword("AirTemp", ("4.40",)),))
        assert plain[1].code == ":" and plain[1].keywords == ()
        assert [v for _r, v in typed] == [{"AirTemp": 4.4}, {}]
        tron.remove_reply_listener(plain.append)
        hub.send(".tcc 0 tcc i x=1")
        await _until(lambda: len(typed) == 3, "third reply")
        assert len(plain) == 2
    finally:
        await _finish(hub, tron)


class _UpperDictionary:
    """A stand-in keyword dictionary: types ``count`` as int, everything else as strings."""

    def reply_to_json(self, keywords: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kw in keywords:
            if kw.name.lower() == "count":
                out[kw.name] = int(kw.values[0])
            else:
                out[kw.name] = [str(v) for v in kw.values]
        return out


@aio_test
async def test_dictionary_types_values_for_its_actor_only() -> None:
    hub, tron = await _started(dictionaries={"shutter": _UpperDictionary()})
    try:
        handle = tron.send_command("shutter", "status")
        cmd = await hub.next_command()
        hub.reply(cmd, ":", "count=0012; version=1")
        hub.send("tester.tester 99 keys_shutter i version=2")
        hub.send(".other 0 other i version=1")
        await asyncio.wait_for(handle, TIMEOUT)
        assert handle.replies[-1].json == {"count": 12, "version": ["1"]}
        await _until(lambda: tron.cache.value("shutter", "version") == ["2"], "keys_ typed")
        assert tron.cache.get("other") == {"version": 1}
    finally:
        await _finish(hub, tron)


# -- start-up requests, reconnect ------------------------------------------------------


@aio_test
async def test_track_sends_keys_getfor_in_batches_now_and_at_connect() -> None:
    hub = ScriptedHub()
    hub.start()
    tron = TronConnection(LOOPBACK, hub.port, commander="tester.tester", **FAST)
    names = [f"key{i}" for i in range(12)]
    assert tron.track("shutter", *names) == []  # not connected: remembered only
    tron.track("hub")  # everything
    hub.responder = lambda c: [f"{c.commander} {c.mid} keys : "]
    try:
        await tron.start(timeout=TIMEOUT)
        got = [await hub.next_command() for _ in range(3)]
        assert [c.actor for c in got] == ["keys"] * 3
        assert [c.text for c in got] == [
            "getFor=shutter " + " ".join(names[:10]),
            "getFor=shutter " + " ".join(names[10:]),
            "getFor=hub",
        ]
        later = tron.track("shutter", "KEY0", "extra")  # KEY0 is already tracked
        assert len(later) == 1
        assert (await hub.next_command()).text == "getFor=shutter extra"
        await asyncio.wait_for(later[0], TIMEOUT)
        assert later[0].succeeded
    finally:
        await _finish(hub, tron)


@aio_test
async def test_reconnect_with_backoff_resends_startup_requests_and_fails_in_flight() -> None:
    hub = ScriptedHub()
    hub.start()
    port = hub.port
    tron = TronConnection(LOOPBACK, port, commander="tester.tester", **FAST)
    states: list[str] = []
    tron.add_state_callback(states.append)
    sent: list[CommandHandle] = []
    tron.add_startup_command("hub", "startNubs tester", on_sent=sent.append)
    tron.track("tester", "temp")
    hub.responder = lambda c: [f"{c.commander} {c.mid} {c.actor} : "] if c.actor != "x" else []
    try:
        await tron.start(timeout=TIMEOUT)
        assert states == [CONNECTING, CONNECTED] and tron.connected
        first = [await hub.next_command() for _ in range(2)]
        assert [(c.actor, c.text) for c in first] == [("hub", "startNubs tester"),
                                                     ("keys", "getFor=tester temp")]
        await asyncio.wait_for(sent[0], TIMEOUT)
        assert sent[0].succeeded

        running = tron.send_command("x", "wait forever")
        await hub.next_command()
        await hub.stop()  # the hub goes away: connection lost, port closed
        await asyncio.wait_for(running, TIMEOUT)
        assert running.failed and running.replies[-1].json == {"error": LOST_CONNECTION}
        await _until(lambda: tron.state != CONNECTED, "disconnect noticed")
        assert DISCONNECTED in states[2:]
        assert tron.send_command("x", "y").failed  # fast failure while down
        await _until(lambda: states.count(CONNECTING) >= 3, "retries while the hub is down")

        hub2 = ScriptedHub(port)  # same port, as a restarted hub
        hub2.responder = hub.responder
        hub2.start()
        try:
            await tron.wait_connected(TIMEOUT)
            assert tron._factory.delay == FAST["initial_delay"]  # backoff reset on connect
            again = [await hub2.next_command() for _ in range(2)]
            assert [(c.actor, c.text) for c in again] == [("hub", "startNubs tester"),
                                                         ("keys", "getFor=tester temp")]
            assert len(sent) == 2
            await asyncio.wait_for(sent[1], TIMEOUT)
            assert states[-1] == CONNECTED
            handle = tron.send_command("x", "after")
            cmd = await hub2.next_command()
            hub2.reply(cmd, ":")
            await asyncio.wait_for(handle, TIMEOUT)
            assert handle.succeeded
        finally:
            await tron.stop()
            await hub2.stop()
    finally:
        await _finish(hub, tron)


@aio_test
async def test_backoff_grows_and_stays_capped() -> None:
    port_owner = ScriptedHub()
    port_owner.start()
    port = port_owner.port
    await port_owner.stop()  # nothing listens on the port now
    tron = TronConnection(LOOPBACK, port, commander="tester.tester",
                          initial_delay=0.01, max_delay=0.08, jitter=0.1)
    attempts: list[str] = []
    tron.add_state_callback(lambda s: attempts.append(s) if s == CONNECTING else None)
    try:
        try:
            await tron.start(timeout=0.5)
        except TimeoutError as exc:
            assert f"{LOOPBACK}:{port}" in str(exc) and "still retrying" in str(exc)
        else:
            raise AssertionError("connected to a closed port")
        await _until(lambda: len(attempts) >= 6, "six attempts")
        delay = tron._factory.delay
        assert 0.08 * 0.5 < delay < 0.08 * 1.6  # grew from 0.01 up to about the cap
    finally:
        await tron.stop()
    count = len(attempts)
    await asyncio.sleep(0.3)
    assert len(attempts) == count  # stop() ends the retries


@aio_test
async def test_start_waits_until_the_hub_comes_up() -> None:
    holder = ScriptedHub()
    holder.start()
    port = holder.port
    await holder.stop()
    tron = TronConnection(LOOPBACK, port, commander="tester.tester", **FAST)
    await tron.start(wait=False)
    assert tron.state in (CONNECTING, DISCONNECTED)
    hub = ScriptedHub(port)
    hub.start()
    try:
        await tron.start(timeout=TIMEOUT)  # a second start() only waits
        assert tron.connected
        await hub.wait_clients()
        assert hub.connections == 1
    finally:
        await _finish(hub, tron)


@aio_test
async def test_stop_fails_running_commands_and_does_not_reconnect() -> None:
    hub, tron = await _started()
    try:
        running = tron.send_command("a", "x")
        await hub.next_command()
        await tron.stop()
        assert running.done() and running.failed
        assert tron.state == DISCONNECTED
        await asyncio.sleep(0.3)
        assert hub.connections == 1 and not hub.clients
        await tron.start(timeout=TIMEOUT)  # can be started again
        await hub.wait_clients()
        assert hub.connections == 2
    finally:
        await _finish(hub, tron)


@aio_test
async def test_startup_command_added_while_connected_is_sent_now() -> None:
    hub, tron = await _started()
    try:
        tron.add_startup_command("hub", "startNubs late")
        assert (await hub.next_command()).text == "startNubs late"
        tron.remove_startup_command("hub", "startNubs late")
        hub.send(f"{tron.commander} 1 hub : ")
    finally:
        await _finish(hub, tron)

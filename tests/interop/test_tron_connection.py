"""TronConnection against the REAL Tron hub (sdss-tron) and a real clu LegacyActor behind it.

The hub and the clu actor are subprocesses started by the fixtures in
tests/support/fixtures_peers.py; the clu actor registers itself with the hub
(``hub startNubs shutter``) before the test starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.core import CommandHandle
from bridge.legacy.tron import CONNECTED, DISCONNECTED, LOST_CONNECTION, TronConnection
from bridge.protocol import HubReply
from bridge.protocol.dictionary import KeywordDictionary
from tests.support.aio import aio_test
from tests.support.fixtures_peers import PeerHandle
from tests.support.tron_hub import TronHub, reply_code

TIMEOUT = 20.0
SHUTTER_DICTIONARY = Path(__file__).resolve().parents[2] / "protocol_specs/dictionaries/shutter.json"


@pytest.fixture
def shutter_on_hub(tron_hub: TronHub, start_clu_shutter: Callable[..., PeerHandle]) -> PeerHandle:
    """The clu shutter actor, connected to the real hub (the hub can command it)."""
    return start_clu_shutter(tron_hub=tron_hub)


def _connection(hub: TronHub, **kwargs: Any) -> TronConnection:
    kwargs.setdefault("commander", "bridge.test")
    return TronConnection(hub.host, hub.port, initial_delay=0.1, max_delay=1.0, **kwargs)


async def _done(handle: CommandHandle) -> CommandHandle:
    return await asyncio.wait_for(handle, TIMEOUT)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@aio_test
async def test_hub_version_unknown_actor_and_hub_broadcasts(tron_hub: TronHub) -> None:
    tron = _connection(tron_hub)
    await tron.start(timeout=TIMEOUT)
    try:
        version = await _done(tron.send_command("hub", "version"))
        assert version.succeeded
        assert [(r.code, r.sender) for r in version.replies] == [(":", "hub")]
        assert isinstance(version.keywords["version"], str) and version.keywords["version"]
        assert tron.cache.value("hub", "version") == version.keywords["version"]

        missing = await _done(tron.send_command("nosuchactor", "status"))
        assert missing.failed
        assert missing.replies[-1].sender == "hub"
        assert "nosuchactor" in missing.keywords["NoTarget"]

        # Hub broadcasts are cached too: the commander list, the command diagnostics.
        assert tron.cache.value("hub", "commanders")
        await _until(lambda: tron.cache.value("cmds", "CmdIn") == ["bridge.test", "nosuchactor",
                                                                   "status"], "CmdIn cached")
        assert tron.commands_in_flight == 0
    finally:
        await tron.stop()


@aio_test
async def test_commands_clu_legacy_actor_through_hub_with_typed_replies_and_cache(
    tron_hub: TronHub, shutter_on_hub: PeerHandle
) -> None:
    dictionary = KeywordDictionary.load(SHUTTER_DICTIONARY)
    tron = _connection(tron_hub, dictionaries={"shutter": dictionary})
    changes: list[dict[str, Any]] = []
    tron.cache.subscribe(lambda actor, changed: changes.append(changed), "shutter")
    await tron.start(timeout=TIMEOUT)
    try:
        status = await _done(tron.send_command("shutter", "status"))
        assert status.succeeded
        assert [r.code for r in status.replies] == [">", "i", ":"]
        assert all(r.sender == "shutter" and r.commander == "bridge.test" for r in status.replies)
        assert status.replies[1].json == {
            "shutter": "closed", "shutter_moves": 0, "open_time": 0.0,
            "limit_switches": [False, True], "motor_current": 0.125,
            "controller": "Bonn shutter v2 (fake)",
        }
        # Typed by the dictionary: echo's words stay strings (untyped, 42 would be a number).
        echo = await _done(tron.send_command("shutter", "echo hello 42 007"))
        assert echo.keywords["echo"] == ["hello", "42", "007"]

        failed = await _done(tron.send_command("shutter", "fail_me"))
        assert failed.failed and failed.keywords["error"] == "fail_me always fails"

        opened = await _done(tron.send_command("shutter", "open"))
        assert opened.succeeded and opened.keywords["shutter"] == "open"
        assert tron.cache.get("shutter", ["shutter", "shutter_moves", "limit_switches"]) == {
            "shutter": "open", "shutter_moves": 1, "limit_switches": [False, True]}
        assert {"shutter": "moving"} in changes and {"shutter": "open", "shutter_moves": 1} in changes
    finally:
        await tron.stop()


@aio_test
async def test_other_commanders_replies_with_our_mid_are_not_ours_but_are_cached(
    tron_hub: TronHub, shutter_on_hub: PeerHandle
) -> None:
    tron = _connection(tron_hub)
    seen: list[HubReply] = []
    tron.add_reply_listener(seen.append)
    await tron.start(timeout=TIMEOUT)
    try:
        ours = tron.send_command("shutter", "slow 1.5")
        assert isinstance(ours.command_id, int)
        with tron_hub.commander(cid="other.person") as other:
            lines = await asyncio.to_thread(
                lambda: other.wait_for(other.send("shutter", "close", mid=ours.command_id)))
            assert reply_code(lines[-1]) == ":"
            lines = await asyncio.to_thread(
                lambda: other.wait_for(other.send("shutter", "open", mid=ours.command_id + 1)))
            assert reply_code(lines[-1]) == ":"
        await _until(lambda: any(r.commander == "other.person" and r.code == ":"
                                 and r.mid == ours.command_id + 1 for r in seen),
                     "the other commander's replies reach us")
        assert not ours.done()  # their ':' for the same mid did not end our command
        assert tron.cache.value("shutter", "shutter") == "open"  # their replies fed our cache
        await _done(ours)
        assert ours.succeeded and ours.keywords["slept"] == 1.5
        assert all(r.commander == "bridge.test" for r in ours.replies)
    finally:
        await tron.stop()


@aio_test
async def test_keys_getfor_fills_the_cache_from_the_hub(
    tron_hub: TronHub, shutter_on_hub: PeerHandle
) -> None:
    # Someone else asks for the status before we connect: only the hub has seen the values.
    await asyncio.to_thread(tron_hub.call, "shutter", "status")
    tron = _connection(tron_hub, commander="late.comer",
                       dictionaries={"shutter": KeywordDictionary.load(SHUTTER_DICTIONARY)})
    await tron.start(timeout=TIMEOUT)
    try:
        assert tron.cache.get("shutter") == {}
        handles = tron.track("shutter", "shutter", "SHUTTER_MOVES", "limit_switches", "nosuch")
        assert len(handles) == 1
        getfor = await _done(handles[0])
        assert getfor.succeeded
        keys_lines = [r for r in getfor.replies if r.sender == "keys_shutter"]
        assert len(keys_lines) == 1
        assert tron.cache.get("shutter") == {
            "shutter": "closed", "shutter_moves": 0, "limit_switches": [False, True]}
        assert getfor.keywords["unmatchedKeys"] == "nosuch"
    finally:
        await tron.stop()


@aio_test
async def test_reconnects_after_hub_restart_and_resends_startup_requests(
    tron_hub: TronHub, shutter_on_hub: PeerHandle
) -> None:
    tron = _connection(tron_hub)
    states: list[str] = []
    tron.add_state_callback(states.append)
    # The hub's new actor link learns the actor's cid from its greeting; a command sent
    # before that is answered under another cid and never matched (a hub race), so the
    # test waits for the greeting after each `startNubs`.
    greetings: list[HubReply] = []
    tron.add_reply_listener(
        lambda r: greetings.append(r) if r.actor == "shutter" and any(
            k.name == "yourUserID" for k in r.keywords) else None)
    startups: list[CommandHandle] = []
    # The restarted hub forgets the actor: our start-up request connects it again.
    tron.add_startup_command("hub", "startNubs shutter", on_sent=startups.append)
    await tron.start(timeout=TIMEOUT)
    try:
        await _done(startups[0])
        assert startups[0].succeeded
        await _until(lambda: len(greetings) == 1, "the actor's greeting through the hub")
        slow = tron.send_command("shutter", "slow 60")
        await _until(lambda: len(slow.replies) >= 1, "slow command started")

        await asyncio.to_thread(tron_hub.restart)
        await _done(slow)
        assert slow.failed and slow.replies[-1].json == {"error": LOST_CONNECTION}
        await tron.wait_connected(TIMEOUT)
        assert DISCONNECTED in states and states[-1] == CONNECTED
        await _until(lambda: len(startups) == 2, "start-up command re-sent")
        await _done(startups[1])
        assert startups[1].succeeded
        await _until(lambda: len(greetings) == 2, "the actor's greeting after the restart")

        status = await _done(tron.send_command("shutter", "status"))
        assert status.succeeded and status.keywords["shutter"] == "closed"
    finally:
        await tron.stop()

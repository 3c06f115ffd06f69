"""ActorLink against a REAL clu LegacyActor (sdss-clu, in a subprocess)."""

import asyncio

from bridge.legacy.actor_link import ActorLink, safe_commander
from tests.support.aio import aio_test


def test_safe_commander_gives_names_clu_and_actorcore_parse():
    assert safe_commander("APO.john", "shutter") == "APO.john"
    assert safe_commander("peers_client.camera", "shutter") == "peersclient.camera"
    assert safe_commander("_x.9y.z", "shutter") == "x.c9y.z"
    assert safe_commander(None, "shutter") == "bridge.shutter"
    assert safe_commander("solo", "shutter") == "solo.shutter"


@aio_test
async def test_commands_replies_and_unsolicited_output(clu_shutter):
    link = ActorLink("shutter", "127.0.0.1", clu_shutter.port)
    unsolicited = []
    link.add_reply_listener(unsolicited.append)
    await link.start(wait=True)
    try:
        assert link.cid == 1  # learnt from the greeting, as tron's grabCID does
        status = await link.send_command("shutter", "status", commander="peers_client.camera")
        assert status.succeeded
        assert [r.code for r in status.replies] == [">", "i", ":"]
        info = status.replies[1].json
        assert info["shutter"] == "closed" and info["limit_switches"] == [False, True]
        assert info["controller"] == "Bonn shutter v2 (fake)"
        failed = await link.send_command("shutter", "fail_me")
        assert failed.failed and failed.replies[-1].json["error"] == "fail_me always fails"
        # Concurrent commands are matched by mid.
        a, b = link.send_command("shutter", "slow 0.2"), link.send_command("shutter", "echo x y")
        assert (await b).succeeded and not a.done()
        assert (await a).succeeded and b.replies[-1].json == {"echo": ["x", "y"]}
        # Another client connecting makes the actor broadcast UserInfo (cid 0): unsolicited.
        _, w = await asyncio.open_connection("127.0.0.1", clu_shutter.port)
        for _ in range(50):
            if any("UserInfo" in r.json for r in unsolicited):
                break
            await asyncio.sleep(0.05)
        w.close()
        assert any(r.commander is None and "UserInfo" in r.json for r in unsolicited)
        assert link.in_flight == 0
    finally:
        await link.stop()


@aio_test
async def test_refusals_are_immediate_failures(clu_shutter):
    link = ActorLink("shutter", "127.0.0.1", clu_shutter.port)
    early = link.send_command("shutter", "status")
    assert early.failed and "not connected" in early.replies[-1].json["error"]
    await link.start(wait=True)
    try:
        injected = link.send_command("shutter", "status\n7 open")
        assert injected.failed and "line terminator" in injected.replies[-1].json["error"]
        wrong = link.send_command("camera", "status")
        assert wrong.failed
        assert (await link.send_command("shutter", "ping")).succeeded
    finally:
        await link.stop()


@aio_test
async def test_actor_killed_mid_command_then_back(clu_shutter):
    link = ActorLink("shutter", "127.0.0.1", clu_shutter.port, max_delay=0.5)
    states = []
    link.add_state_listener(states.append)
    await link.start(wait=True)
    try:
        slow = link.send_command("shutter", "slow 30")
        await asyncio.sleep(0.2)
        clu_shutter.kill()
        await asyncio.wait_for(asyncio.shield(slow._finished), 5)
        assert slow.failed and "Lost connection" in slow.replies[-1].json["error"]
        assert link.in_flight == 0 and not link.connected
        down = link.send_command("shutter", "ping")
        assert down.failed
        await asyncio.get_event_loop().run_in_executor(None, clu_shutter.restart)
        await asyncio.wait_for(link._ready.wait(), 15)
        assert (await link.send_command("shutter", "ping")).succeeded
        assert "connecting" in states and states[-1] == "connected"
    finally:
        await link.stop()

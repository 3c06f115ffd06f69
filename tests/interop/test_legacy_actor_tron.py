"""A bridge LegacyActor among the REAL peers: the Tron hub, clu's TronConnection, opscore.

* The actor registers itself with the real hub (``hub startNubs <name>`` from its own
  TronConnection); the hub connects back, runs its init commands, and relays commands
  from a raw commander and from clu's TronConnection (in-process, same loop).
* Ask and tell through the hub: a bridge camera actor commands a bridge shutter and
  clu's own LegacyActor.
* Directly over a raw socket, every line the actor writes parses with opscore's and
  clu's actor-reply parsers, with the values intended.

The hub's commander client (tests/support/tron_hub.py) is blocking, so it runs in a
thread while the actors keep serving on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bridge.legacy.actor import LegacyActor, command
from bridge.legacy.command import Command
from bridge.legacy.server import IncomingLegacyCommand
from tests.legacy.line_client import LineClient, code_of
from tests.support.aio import aio_test
from tests.support.fixtures_peers import PeerHandle
from tests.support.ports import LOOPBACK, free_port
from tests.support.tron_hub import TronHub, reply_code


class Shutter(LegacyActor):
    """Records (commander, text) of every command it receives."""

    def __init__(self, name: str = "shutter", **kwargs) -> None:
        super().__init__(name, version="1.0.0", **kwargs)
        self.seen: list[tuple[str | None, str]] = []
        self.position = "closed"

    def handle(self, incoming: IncomingLegacyCommand):  # noqa: ANN201
        self.seen.append((incoming.commander, incoming.text))
        return super().handle(incoming)

    @command
    async def open(self, cmd: Command, delay: float = 0.0) -> None:
        cmd.info(shutter="moving")
        await asyncio.sleep(delay)
        self.position = "open"
        cmd.finish(shutter="open", limit_switches=[True, False])

    @command
    async def close(self, cmd: Command) -> None:
        self.position = "closed"
        cmd.finish(shutter="closed")

    @command
    async def status(self, cmd: Command) -> None:
        cmd.info(shutter=self.position, moves=3, current=0.125, ok=True,
                 controller="Bonn shutter v2 (fake)")
        cmd.finish()

    @command(name="fail_me")
    async def fail_me(self, cmd: Command) -> None:
        cmd.fail("fail_me always fails")


def fields(line: str) -> list[str]:
    return line.split(None, 4)


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def registered(hub: TronHub, actor: LegacyActor) -> LegacyActor:
    """Start ``actor`` (port from the hub's config) and wait until the hub's init
    commands reached it."""
    await asyncio.wait_for(actor.start(), 30)
    assert actor.tron is not None and actor.tron.connected
    await until(lambda: bool(actor.users))
    return actor


def shutter_for(hub: TronHub, name: str = "shutter", **kwargs) -> Shutter:
    port = free_port()
    hub.add_actor(name, LOOPBACK, port)
    return Shutter(name, port=port, tron=(hub.host, hub.port), **kwargs)


@aio_test
async def test_actor_registers_and_hub_commanders_reach_it(tron_hub: TronHub) -> None:
    shutter = await registered(tron_hub, shutter_for(tron_hub))
    try:
        assert 'cmdrCid=shutter.shutter, cmdrMid=1, actor=hub, cmd="startNubs shutter"' in (
            tron_hub.hub_log_text())
        # The hub learnt our cid from the greeting and completed its init commands.
        await until(lambda: [t for c, t in shutter.seen if c == ".hub"] ==
                    ["ping", "status", "version"])

        cmdr = await asyncio.to_thread(tron_hub.commander, "raw.user")
        try:
            lines = await asyncio.to_thread(cmdr.call, "shutter", "open")
            assert [reply_code(ln) for ln in lines] == [">", "i", ":"]
            assert lines[-1] == "raw.user 1 shutter : shutter=open; limit_switches=T,F"
            failed = await asyncio.to_thread(cmdr.call, "shutter", "fail_me")
            assert failed[-1] == 'raw.user 2 shutter f error="fail_me always fails"'
            unknown = await asyncio.to_thread(cmdr.call, "shutter", "nosuch")
            assert fields(unknown[-1])[:4] == ["raw.user", "3", "shutter", "f"]
        finally:
            cmdr.close()
        # Tron puts its commander nub's name in the commander slot, not "raw.user".
        assert [t for _c, t in shutter.seen[-3:]] == ["open", "fail_me", "nosuch"]
        assert {c.split(".")[0] for c, _t in shutter.seen[-3:] if c} == {"loopclient"}
    finally:
        await shutter.stop()


@aio_test
async def test_clu_tron_connection_commands_actor_through_hub(tron_hub: TronHub) -> None:
    from clu.legacy.tron import TronConnection as CluTronConnection

    shutter = await registered(tron_hub, shutter_for(tron_hub))
    clu_tron = CluTronConnection("clu.tester", LOOPBACK, tron_hub.port)
    await asyncio.wait_for(clu_tron.start(get_keys=False), 20)
    try:
        assert clu_tron.connected()
        status = clu_tron.send_command("shutter", "status")
        await asyncio.wait_for(status, 20)
        assert status.status.did_succeed
        codes = [r.message_code for r in status.replies]
        assert [c.value for c in codes] == [">", "i", ":"]
        info = status.replies[1]
        assert info.message == {"shutter": ["closed"], "moves": ["3"], "current": ["0.125"],
                                "ok": ["T"], "controller": ["Bonn shutter v2 (fake)"]}
        failed = clu_tron.send_command("shutter", "fail_me")
        await asyncio.wait_for(failed, 20)
        assert failed.status.did_fail
        assert failed.replies[-1].message == {"error": ["fail_me always fails"]}
    finally:
        clu_tron.stop()
        await shutter.stop()


@aio_test
async def test_ask_and_tell_through_the_hub(
    tron_hub: TronHub, start_clu_shutter: Callable[..., PeerHandle]
) -> None:
    shutter = await registered(tron_hub, shutter_for(tron_hub))
    await asyncio.to_thread(start_clu_shutter, name="cluShutter", tron_hub=tron_hub)
    camera = shutter_for(tron_hub, name="camera")
    camera_seen = camera.seen

    @camera.command()
    async def expose(cmd: Command, exptime: float, *, shutter_actor: str = "shutter") -> None:
        """clu's CameraActor: open the shutter, expose, close it."""
        opened = await cmd.send_command(shutter_actor, "open", time_limit=20)
        if opened.failed:
            return cmd.fail("Shutter failed to open")
        cmd.info(text="Exposing", shutter=opened.keywords["shutter"])
        await asyncio.sleep(exptime)
        closed = await cmd.send_command(shutter_actor, "close", time_limit=20)
        cmd.finish(exposure_done=closed.succeeded)

    await registered(tron_hub, camera)
    cmdr = await asyncio.to_thread(tron_hub.commander, "obs.jane")
    try:
        lines = await asyncio.to_thread(cmdr.call, "camera", "expose 0.01", 30)
        assert [reply_code(ln) for ln in lines] == [">", "i", ":"]
        assert lines[-1] == "obs.jane 1 camera : exposure_done=T"
        # The child commands went through the hub under the commander chain
        # <parent commander>.camera (the hub names the parent after its commander nub,
        # and shows the chain in the reply lines every commander receives).
        assert [t for _c, t in shutter.seen if t in ("open", "close")] == ["open", "close"]
        parent = next(c for c, t in camera_seen if t.startswith("expose"))
        child_lines = [ln for ln in cmdr.lines if fields(ln)[2] == "shutter"]
        assert {fields(ln)[0] for ln in child_lines} == {f"{parent}.camera"}, child_lines
        assert [reply_code(ln) for ln in child_lines] == [">", "i", ":", ">", ":"]
        # The same camera commands clu's own LegacyActor.
        lines = await asyncio.to_thread(
            cmdr.call, "camera", "expose 0 --shutter-actor cluShutter", 30)
        assert lines[-1] == "obs.jane 2 camera : exposure_done=T"
        assert 'text="Exposing"; shutter=open' in lines[1]
        # Directly from the actor (commander camera.camera).
        handle = await asyncio.wait_for(camera.send_command("cluShutter", "status"), 20)
        assert handle.succeeded and handle.keywords["shutter"] == "closed"
        assert handle.commander == "camera.camera"
    finally:
        cmdr.close()
        await camera.stop()
        await shutter.stop()


@aio_test
async def test_raw_socket_lines_parse_with_opscore_and_clu() -> None:
    from clu.legacy.types.parser import ActorReplyParser as CluActorReplyParser
    from opscore.protocols.parser import ActorReplyParser

    # opscore's actor-reply header is "commandID userID code": mid first.
    actor = Shutter(mid_first=True)
    async with actor:
        client = await LineClient.connect(actor.port)
        lines = await client.read_greeting()
        await client.send("APO.john 7 status")
        lines += await client.read_until(lambda ln: code_of(ln) == ":")
        await client.send("8 open --delay x")
        lines += await client.read_until(lambda ln: code_of(ln) == "f")
        await client.close()
    for parser in (ActorReplyParser(), CluActorReplyParser()):
        parsed = [parser.parse(line) for line in lines]
        headers = [(int(p.header.commandId), int(p.header.userId), p.header.code) for p in parsed]
        assert headers == [(0, 1, "I"), (0, 0, "I"), (0, 1, "I"), (7, 1, ">"), (7, 1, "I"),
                           (7, 1, ":"), (8, 1, ">"), (8, 1, "F")], lines
        assert [(k.name, list(k.values)) for k in parsed[2].keywords] == [("version", ["1.0.0"])]
        assert [(k.name, list(k.values)) for k in parsed[4].keywords] == [
            ("shutter", ["closed"]), ("moves", ["3"]), ("current", ["0.125"]), ("ok", ["T"]),
            ("controller", ["Bonn shutter v2 (fake)"])]
        assert list(parsed[-1].keywords[0].values)[0].startswith("Bad arguments for 'open'")


def test_example_programs_camera_commands_shutter_via_hub(tron_hub: TronHub, tmp_path) -> None:
    from pathlib import Path

    from tests.support.processes import python_process

    examples = Path(__file__).resolve().parents[2] / "examples"
    procs = []
    try:
        for name in ("shutter", "camera"):
            port = free_port()
            tron_hub.add_actor(name, LOOPBACK, port)
            proc = python_process(examples / f"legacy_{name}.py", "--port", port,
                                  "--tron-port", tron_hub.port, name=f"example-{name}",
                                  log_dir=tmp_path)
            procs.append(proc)
            assert proc.start() == f"READY {name} {LOOPBACK}:{port}"  # after startNubs
        lines = tron_hub.call("camera", "expose 0.01", timeout=30)
        assert [reply_code(ln) for ln in lines] == [">", "i", ":"]
        assert lines[-1].endswith("camera : exptime=0.01; shutter_moves=2")
        lines = tron_hub.call("shutter", "status")
        assert "shutter=closed; shutter_moves=2;" in lines[1]
        assert [proc.stop() for proc in reversed(procs)] == [0, 0]
    finally:
        for proc in reversed(procs):
            proc.stop()

"""Ask and tell: legacy actors commanding other legacy actors (clu's Camera/Shutter pattern).

The commander here is a tiny real one: it talks straight to the other actor's TCP port
(``<commander> <mid> <text>`` out, ``cid mid code keywords`` in, parsed with the bridge's
own parser). Through the real Tron hub: tests/interop/test_legacy_actor_tron.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from bridge.core import CommandHandle, CommandTable, Reply, ReplyCallback
from bridge.legacy.actor import LegacyActor, NoCommanderError, command
from bridge.legacy.command import Command
from bridge.protocol import ProtocolError, parse_actor_reply
from tests.legacy.line_client import LineClient
from tests.support.aio import aio_test
from tests.support.ports import free_port


class DirectCommander:
    """Sends commands to legacy actors over direct TCP connections (one per actor)."""

    def __init__(self) -> None:
        self._links: dict[str, tuple[asyncio.StreamWriter, CommandTable[int]]] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._mids = itertools.count(1)
        self.sent: list[str] = []

    async def connect(self, actor: str, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = parse_actor_reply((await reader.readline()).decode())  # our user id
        table: CommandTable[int] = CommandTable()
        self._links[actor] = (writer, table)
        self._readers.append(asyncio.ensure_future(self._read(actor, first.cid, reader, table)))

    async def close(self) -> None:
        for writer, table in self._links.values():
            table.fail_all("closed")
            writer.close()
        for task in self._readers:
            task.cancel()

    def send_command(self, actor: str, text: str, *, commander: str | None = None,
                     callback: ReplyCallback | None = None,
                     time_limit: float | None = None) -> CommandHandle:
        handle = CommandHandle(actor, text, commander=commander, callback=callback)
        link = self._links.get(actor)
        if link is None:
            handle.fail(f"no connection to {actor}")
            return handle
        writer, table = link
        mid = next(self._mids)
        handle.command_id = mid
        table.add(mid, handle, time_limit)
        line = f"{commander} {mid} {text}"
        self.sent.append(line)
        writer.write(line.encode() + b"\n")
        return handle

    async def _read(self, actor: str, user_id: int, reader: asyncio.StreamReader,
                    table: CommandTable[int]) -> None:
        while raw := await reader.readline():
            try:
                reply = parse_actor_reply(raw.decode())
            except ProtocolError:
                continue
            if reply.cid == user_id:
                table.reply(reply.mid, Reply(reply.code, actor, reply.keywords, None, reply.mid))
        table.fail_all(f"lost connection to {actor}")


class Shutter(LegacyActor):
    def __init__(self) -> None:
        super().__init__("shutter", version="1.0")
        self.position = "closed"
        self.commanders: list[str | None] = []

    @command
    async def open(self, cmd: Command) -> None:
        self.commanders.append(cmd.commander)
        cmd.info(shutter="moving")
        self.position = "open"
        cmd.finish(shutter="open")

    @command
    async def close(self, cmd: Command) -> None:
        self.commanders.append(cmd.commander)
        self.position = "closed"
        cmd.finish(shutter="closed")

    @command
    async def jam(self, cmd: Command) -> None:
        cmd.fail("Shutter jammed")


def camera_actor(commander: DirectCommander | None) -> LegacyActor:
    """clu's CameraActor example, written with this package."""
    camera = LegacyActor("camera", version="1.0", commander=commander)

    @camera.command()
    async def expose(cmd: Command, exptime: float, *, shutter_verb: str = "open") -> None:
        """Open the shutter, expose, close the shutter."""
        opened = await cmd.send_command("shutter", shutter_verb)
        if opened.failed:
            return cmd.fail(f"Shutter failed to open: {opened.keywords.get('error')}")
        cmd.info(text="Exposing", shutter=opened.keywords["shutter"])
        await asyncio.sleep(exptime)
        await cmd.send_command("shutter", "close")
        cmd.finish(exposure_done=True)

    return camera


@aio_test
async def test_camera_commands_shutter() -> None:
    shutter = Shutter()
    commander = DirectCommander()
    camera = camera_actor(commander)
    async with shutter, camera:
        await commander.connect("shutter", shutter.port)
        client = await LineClient.connect(camera.port)
        await client.read_greeting()
        await client.send("APO.john 3 expose 0.01")
        lines = await client.read_reply(3)
        assert lines == ["1 3 > ", '1 3 i text="Exposing"; shutter=open', "1 3 : exposure_done=T"]
        assert shutter.position == "closed"
        # The child commands carry the commander chain <parent commander>.<camera>.
        assert shutter.commanders == ["APO.john.camera", "APO.john.camera"]
        # Without a (hub-acceptable) parent commander: <name>.<name>.
        await client.send("4 expose 0")
        await client.send(".hub 5 expose 0")
        await client.read_reply(4)
        await client.read_reply(5)
        assert shutter.commanders[2:] == ["camera.camera"] * 4
        # A failing child command fails the parent with the child's error.
        assert await client.command("expose 0 --shutter-verb jam", 6) == [
            "1 6 > ", "1 6 f error=\"Shutter failed to open: Shutter jammed\""]
        await client.close()
        await commander.close()


@aio_test
async def test_actor_send_command_handle_and_callback() -> None:
    shutter = Shutter()
    commander = DirectCommander()
    camera = LegacyActor("camera", commander=commander)
    async with shutter, camera:
        await commander.connect("shutter", shutter.port)
        seen: list[Reply] = []
        handle = camera.send_command("shutter", "open", callback=seen.append)
        assert not handle.done()
        assert await handle is handle
        assert handle.succeeded and handle.status.value == "done"
        assert [r.code for r in handle.replies] == [">", "i", ":"] == [r.code for r in seen]
        assert handle.keywords == {"shutter": "open"}
        assert commander.sent[-1] == f"camera.camera {handle.command_id} open"
        failed = await camera.send_command("shutter", "jam")
        assert failed.failed and failed.replies[-1].json == {"error": "Shutter jammed"}
        unknown = await camera.send_command("nobody", "ping")  # this commander's own answer
        assert unknown.failed
        await commander.close()


@aio_test
async def test_no_commander_raises_at_once() -> None:
    actor = LegacyActor("lonely")

    @actor.command()
    async def ask(cmd: Command) -> None:
        await cmd.send_command("other", "ping")

    async with actor:
        with pytest.raises(NoCommanderError, match="no hub connection"):
            actor.send_command("other", "ping")
        client = await LineClient.connect(actor.port)
        await client.read_greeting()
        lines = await client.command("ask", 1)
        assert lines[-1].startswith("1 1 f error=\"Command 'ask' failed: NoCommanderError: "
                                    "Actor lonely cannot command 'other'")
        await client.close()


@aio_test
async def test_unreachable_hub_never_hangs(caplog) -> None:
    actor = LegacyActor("orphan", tron=("127.0.0.1", free_port()), tron_timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="bridge.legacy.actor"):
        await asyncio.wait_for(actor.start(), 10)
    try:
        assert "no answer from the hub" in caplog.text
        assert actor.tron is not None and not actor.tron.connected
        handle = await asyncio.wait_for(actor.send_command("other", "ping"), 5)
        assert handle.failed and "Not connected" in handle.replies[-1].json["error"]
        client = await LineClient.connect(actor.port)  # serving directly all the same
        await client.read_greeting()
        assert (await client.command("ping", 1))[-1] == '1 1 : text="Pong."'
        await client.close()
    finally:
        await asyncio.wait_for(actor.stop(), 10)
    assert actor.tron is None and actor.commander is None

"""An AMQP actor that dies mid-command: the commander fails the command instead of waiting
forever (clu's AMQPClient waits forever)."""

from __future__ import annotations

import asyncio

from bridge.core import CommandHandle
from tests.amqp.helpers import commander
from tests.support.aio import aio_test


@aio_test
async def test_command_fails_when_its_actor_is_killed(amqp_url, start_clu_camera):
    camera = start_clu_camera(amqp_url)
    async with commander(amqp_url, "watcher") as cmdr:
        assert (await asyncio.wait_for(await cmdr.send_command("camera", "ping"), 10)).succeeded
        slow: CommandHandle = await cmdr.send_command("camera", "slow 60")
        await asyncio.sleep(0.5)
        camera.kill()  # SIGKILL: no goodbye, its exclusive queue vanishes with its connection
        await asyncio.wait_for(slow.wait(), 10)
        assert slow.failed and "went away" in slow.error
        assert len(cmdr.running) == 0
        # The next command fails at once (unroutable), the classic clu way.
        again = await cmdr.send_command("camera", "ping")
        await asyncio.wait_for(again.wait(), 10)
        assert again.failed and "Failed routing" in again.error

#!/usr/bin/env python
"""The seed scenario's camera: a clu AMQPActor whose ``expose`` opens and closes a shutter.

The shutter may be any actor: a clu AMQP actor, or a legacy TCP actor that the bridge
serves on AMQP (``lives = "legacy"`` in the bridge config). The camera cannot tell.

    python examples/camera_amqp.py --url amqp://guest:guest@127.0.0.1:5672/

Commands: ``expose EXPTIME`` (opens the shutter, integrates, closes it; the shutter's
replies are echoed as ``shutter=...`` info lines), plus clu's built-ins.
Prints ``READY camera <url>`` when serving; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import warnings

import click
from clu import AMQPActor, command_parser

HERE = os.path.dirname(os.path.abspath(__file__))


async def move_shutter(command, position: str) -> bool:
    """Send ``open``/``close`` to the shutter, echo its replies, return success."""

    def echo(reply) -> None:  # child replies, visible to the camera's commander
        if "shutter" in reply.body:
            command.info(shutter=str(reply.body["shutter"]))

    child = await command.actor.send_command("shutter", position, reply_callback=echo)
    await child
    if child.status.did_fail:
        command.fail(error=f"shutter {position} failed")
        return False
    return True


@command_parser.command()
@click.argument("EXPTIME", type=float)
async def expose(command, exptime: float):
    """Open the shutter, integrate EXPTIME seconds, close the shutter."""
    if not await move_shutter(command, "open"):
        return
    command.info(exposure_state="integrating", exptime=exptime)
    await asyncio.sleep(exptime)
    command.info(exposure_state="reading")
    if not await move_shutter(command, "close"):
        return
    return command.finish(exposure_state="idle", text="Exposure done")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("BRIDGE_AMQP_URL",
                                                    "amqp://guest:guest@127.0.0.1:5672/"))
    ap.add_argument("--name", default="camera")
    args = ap.parse_args()
    import clu

    warnings.simplefilter("ignore", clu.CluWarning)
    actor = AMQPActor(name=args.name, url=args.url, version="1.0.0",
                      schema=os.path.join(HERE, "schemas", "camera.json"))
    await actor.start()
    print(f"READY {args.name} {args.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await actor.timed_commands.stop()
    await actor.connection.stop()


if __name__ == "__main__":
    asyncio.run(main())

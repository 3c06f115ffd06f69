#!/usr/bin/env python
"""A shutter written as a clu AMQPActor: the shutter after its move to AMQP.

Same commands and keywords as the legacy shutter (``open``, ``close``, ``status``), so
clients notice nothing when the bridge routes ``shutter`` here instead of to the
legacy actor, except the new keyword values (``controller="clu AMQP shutter"``).

    python examples/shutter_amqp.py --url amqp://guest:guest@127.0.0.1:5672/
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import warnings

from clu import AMQPActor, command_parser

HERE = os.path.dirname(os.path.abspath(__file__))
STATE = {"shutter": "closed", "moves": 0}


async def _move(command, target: str):
    if STATE["shutter"] != target:
        command.info(shutter="moving")
        await asyncio.sleep(0.05)
        STATE["shutter"] = target
        STATE["moves"] += 1
    return command.finish(shutter=target, shutter_moves=STATE["moves"])


@command_parser.command(name="open")
async def open_(command):
    """Open the shutter."""
    return await _move(command, "open")


@command_parser.command(name="close")
async def close_(command):
    """Close the shutter."""
    return await _move(command, "closed")


@command_parser.command()
async def status(command):
    """Report the shutter state."""
    command.info(shutter=STATE["shutter"], shutter_moves=STATE["moves"],
                 limit_switches=[STATE["shutter"] == "open", STATE["shutter"] == "closed"],
                 motor_current=0.125, controller="clu AMQP shutter")
    return command.finish()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default=os.environ.get("BRIDGE_AMQP_URL",
                                                    "amqp://guest:guest@127.0.0.1:5672/"))
    ap.add_argument("--name", default="shutter")
    args = ap.parse_args()
    import clu

    warnings.simplefilter("ignore", clu.CluWarning)
    actor = AMQPActor(name=args.name, url=args.url, version="2.0.0",
                      schema=os.path.join(HERE, "schemas", "shutter.json"))
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

#!/usr/bin/env python
"""A legacy (Tron/opscore) shutter actor written with bridge.legacy.

Run:  python examples/legacy_shutter.py --port 19990 [--tron-port 6093] [--name shutter]
Prints ``READY <name> 127.0.0.1:<port>`` once serving; SIGINT/SIGTERM stop it.

Talk to it with any line client (``nc 127.0.0.1 19990``)::

    1 status        ->  1 1 >
                        1 1 i shutter=closed; shutter_moves=0; limit_switches=F,T; ...
                        1 1 :
    2 open --delay 1
    3 help open

With ``--tron-port`` it connects to the Tron hub on 127.0.0.1 as commander
``<name>.<name>`` and asks it to connect back (``hub startNubs <name>``); the hub
must know the actor (an ``actors`` entry in its configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bridge.legacy.actor import LegacyActor, command, run, run_sync  # noqa: E402
from bridge.legacy.command import Command  # noqa: E402


class Shutter(LegacyActor):
    """A fake shutter: moves take ``--delay`` seconds."""

    def __init__(self, name: str = "shutter", **kwargs) -> None:
        super().__init__(name, version="1.0.0", **kwargs)
        self.position = "closed"
        self.moves = 0

    async def _move(self, cmd: Command, target: str, delay: float) -> None:
        if self.position == target:
            return cmd.finish(shutter=target, shutter_moves=self.moves,
                              text=f"Shutter already {target}")
        cmd.info(text=f"{'Opening' if target == 'open' else 'Closing'} the shutter")
        cmd.info(shutter="moving")
        await asyncio.sleep(delay)
        self.position = target
        self.moves += 1
        cmd.finish(shutter=target, shutter_moves=self.moves)

    @command
    async def open(self, cmd: Command, delay: float = 0.0) -> None:
        """Open the shutter (the move takes DELAY seconds)."""
        await self._move(cmd, "open", delay)

    @command
    async def close(self, cmd: Command, delay: float = 0.0) -> None:
        """Close the shutter (the move takes DELAY seconds)."""
        await self._move(cmd, "closed", delay)

    @command
    async def status(self, cmd: Command) -> None:
        """Report the shutter status."""
        cmd.info(shutter=self.position, shutter_moves=self.moves,
                 limit_switches=[self.position == "open", self.position == "closed"],
                 motor_current=0.125, controller="Bonn shutter v2 (fake)")
        cmd.finish()

    @command(name="fail_me")
    async def fail_me(self, cmd: Command) -> None:
        """Always fails."""
        cmd.fail("fail_me always fails")

    @command
    async def echo(self, cmd: Command, *words: str) -> None:
        """Echo the words."""
        cmd.finish(echo=list(words))

    @command(timeout=60.0)
    async def slow(self, cmd: Command, seconds: float) -> None:
        """Sleep SECONDS, then finish (at most 60 s)."""
        cmd.info(text=f"sleeping {seconds:g} s")
        await asyncio.sleep(seconds)
        cmd.finish(slept=seconds)


def build_actor(name: str = "shutter", host: str = "127.0.0.1", port: int = 0) -> Shutter:
    """The shutter as a bridge-hosted actor (``lives = "local"``,
    ``spec = "legacy_shutter.py:build_actor"`` in the bridge config)."""
    return Shutter(name, host=host, port=port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="shutter")
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument("--tron-port", type=int, default=None,
                        help="register with the Tron hub on 127.0.0.1:PORT")
    args = parser.parse_args(argv)

    tron = ("127.0.0.1", args.tron_port) if args.tron_port else None
    actor = Shutter(args.name, port=args.port, tron=tron)

    def ready() -> None:
        print(f"READY {actor.name} {actor.host}:{actor.port}", flush=True)

    run_sync(lambda: run(actor, on_started=ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""clu's CameraActor/ShutterActor pattern as bridge.legacy actors: a camera that commands a shutter.

Run next to examples/legacy_shutter.py, both registered with a Tron hub::

    python examples/legacy_shutter.py --port 19990 --tron-port 6093
    python examples/legacy_camera.py --port 19991 --tron-port 6093

(the hub must know both actors). Then ``camera expose 2.5`` opens the shutter, waits
2.5 s and closes it. Prints ``READY <name> 127.0.0.1:<port>`` once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bridge.legacy.actor import LegacyActor, command, run, run_sync  # noqa: E402
from bridge.legacy.command import Command  # noqa: E402


class Camera(LegacyActor):
    def __init__(self, name: str = "camera", shutter: str = "shutter", **kwargs) -> None:
        super().__init__(name, version="1.0.0", **kwargs)
        self.shutter = shutter

    @command
    async def expose(self, cmd: Command, exptime: float) -> None:
        """Open the shutter, expose EXPTIME seconds, close the shutter."""
        opened = await cmd.send_command(self.shutter, "open", time_limit=30)
        if opened.failed:
            return cmd.fail(f"The shutter did not open: {opened.keywords.get('error')}")
        cmd.info(text=f"Exposing {exptime:g} s")
        await asyncio.sleep(exptime)
        closed = await cmd.send_command(self.shutter, "close", time_limit=30)
        if closed.failed:
            return cmd.fail("The shutter did not close.")
        cmd.finish(exptime=exptime, shutter_moves=closed.keywords.get("shutter_moves"))


def build_actor(name: str = "camera", host: str = "127.0.0.1", port: int = 0) -> Camera:
    """The camera as a bridge-hosted actor (``lives = "local"``, ``spec = "legacy_camera.py:build_actor"``).

    Hosted in the bridge, it commands the shutter through the bridge: wherever the
    routing table says the shutter lives, or over AMQP.
    """
    return Camera(name, host=host, port=port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="camera")
    parser.add_argument("--shutter", default="shutter", help="name of the shutter actor")
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument("--tron-port", type=int, required=True,
                        help="the Tron hub on 127.0.0.1:PORT")
    args = parser.parse_args(argv)

    camera = Camera(args.name, args.shutter, port=args.port, tron=("127.0.0.1", args.tron_port))
    run_sync(lambda: run(camera, on_started=lambda: print(
        f"READY {camera.name} {camera.host}:{camera.port}", flush=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The relay benchmark's legacy actor written with :mod:`bridge.legacy.actor`.

``python -m bridge.bench.peers.our_shutter --port P [--name ourshutter]``: ``ping``
(built in) and ``spam N`` (N ``i spam_index=k`` lines, then ``: spam_count=N``), as
:mod:`.clu_shutter`, so the two legacy actors can be compared behind the bridge.
"""

from __future__ import annotations

import argparse
import sys

from ...legacy.actor import LegacyActor, run, run_sync
from ...legacy.command import Command
from ._common import LOOPBACK, announce_ready


def build(name: str, port: int) -> LegacyActor:
    actor = LegacyActor(name, host=LOOPBACK, port=port, version="1.0.0")

    @actor.command()
    async def spam(cmd: Command, n: int) -> None:
        """Emit N info replies, then finish."""
        for index in range(n):
            cmd.info(spam_index=index)
        cmd.finish(spam_count=n)

    return actor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="ourshutter")
    args = ap.parse_args(argv)
    actor = build(args.name, args.port)
    run_sync(lambda: run(actor, on_started=lambda: announce_ready(
        actor.name, f"{LOOPBACK}:{actor.port}")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real clu ``LegacyActor`` for the relay benchmark: ``ping`` (clu's) and ``spam N``.

``python -m bridge.bench.peers.clu_shutter --port P [--name shutter]`` listens on
127.0.0.1:P and prints ``READY <name> 127.0.0.1:P``. ``spam N`` writes N lines
``i spam_index=k``, then ``: spam_count=N`` (clu validates them against
:data:`._common.SPAM_SCHEMA`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._common import (
    LOOPBACK,
    SPAM_SCHEMA,
    announce_ready,
    ignore_cancellations,
    quiet_clu,
    require_clu,
    wait_for_stop_signal,
)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="shutter")
    args = ap.parse_args(argv)
    require_clu()
    import click
    from clu import command_parser
    from clu.legacy import LegacyActor

    @command_parser.command()
    @click.argument("N", type=int)
    async def spam(command, n: int):  # type: ignore[no-untyped-def]
        """Emit N info replies, then finish."""
        for index in range(n):
            command.info(spam_index=index)
        return command.finish(spam_count=n)

    quiet_clu()
    actor = LegacyActor(args.name, LOOPBACK, args.port, version="1.0.0", log_dir=None,
                         schema=SPAM_SCHEMA)
    await actor.start(get_keys=False, start_nubs=False)
    announce_ready(args.name, f"{LOOPBACK}:{args.port}")
    try:
        await wait_for_stop_signal()
    finally:
        ignore_cancellations()
        await actor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""A real clu ``AMQPActor`` for the relay benchmark: ``ping`` (clu's) and ``spam N``.

``python -m bridge.bench.peers.clu_camera --url amqp://... [--name camera]``
prints ``READY <name> <url>`` once it consumes its command queue. ``spam N`` emits
N ``i {"spam_index": k}`` replies, then ``: {"spam_count": N}``; clu validates each
against a small schema (:data:`._common.SPAM_SCHEMA`), as it does for any real actor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._common import (
    SPAM_SCHEMA,
    announce_ready,
    ignore_cancellations,
    quiet_clu,
    require_clu,
    wait_for_stop_signal,
)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="camera")
    args = ap.parse_args(argv)
    require_clu()
    import click
    from clu import AMQPActor, command_parser

    @command_parser.command()
    @click.argument("N", type=int)
    async def spam(command, n: int):  # type: ignore[no-untyped-def]
        """Emit N info replies, then finish."""
        for index in range(n):
            command.info(spam_index=index)
        return command.finish(spam_count=n)

    quiet_clu()
    actor = AMQPActor(name=args.name, url=args.url, version="1.0.0", log_dir=None,
                      schema=SPAM_SCHEMA)
    await actor.start()
    announce_ready(args.name, args.url)
    try:
        await wait_for_stop_signal()
    finally:
        ignore_cancellations()
        await actor.timed_commands.stop()
        await actor.connection.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""A real clu shutter for the migration benchmark, legacy or AMQP: ``whoami`` and ``slow S``.

``python -m bridge.bench.peers.migrate_shutter --side legacy --port P [--tron-port T]``
runs a clu ``LegacyActor`` on 127.0.0.1:P (with ``--tron-port``, it also connects to a
Tron hub there and asks it to connect back: ``hub startNubs``);
``python -m bridge.bench.peers.migrate_shutter --side amqp --url amqp://...`` runs a clu
``AMQPActor``. Both print ``READY <name> <address>`` once they serve. ``whoami`` answers
``: me="<side>"`` (so a client sees which implementation served it), ``slow S`` sleeps S
seconds, then answers ``: me="<side>"; slept=S``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._common import (
    LOOPBACK,
    announce_ready,
    ignore_cancellations,
    quiet_clu,
    require_clu,
    wait_for_stop_signal,
)

#: The replies' keywords, as clu validates them (it adds its built-in ones).
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"me": {"type": "string"}, "slept": {"type": "number"}},
    "additionalProperties": False,
}


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", choices=("legacy", "amqp"), required=True)
    ap.add_argument("--name", default="shutter")
    ap.add_argument("--port", type=int, default=None, help="legacy: the TCP port")
    ap.add_argument("--tron-port", type=int, default=None, help="legacy: a Tron hub's port")
    ap.add_argument("--url", default=None, help="amqp: the broker")
    args = ap.parse_args(argv)
    if (args.side == "legacy") != (args.port is not None) or (args.side == "amqp") != bool(args.url):
        ap.error("--side legacy needs --port; --side amqp needs --url")
    require_clu()
    import click
    from clu import command_parser

    @command_parser.command()
    async def whoami(command):  # type: ignore[no-untyped-def]
        """Say which implementation answers."""
        return command.finish(me=args.side)

    @command_parser.command()
    @click.argument("SECONDS", type=float)
    async def slow(command, seconds: float):  # type: ignore[no-untyped-def]
        """Sleep SECONDS, then finish."""
        await asyncio.sleep(seconds)
        return command.finish(me=args.side, slept=seconds)

    quiet_clu()
    if args.side == "legacy":
        from clu.legacy import LegacyActor

        actor = LegacyActor(args.name, LOOPBACK, args.port, version="1.0.0", log_dir=None,
                            schema=SCHEMA, tron_host=LOOPBACK if args.tron_port else None,
                            tron_port=args.tron_port)
        await actor.start(get_keys=False, start_nubs=args.tron_port is not None)
        address = f"{LOOPBACK}:{args.port}"
    else:
        from clu import AMQPActor

        actor = AMQPActor(name=args.name, url=args.url, version="1.0.0", log_dir=None,
                          schema=SCHEMA)
        await actor.start()
        address = args.url
    announce_ready(args.name, address)
    try:
        await wait_for_stop_signal()
    finally:
        ignore_cancellations()
        if args.side == "legacy":
            await actor.stop()
        else:
            await actor.timed_commands.stop()
            await actor.connection.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

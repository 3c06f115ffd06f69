"""`bridge tail`: print all traffic (AMQP replies or hub lines) in one readable form."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .connect import add_transport_options, run_client, session
from .render import render_reply


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print all replies as they pass",
                       description="Print every reply seen on AMQP (reply.#) or on a hub "
                                   "port, until interrupted.")
    add_transport_options(p)
    p.add_argument("--actor", action="append", default=[],
                   help="only replies of this actor (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per reply")
    p.add_argument("--count", type=int, default=None, help="stop after N replies")
    p.add_argument("--seconds", type=float, default=None, help="stop after S seconds")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_client(lambda: tail(args))


async def tail(args: argparse.Namespace) -> int:
    colour = sys.stdout.isatty() and not args.json
    done = asyncio.Event()
    seen = 0
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    async with session(args) as s:
        def show(reply) -> None:  # type: ignore[no-untyped-def]
            nonlocal seen
            if args.actor and reply.sender not in args.actor:
                return
            print(render_reply(reply, colour, args.json), flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                done.set()

        s.listen(show)
        print("# listening", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(done.wait(), args.seconds)
        except TimeoutError:
            pass
    return 0

"""`bridge send ACTOR COMMAND...`: one command, replies printed as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .connect import add_transport_options, run_client, session
from .render import render_reply


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="send one command and print its replies",
                       description="Send one command via AMQP (default) or a hub port and "
                                   "print each reply as it arrives. Exit code 0 if the "
                                   "command finished with ':', 1 if it failed, 2 on a usage "
                                   "or connection error.")
    add_transport_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per reply")
    p.add_argument("--timeout", type=float, default=None,
                   help="fail the command after this many seconds")
    p.add_argument("actor")
    p.add_argument("command", nargs="+", help="the command text (verb and arguments)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_client(lambda: send(args))


async def send(args: argparse.Namespace) -> int:
    colour = sys.stdout.isatty() and not args.json
    text = " ".join(args.command)
    async with session(args) as s:
        def show(reply) -> None:  # type: ignore[no-untyped-def]
            print(render_reply(reply, colour, args.json), flush=True)

        handle = s.send_command(args.actor, text, callback=show, time_limit=args.timeout)
        await handle
        await asyncio.sleep(0)
    return 0 if handle.succeeded else 1

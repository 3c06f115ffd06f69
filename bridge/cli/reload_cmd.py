"""`bridge reload`: make a running bridge re-read its configuration file (its control
actor's ``reload``), the same as SIGHUP but without finding the process."""

from __future__ import annotations

import argparse
import sys

from .connect import add_transport_options, run_client, session


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reload", help="re-read a running bridge's configuration file",
                       description="Ask a running bridge (its control actor, named after the "
                                   "bridge) to re-read the configuration file it was started "
                                   "from and apply it, via AMQP or a hub port; the same as "
                                   "sending it SIGHUP. Prints what changed; exit status 0 "
                                   "if the new configuration is in effect, 1 if it was "
                                   "refused (the old one stays), 2 if the bridge cannot be "
                                   "reached.")
    add_transport_options(p)
    p.add_argument("--name", default="bridge", help="the bridge's name (config 'name')")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the answer (default 30)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_client(lambda: reload(args))


async def reload(args: argparse.Namespace) -> int:
    async with session(args) as s:
        handle = await s.send_command(args.name, "reload", time_limit=args.timeout)
    if not handle.succeeded:
        print(f"bridge: reload failed: {handle.error}", file=sys.stderr)
        return 1
    values = handle.keywords
    added, changed, removed = (list(values.get("reloaded") or []) + [0, 0, 0])[:3]
    print(f"reloaded: {values.get('text', 'no change')} "
          f"({added} added, {changed} changed, {removed} removed)")
    return 0

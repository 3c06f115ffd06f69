"""`bridge status`: what a running bridge serves (asks its control actor)."""

from __future__ import annotations

import argparse
import json
import sys

from .connect import add_transport_options, run_client, session


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show what a running bridge serves",
                       description="Ask a running bridge (its control actor, named after the "
                                   "bridge) for its status, via AMQP or a hub port.")
    add_transport_options(p)
    p.add_argument("--name", default="bridge", help="the bridge's name (config 'name')")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_client(lambda: status(args))


async def status(args: argparse.Namespace) -> int:
    async with session(args) as s:
        handle = await s.send_command(args.name, "status", time_limit=15)
    if not handle.succeeded:
        print(f"bridge: status failed: {handle.keywords.get('error', handle.keywords)}",
              file=sys.stderr)
        return 1
    merged = handle.keywords
    actors = [r.json["actorStatus"] for r in handle.replies if "actorStatus" in r.json]
    if args.json:
        print(json.dumps({**{k: v for k, v in merged.items() if k != "actorStatus"},
                          "actors": actors}))
        return 0
    name, version = (merged.get("bridge") or [args.name, "?"])[:2]
    node = f" (node {merged['amqpNode']})" if merged.get("amqpNode") else ""
    print(f"bridge {name} {version}  amqp: {merged.get('amqp')}{node}  "
          f"tron: {merged.get('tron', 'none')}  hub port: {merged.get('hubPort', 'none')}")
    print(f"{'actor':<16} {'lives':<7} {'side':<7} {'state':<12} {'in flight':>9} "
          f"{'commands':>9} {'replies':>8}")
    for a in actors:
        a = list(a) + [""] * (7 - len(a))
        print(f"{a[0]!s:<16} {a[1]!s:<7} {a[2]!s:<7} {a[3]!s:<12} {a[4]!s:>9} {a[5]!s:>9} "
              f"{a[6]!s:>8}")
    for r in handle.replies:
        if "actorProblem" in r.json:
            actor, text = (list(r.json["actorProblem"]) + ["", ""])[:2]
            print(f"  {actor}: not served on AMQP now: {text}")
    return 0

#!/usr/bin/env python
"""A real clu ``LegacyActor`` (sdss-clu, opscore line protocol over TCP) used as a test peer.

Usage: python clu_legacy_shutter.py --port PORT [--name shutter] [--tron-port P]
Listens on 127.0.0.1:PORT and prints ``READY <name> 127.0.0.1:PORT``; SIGTERM/SIGINT
stop it (exit 0). Commands, besides clu's built-ins (ping, version, help, ...):

  open [--delay S] / close [--delay S]
        i text="Opening the shutter"; i shutter=moving; (S s) : shutter=open; shutter_moves=N
  status    i shutter=closed; shutter_moves=0; open_time=0.0; limit_switches=F,T;
            motor_current=0.125; controller="Bonn shutter v2 (fake)"  then :
  fail_me   f error="fail_me always fails"
  echo WORDS...   : echo=w1,w2
  spam N    N lines i spam_index=k, then : spam_count=N
  slow S    i text=...; sleeps S s; : slept=S

Wire format written by clu: ``<userID> <mid> <code> key=value; ...``; input lines are
``[commander] [mid] verb args``. With ``--tron-port P`` the actor also connects to a
hub on 127.0.0.1:P as commander ``<name>.<name>`` and sends clu's own
``hub startNubs <name>`` so the hub connects back (the hub must know the actor).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import click
from clu import command_parser
from clu.legacy import LegacyActor

from peer_common import (
    LOOPBACK,
    SCHEMA_DIR,
    announce_ready,
    ignore_cancellations_from_now_on,
    quiet_clu_warnings,
    wait_for_stop_signal,
)

STATE: dict[str, object] = {"shutter": "closed", "moves": 0, "opened_at": None}


async def _move(command, target: str, delay: float):
    if STATE["shutter"] == target:
        return command.finish(shutter=target, shutter_moves=STATE["moves"],
                              text=f"Shutter already {target}")
    command.info(text=f"{'Opening' if target == 'open' else 'Closing'} the shutter")
    command.info(shutter="moving")
    if delay > 0:
        await asyncio.sleep(delay)
    STATE["shutter"] = target
    STATE["moves"] = int(STATE["moves"]) + 1
    STATE["opened_at"] = asyncio.get_running_loop().time() if target == "open" else None
    return command.finish(shutter=target, shutter_moves=STATE["moves"])


@command_parser.command(name="open")
@click.option("--delay", type=float, default=0.0, help="Fake move time (s).")
async def open_(command, delay: float = 0.0):
    """Open the shutter."""
    return await _move(command, "open", delay)


@command_parser.command(name="close")
@click.option("--delay", type=float, default=0.0, help="Fake move time (s).")
async def close_(command, delay: float = 0.0):
    """Close the shutter."""
    return await _move(command, "closed", delay)


@command_parser.command()
async def status(command):
    """Report the shutter status with typed keywords."""
    opened = STATE["opened_at"]
    now = asyncio.get_running_loop().time()
    command.info(
        shutter=STATE["shutter"],                                  # string
        shutter_moves=STATE["moves"],                              # int
        open_time=round(now - opened, 3) if opened is not None else 0.0,  # float
        limit_switches=[STATE["shutter"] == "open", STATE["shutter"] == "closed"],
        motor_current=0.125,
        controller="Bonn shutter v2 (fake)",                       # string with spaces
    )
    return command.finish()


@command_parser.command(name="fail_me")
async def fail_me(command):
    """Always fails."""
    return command.fail(error="fail_me always fails")


@command_parser.command()
@click.argument("WORDS", nargs=-1, type=str)
async def echo(command, words):
    """Echo the arguments."""
    return command.finish(echo=list(words))


@command_parser.command()
@click.argument("N", type=int)
async def spam(command, n: int):
    """Emit N info replies, then finish."""
    for index in range(n):
        command.info(spam_index=index)
    return command.finish(spam_count=n)


@command_parser.command()
@click.argument("SECONDS", type=float)
async def slow(command, seconds: float):
    """Sleep SECONDS, then finish."""
    command.info(text=f"sleeping {seconds} s")
    await asyncio.sleep(seconds)
    return command.finish(slept=seconds)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="shutter")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tron-port", type=int, default=None,
                    help="also connect to a Tron hub on 127.0.0.1:PORT")
    ap.add_argument("--no-start-nubs", action="store_true",
                    help="with --tron-port: do not send 'hub startNubs NAME'")
    ap.add_argument("--version-string", default="0.2.0")
    ap.add_argument("--schema", default=os.path.join(SCHEMA_DIR, "shutter.json"))
    ap.add_argument("--log-dir", default=None, help="clu file log dir (default: none)")
    args = ap.parse_args()

    quiet_clu_warnings()
    actor = LegacyActor(
        args.name,
        LOOPBACK,
        args.port,
        tron_host=LOOPBACK if args.tron_port else None,
        tron_port=args.tron_port,
        version=args.version_string,
        log_dir=args.log_dir,
        schema=args.schema,
    )
    await actor.start(get_keys=False, start_nubs=not args.no_start_nubs)
    if args.tron_port and not (actor.tron and actor.tron.connected()):
        print(f"could not connect to Tron on {LOOPBACK}:{args.tron_port}", file=sys.stderr)
        await actor.stop()
        return 2
    tron = f" tron={LOOPBACK}:{args.tron_port}" if args.tron_port else ""
    announce_ready(args.name, f"{LOOPBACK}:{args.port}{tron}")
    try:
        await wait_for_stop_signal()
    finally:
        ignore_cancellations_from_now_on()
        await actor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

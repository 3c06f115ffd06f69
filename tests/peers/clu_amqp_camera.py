#!/usr/bin/env python
"""A real clu ``AMQPActor`` (sdss-clu over RabbitMQ) used as a test peer.

Usage: python clu_amqp_camera.py --url amqp://guest:guest@127.0.0.1:PORT/ [--name camera]
Prints ``READY <name> <url>`` once it consumes its command queue; SIGTERM/SIGINT stop it
(exit 0). Commands, besides clu's built-ins (ping, version, help, get_schema, keyword):

  expose EXPTIME [--no-sleep]  i exposure_state="integrating", exptime=E; i text=...;
                               (sleeps E s) i exposure_state="reading";
                               : exposure_state="idle", text="Exposure done"
  fail_me      i text=...; f error="fail_me always fails"
  status       one i with float, int, bools false/true, bare string, string with
               quotes/commas/semicolons, float/string/int/mixed lists, null; i text; :
  spam N       N replies i spam_index=k, then : spam_count=N
  echo WORDS   : echo=[words]
  levels       one reply per code d, i, w, e (level=...), then : level="done"
  slow S       i text=...; sleeps S s; : slept=S
  bad_keyword  emits a keyword missing from the schema: clu sends an e error reply
               instead, then finishes

clu validates every reply against schemas/camera.json; a keyword missing there becomes
an ``e`` "Failed validating the reply" message, so every keyword used is in the schema.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import click
from clu import AMQPActor, command_parser

from peer_common import (
    SCHEMA_DIR,
    announce_ready,
    ignore_cancellations_from_now_on,
    quiet_clu_warnings,
    wait_for_stop_signal,
)


@command_parser.command()
@click.argument("EXPTIME", type=float)
@click.option("--no-sleep", is_flag=True, help="Do not actually wait EXPTIME.")
async def expose(command, exptime: float, no_sleep: bool = False):
    """Fake exposure: emits exposure_state changes and finishes."""
    command.info(exposure_state="integrating", exptime=exptime)
    command.info(text=f"Starting a {exptime:.1f} s exposure")
    if not no_sleep and exptime > 0:
        await asyncio.sleep(exptime)
    command.info(exposure_state="reading")
    return command.finish(exposure_state="idle", text="Exposure done")


@command_parser.command(name="fail_me")
async def fail_me(command):
    """Always fails."""
    command.info(text="About to fail on purpose")
    return command.fail(error="fail_me always fails")


@command_parser.command()
async def status(command):
    """Emit typed keywords."""
    command.info(
        temperature=-110.25,            # float
        n_exposures=42,                 # int
        shutter_open=False,             # bool
        cooler_on=True,                 # bool
        camera_name="cam1",             # bare string
        comment='a "quoted" string, with commas; and semicolons',
        exptime_range=[0.0, 900.0],     # list of floats
        filters=["g", "r", "i"],        # list of strings
        window=[0, 0, 2048, 2048],      # list of ints
        mixed=[1, 2.5, "three", True],  # mixed list
        last_error=None,                # null
    )
    command.info(text="status done")
    return command.finish()


@command_parser.command()
@click.argument("N", type=int)
async def spam(command, n: int):
    """Emit N info replies, then finish."""
    for index in range(n):
        command.info(spam_index=index)
    return command.finish(spam_count=n)


@command_parser.command()
@click.argument("WORDS", nargs=-1, type=str)
async def echo(command, words):
    """Echo the arguments back."""
    return command.finish(echo=list(words))


@command_parser.command()
async def levels(command):
    """One reply with each non-terminal message code."""
    command.debug(level="debug")
    command.info(level="info")
    command.warning(level="warning")
    command.error(level="error")
    return command.finish(level="done")


@command_parser.command()
@click.argument("SECONDS", type=float)
async def slow(command, seconds: float):
    """Sleep SECONDS, then finish."""
    command.info(text=f"sleeping {seconds} s")
    await asyncio.sleep(seconds)
    return command.finish(slept=seconds)


@command_parser.command(name="bad_keyword")
async def bad_keyword(command):
    """Emit a keyword that is not in the schema, then finish."""
    command.info(not_in_schema=1)
    return command.finish(text="finished after an invalid keyword")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="camera")
    ap.add_argument("--url", required=True, help="AMQP URL of the broker")
    ap.add_argument("--version-string", default="0.1.0")
    ap.add_argument("--schema", default=os.path.join(SCHEMA_DIR, "camera.json"))
    ap.add_argument("--log-dir", default=None, help="clu file log dir (default: none)")
    args = ap.parse_args()

    quiet_clu_warnings()
    actor = AMQPActor(name=args.name, url=args.url, version=args.version_string,
                      log_dir=args.log_dir, schema=args.schema)
    await actor.start()
    announce_ready(args.name, args.url)
    try:
        await wait_for_stop_signal()
    finally:
        ignore_cancellations_from_now_on()
        # Not BaseClient.stop(): that cancels every task and stops the loop.
        await actor.timed_commands.stop()
        await actor.connection.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

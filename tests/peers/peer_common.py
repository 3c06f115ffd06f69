"""Helpers shared by the peer programs in this folder (run as scripts, not imported by tests).

Conventions: bind/connect to 127.0.0.1 only; print one ``READY <name> <address>`` line
(flushed) once serving; exit cleanly with status 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import warnings

LOOPBACK = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "schemas")


def quiet_clu_warnings() -> None:
    """clu warns when a LegacyActor runs without Tron; expected for these peers."""
    import clu

    warnings.simplefilter("ignore", clu.CluWarning)


def announce_ready(name: str, address: str) -> None:
    print(f"READY {name} {address}", flush=True)


async def wait_for_stop_signal() -> None:
    """Return when SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def ignore_cancellations_from_now_on() -> None:
    """Call before stopping an actor: clu cancels its connection tasks on stop, and the
    exception handler clu installs re-raises each CancelledError as log noise."""
    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

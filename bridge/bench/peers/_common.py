"""Helpers shared by the benchmark peer programs."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import sys
import warnings

LOOPBACK = "127.0.0.1"
CLU_MISSING = ("sdss-clu is not installed: the relay benchmark runs the real clu peers. "
               "Install the test/bench extra: pip install -e '.[test]'")


#: The JSON schema of the clu peers' replies (clu validates every reply against it and
#: turns a keyword it lacks into an ``e`` reply); clu adds its built-in keywords.
SPAM_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"spam_index": {"type": "integer"}, "spam_count": {"type": "integer"}},
    "additionalProperties": False,
}


def require_clu() -> None:
    """Exit with status 2 and a clear message if sdss-clu cannot be imported."""
    if importlib.util.find_spec("clu") is None:
        print(CLU_MISSING, file=sys.stderr)
        raise SystemExit(2)


def quiet_clu() -> None:
    """clu warns when a LegacyActor runs without Tron: expected here."""
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


def ignore_cancellations() -> None:
    """clu cancels its own tasks when it stops; do not print those as errors."""
    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

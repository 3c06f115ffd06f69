"""Helpers shared by the benchmark peer programs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import IO, Any

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


def answers_on_stdout() -> IO[str]:
    """The real stdout, kept for the JSON answer lines; anything else the process prints
    (the libraries' output) goes to stderr from now on."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return answers


async def serve_requests(answer: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                         requests: IO[str], answers: IO[str]) -> None:
    """One JSON request per line of ``requests``, one JSON answer line each on
    ``answers``: ``answer(request)``'s dict with ``"ok": true``, or ``{"ok": false,
    "error": ...}`` if it raised. Returns at ``{"op": "quit"}`` or the end of input."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, requests.readline)
        if not line.strip():
            if not line:
                return
            continue
        request = json.loads(line)
        if request.get("op") == "quit":
            return
        try:
            reply = await answer(request)
            reply["ok"] = True
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(reply) + "\n")
        answers.flush()

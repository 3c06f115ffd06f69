"""A real clu ``AMQPClient`` that times commands on request (the relay benchmark's AMQP side).

``python -m bridge.bench.peers.clu_client --url amqp://... [--name relaybench]``
prints ``READY <name> <url>`` once connected, then reads one JSON request per line
on stdin and answers each with one JSON line on stdout (anything else the process
prints goes to stderr):

* ``{"op": "round_trips", "actor": A, "n": N, "command": "ping"}`` -> ``{"ok": true,
  "samples_ms": [...]}``: N commands one after the other, each timed from
  ``send_command`` to its terminal reply;
* ``{"op": "stream", "actor": A, "n": N}`` -> ``{"ok": true, "replies": R, "seconds": S}``:
  one ``spam N`` timed from send to ``:``, R = replies received for it;
* ``{"op": "command", "actor": A, "text": T}`` -> ``{"ok": true, "body": {...}}``: one
  command, the body of its terminal reply;
* ``{"op": "quit"}`` (or end of input): disconnect and exit.

A failed command or a timeout answers ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from ._common import (
    answers_on_stdout,
    ignore_cancellations,
    quiet_clu,
    require_clu,
    serve_requests,
)

TIMEOUT = 60.0


async def _command(client: Any, actor: str, text: str) -> Any:
    cmd = await asyncio.wait_for(client.send_command(actor, text), TIMEOUT)
    if not cmd.status.did_succeed:
        last = cmd.replies[-1].message if cmd.replies else None
        raise RuntimeError(f"{actor} {text!r} -> {cmd.status.name}: {last}")
    return cmd


async def _round_trips(client: Any, actor: str, n: int, command: str) -> dict[str, Any]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await _command(client, actor, command)
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"samples_ms": samples}


async def _stream(client: Any, actor: str, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    cmd = await _command(client, actor, f"spam {n}")
    seconds = time.perf_counter() - t0
    if len(cmd.replies) < n + 1:
        raise RuntimeError(f"{actor} spam {n}: only {len(cmd.replies)} replies")
    return {"replies": len(cmd.replies), "seconds": seconds}


async def answer(client: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request (see the module's docstring)."""
    op = request.get("op")
    if op == "round_trips":
        return await _round_trips(client, request["actor"], int(request["n"]),
                                  request.get("command", "ping"))
    if op == "stream":
        return await _stream(client, request["actor"], int(request["n"]))
    if op == "command":
        cmd = await _command(client, request["actor"], str(request["text"]))
        return {"body": cmd.replies[-1].message}
    raise ValueError(f"unknown op {op!r}")


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="relaybench")
    args = ap.parse_args(argv)
    answers = answers_on_stdout()
    require_clu()
    from clu import AMQPClient

    quiet_clu()
    client = AMQPClient(name=args.name, url=args.url, log_dir=None)
    await asyncio.wait_for(client.start(), 30)
    answers.write(f"READY {args.name} {args.url}\n")
    answers.flush()
    try:
        await serve_requests(lambda request: answer(client, request), sys.stdin, answers)
    finally:
        ignore_cancellations()
        await client.connection.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

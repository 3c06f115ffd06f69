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
import json
import os
import sys
import time
from typing import Any

from ._common import ignore_cancellations, quiet_clu, require_clu

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


async def serve(client: Any, requests: Any, answers: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, requests.readline)
        if not line.strip():
            if not line:
                return
            continue
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "quit":
                return
            if op == "round_trips":
                answer = await _round_trips(client, request["actor"], int(request["n"]),
                                            request.get("command", "ping"))
            elif op == "stream":
                answer = await _stream(client, request["actor"], int(request["n"]))
            elif op == "command":
                cmd = await _command(client, request["actor"], str(request["text"]))
                answer = {"body": cmd.replies[-1].message}
            else:
                raise ValueError(f"unknown op {op!r}")
            answer["ok"] = True
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", default="relaybench")
    args = ap.parse_args(argv)
    # Our answers own the real stdout; everything else printed goes to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    require_clu()
    from clu import AMQPClient

    quiet_clu()
    client = AMQPClient(name=args.name, url=args.url, log_dir=None)
    await asyncio.wait_for(client.start(), 30)
    answers.write(f"READY {args.name} {args.url}\n")
    answers.flush()
    try:
        await serve(client, sys.stdin, answers)
    finally:
        ignore_cancellations()
        await client.connection.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

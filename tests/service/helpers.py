"""Helpers of the service tests: HTTP GETs and the `bridge` command, without blocking the loop."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0


async def http_get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """``GET path`` (HTTP/1.0): status, headers (lower-case names), body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(status_line.split()[1]), headers, body


async def http_json(port: int, path: str) -> tuple[int, Any]:
    status, _headers, body = await http_get(port, path)
    return status, json.loads(body)


async def bridge_cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """Run ``python -m bridge.cli.main ARGS`` (this checkout) as a child process; the event
    loop keeps running meanwhile (the bridge under test lives on it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BRIDGE_AMQP_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli.main", *args, cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


async def wait_until(predicate: Any, timeout: float = WAIT, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)

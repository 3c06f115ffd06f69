"""Helper programs the bridge starts once its broker is up (``[processes.<name>]``).

Each gets ``BRIDGE_AMQP_URL`` (and ``BRIDGE_HUB_PORT`` when a hub port is configured) in
its environment, runs in the configuration file's folder, has its output logged line by
line under ``bridge.process.<name>``, and is stopped (SIGTERM, then SIGKILL) when the
bridge stops. ``{python}`` in a command stands for the bridge's own interpreter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class ManagedProgram:
    """One helper program."""

    def __init__(self, name: str, command: Sequence[str], cwd: Path | None,
                 env: Mapping[str, str]) -> None:
        self.name = name
        self.command = [sys.executable if part == "{python}" else part for part in command]
        self.cwd = cwd
        self.env = {**os.environ, **env}
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=self.cwd, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
        self._reader = asyncio.ensure_future(self._log_output())
        log.info("started %s (pid %d): %s", self.name, self.process.pid, " ".join(self.command))

    async def stop(self, timeout: float = 5.0) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout)
        except (ProcessLookupError, TimeoutError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=1)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the program's ``READY`` line (the convention of our examples)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._ready.is_set():
            if self.process is not None and self.process.returncode is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode}")
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name} did not print READY within {timeout:g} s")
            try:
                await asyncio.wait_for(self._ready.wait(), 0.2)
            except TimeoutError:
                pass

    @property
    def _ready(self) -> asyncio.Event:
        if not hasattr(self, "_ready_event"):
            self._ready_event = asyncio.Event()
        return self._ready_event

    async def _log_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        out = logging.getLogger(f"bridge.process.{self.name}")
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip()
            if text.startswith("READY"):
                self._ready.set()
            out.info("%s", text)
        log.info("%s exited with status %s", self.name, await self.process.wait())

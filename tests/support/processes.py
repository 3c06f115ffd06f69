"""Run helper programs (peers, the hub, the bridge) as subprocesses for tests.

A :class:`ManagedProcess` is started in its own session (so signals reach it and its
children as one process group), writes stdout and stderr to one log file, and counts as
started when it prints a line beginning with ``READY`` (configurable). ``stop()`` sends
SIGTERM and escalates to SIGKILL; ``kill()`` is an immediate SIGKILL for fault tests.
Where ``setpriv`` exists the child also gets SIGKILL if the test process dies, and an
``atexit`` hook stops whatever is still running, so no test leaks processes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0

_live: set[ManagedProcess] = set()  # started and not yet stopped/killed


class ProcessStartError(RuntimeError):
    """The program exited or stayed silent instead of printing its READY line."""


class ManagedProcess:
    """One external program, started on demand, with its output in ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path | str,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_prefix: str = "READY",
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        die_with_parent: bool = True,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.cwd = str(cwd) if cwd is not None else None
        self.ready_prefix = ready_prefix
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self.ready_line: str | None = None
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the current (or last) run, None before the first start."""
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        """True while the program has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last run (negative = killed by that signal), None if running."""
        return self._popen.poll() if self._popen else None

    def log_text(self) -> str:
        """Whole log file (all runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the log file."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- life cycle ----------------------------------------------------------------------

    def start(self, ready_timeout: float | None = None) -> str:
        """Start the program and wait for its READY line; return that line.

        Raises :class:`ProcessStartError` (with the log tail) if the program exits first
        or stays silent longer than ``ready_timeout`` seconds; the program is then killed.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"=== start #{self.starts}: {' '.join(self.argv)}\n".encode())
            offset = log.tell()
            self._popen = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self.cwd,
                start_new_session=True,
            )
        _live.add(self)
        self.ready_line = None
        self.ready_line = self._wait_ready(offset, ready_timeout or self.ready_timeout)
        return self.ready_line

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` s; return the exit status."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout or self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._note(f"did not exit {timeout or self.stop_timeout} s after SIGTERM: SIGKILL")
                self._signal_group(signal.SIGKILL)
                self._popen.wait(DEFAULT_STOP_TIMEOUT)
        self._signal_group(signal.SIGKILL)  # leftover children of the group, if any
        _live.discard(self)
        return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the process group at once (crash simulation); return the exit status."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._note("kill(): SIGKILL")
            self._signal_group(signal.SIGKILL)
            self._popen.wait(DEFAULT_STOP_TIMEOUT)
        self._signal_group(signal.SIGKILL)
        _live.discard(self)
        return self._popen.returncode

    def restart(self, ready_timeout: float | None = None) -> str:
        """``stop()`` then ``start()``; return the new READY line."""
        self.stop()
        return self.start(ready_timeout)

    # -- internals -----------------------------------------------------------------------

    def _command(self) -> list[str]:
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        if setpriv and sys.platform.startswith("linux"):
            return [setpriv, "--pdeathsig", "KILL", "--", *self.argv]
        return list(self.argv)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if self.env:
            env.update(self.env)
        return env

    def _wait_ready(self, offset: int, timeout: float) -> str:
        assert self._popen is not None
        deadline = time.monotonic() + timeout
        while True:
            line = self._find_ready_line(offset)
            if line is not None:
                return line
            rc = self._popen.poll()
            if rc is not None:
                line = self._find_ready_line(offset)  # printed just before exiting?
                if line is not None:
                    return line
                _live.discard(self)
                raise ProcessStartError(self._failure(f"exited with status {rc} before READY"))
            if time.monotonic() >= deadline:
                self.kill()
                raise ProcessStartError(self._failure(f"no READY line within {timeout} s"))
            time.sleep(0.03)

    def _find_ready_line(self, offset: int) -> str | None:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            data = log.read().decode(errors="replace")
        for line in data.splitlines(keepends=True):
            if line.startswith(self.ready_prefix) and line.endswith("\n"):
                return line.strip()
        return None

    def _failure(self, why: str) -> str:
        return (
            f"{self.name} {why}\n  command: {' '.join(self.argv)}\n  log: {self.log_path}\n"
            f"--- last lines of the log ---\n{self.log_tail()}"
        )

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _note(self, text: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"=== {text}\n".encode())

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} running={self.running}>"


def python_process(
    script: Path | str, *args: object, name: str, log_dir: Path | str, **kwargs: object
) -> ManagedProcess:
    """A :class:`ManagedProcess` running ``script`` with this interpreter (the venv's)."""
    argv = [sys.executable, str(script), *(str(a) for a in args)]
    return ManagedProcess(argv, name=name, log_dir=log_dir, **kwargs)  # type: ignore[arg-type]


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        try:
            proc.stop(timeout=3.0)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass

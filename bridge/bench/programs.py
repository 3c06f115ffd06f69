"""What every benchmark needs to run peers as separate processes: start them in their
own session (killed with the benchmark if it dies), wait for their READY line, talk to
them over a pipe, stop them, and read their CPU time and memory from ``/proc``."""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

#: Set in every peer's environment to the benchmark's state directory (to find leftovers).
STATE_VARIABLE = "BRIDGE_BENCH_STATE"


class BenchError(RuntimeError):
    """A peer did not start, a command failed, or a prerequisite is missing."""


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGKILL if the benchmark process dies without cleaning up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``module`` with this interpreter.

    ``-P``: the working directory is not put first on ``sys.path``, so the child imports
    this package from where :func:`child_environment` says (``PYTHONPATH``), also when
    it is started from another checkout's directory (an A/B of two trees)."""
    return [sys.executable, "-P", "-m", module, *args]


def child_environment(state: Path | None = None) -> dict[str, str]:
    """The children import this very package (also from a checkout), print unbuffered,
    and carry ``STATE_VARIABLE`` (when ``state`` is given)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if state is not None:
        env[STATE_VARIABLE] = str(state)
    return env


@contextmanager
def state_dir(log_dir: str | os.PathLike[str] | None, prefix: str) -> Iterator[Path]:
    """Where the peers' logs go: ``log_dir`` (created, kept), else a temporary directory
    (removed afterwards)."""
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        yield Path(log_dir)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def start_private_broker(stack: ExitStack, node_prefix: str, say: Callable[[str], Any]) -> str:
    """Start a private RabbitMQ on 127.0.0.1 (removed when ``stack`` closes); its URL."""
    return private_broker(stack, node_prefix, say).url


def private_broker(stack: ExitStack, node_prefix: str, say: Callable[[str], Any]) -> Any:
    """Start a private RabbitMQ on 127.0.0.1 (removed when ``stack`` closes); the
    :class:`~bridge.service.broker.RabbitMQBroker` (its ``url``, its ``node``)."""
    from ..service.broker import BrokerError, RabbitMQBroker, rabbitmq_available

    if not rabbitmq_available():
        raise BenchError("rabbitmq-server is not installed (Debian: apt-get install "
                         "rabbitmq-server); the benchmark runs its own private broker")
    say("starting a private RabbitMQ broker")
    broker = RabbitMQBroker(node_prefix=node_prefix)
    stack.callback(broker.cleanup)
    try:
        broker.start()
    except BrokerError as exc:
        raise BenchError(str(exc)) from None
    return broker


class Program:
    """A peer program in its own session, output in ``<log_dir>/<name>.log``.

    ``pipe=True`` keeps stdin/stdout as pipes (request/answer lines) and sends only
    stderr to the log; the READY line is then read from stdout.
    """

    def __init__(self, name: str, argv: list[str], log_dir: Path, pipe: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self.pipe = pipe
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE if self.pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.pipe else log, stderr=log,
                start_new_session=True, env=self.env,
                preexec_fn=die_with_parent if sys.platform == "linux" else None)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_text()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no log)"

    def _failed(self, why: str) -> BenchError:
        return BenchError(f"{self.name}: {why}\n--- {self.log_path} ---\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 60.0, ready_file: Path | None = None) -> str:
        """Wait for the READY line (or for ``ready_file`` to exist); return it."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise self._failed(f"exited with status {self.popen.returncode} before READY")
            if time.monotonic() > deadline:
                raise self._failed(f"not ready after {timeout:g} s")
            if ready_file is not None:
                if ready_file.exists():
                    return ready_file.read_text()
            elif self.pipe:
                assert self.popen.stdout is not None
                if select.select([self.popen.stdout], [], [], 0.1)[0]:
                    line = self.popen.stdout.readline().decode(errors="replace")
                    if line.startswith("READY"):
                        return line.strip()
                continue
            else:
                for line in self.log_text().splitlines():
                    if line.startswith("READY"):
                        return line
            time.sleep(0.05)

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one JSON request line (``pipe=True``) and return the JSON answer."""
        assert self.popen is not None and self.popen.stdin and self.popen.stdout
        self.popen.stdin.write(json.dumps(payload).encode() + b"\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise self._failed("exited instead of answering")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise BenchError(f"{self.name}: {payload} failed: {answer.get('error')}")
        return answer

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the program's process group; SIGKILL it after ``timeout`` s."""
        p = self.popen
        if p is None or p.poll() is not None:
            return
        if self.pipe and p.stdin is not None:
            try:
                p.stdin.write(b'{"op": "quit"}\n')
                p.stdin.close()
                p.wait(5)
                return
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def threads_cpu_ns(pid: int) -> dict[int, int] | None:
    """Nanoseconds on a CPU of each live thread of process ``pid``, by thread id, from
    ``/proc/PID/task/*/schedstat`` (the scheduler's own count, not ``stat``'s 10 ms
    ticks); None if unknown. A thread that ended is missing: compare the thread ids of
    two readings (:func:`cpu_seconds_between`)."""
    out: dict[int, int] = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:  # the thread ended while we read
                continue
    except (OSError, IndexError, ValueError):
        return None
    return out or None


def cpu_seconds_between(before: dict[int, int] | None, after: dict[int, int] | None,
                        ) -> float | None:
    """CPU seconds used between two :func:`threads_cpu_ns` readings, or None when a thread
    of the first is gone from the second (its time would be lost) or a reading is
    missing; the caller falls back to :func:`process_cpu_seconds`."""
    if before is None or after is None or not before.keys() <= after.keys():
        return None
    return (sum(after.values()) - sum(before.values())) / 1e9


#: A measurement starts once the processes it depends on (the peers, the bridge, the
#: broker) together used less than this share of one CPU over :data:`SETTLE_WINDOW`
#: seconds: at rest they use 0-2 %, while clu's clients (every one hears every reply)
#: still work through what a fast stream left in their queues they use up to 160 %.
SETTLE_SHARE = 0.05
#: Seconds of each look at the processes' CPU time while settling.
SETTLE_WINDOW = 0.1
#: Seconds after which a measurement starts anyway.
SETTLE_TIMEOUT = 30.0


def settle(pids: Iterable[int], share: float = SETTLE_SHARE, window: float = SETTLE_WINDOW,
           timeout: float = SETTLE_TIMEOUT) -> tuple[float, bool]:
    """Wait until processes ``pids`` together use less than ``share`` of one CPU over
    ``window`` seconds (a process that ended uses nothing); return (seconds waited,
    whether they settled: False after ``timeout``). Each look takes ``window``."""
    pids = list(pids)
    start = time.monotonic()
    before = {pid: threads_cpu_ns(pid) for pid in pids}
    while True:
        time.sleep(window)
        after = {pid: threads_cpu_ns(pid) for pid in pids}
        used, known = 0.0, True
        for pid in pids:
            if before[pid] is None or after[pid] is None:  # not there (any more)
                continue
            seconds = cpu_seconds_between(before[pid], after[pid])
            if seconds is None:  # a thread ended between the looks: look again
                known = False
                break
            used += seconds
        waited = time.monotonic() - start
        if known and used < share * window:
            return waited, True
        if waited >= timeout:
            return waited, False
        before = after


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of process ``pid``, in kB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field_name} for process {pid}")

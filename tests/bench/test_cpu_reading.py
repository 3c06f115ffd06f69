"""The benchmarks' CPU readings: the scheduler's per-thread nanoseconds, and when they
cannot be used (a thread ended between two readings)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from bridge.bench.programs import (
    SETTLE_TIMEOUT,
    SETTLE_WINDOW,
    cpu_seconds_between,
    process_cpu_seconds,
    settle,
    threads_cpu_ns,
)


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_threads_cpu_ns_counts_this_process_finer_than_clock_ticks() -> None:
    before = threads_cpu_ns(os.getpid())
    assert before is not None and threading.get_native_id() in before
    _spin(0.003)  # less than one 10 ms clock tick of /proc/PID/stat
    after = threads_cpu_ns(os.getpid())
    used = cpu_seconds_between(before, after)
    assert used is not None and 0.003 <= used < 1.0


def _eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Whether ``condition()`` becomes true within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_thread_that_ended_makes_the_reading_unusable() -> None:
    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    before = threads_cpu_ns(os.getpid())
    assert before is not None and worker.native_id in before
    done.set()
    worker.join()
    # Thread.join returns once the thread's Python code is done, a moment before the
    # kernel thread is gone from /proc/self/task: wait for that.
    assert worker.native_id is not None
    assert _eventually(lambda: not os.path.exists(f"/proc/self/task/{worker.native_id}"),
                       timeout=10.0)
    after = threads_cpu_ns(os.getpid())
    assert after is not None and not before.keys() <= after.keys()
    assert cpu_seconds_between(before, after) is None


def test_missing_readings_and_processes() -> None:
    assert cpu_seconds_between(None, {1: 5}) is None
    assert cpu_seconds_between({1: 5}, None) is None
    assert cpu_seconds_between({1: 5}, {1: 2_000_000_005, 2: 1_000_000_000}) == 3.0
    gone = 2 ** 22 + 12345  # above the kernel's default pid_max
    assert threads_cpu_ns(gone) is None and process_cpu_seconds(gone) is None


# -- settling: a measurement starts once the machine is quiet --------------------------------

#: Spins for argv[1] CPU seconds, then sleeps; file argv[2] says when it starts spinning.
_BUSY_THEN_IDLE = """
import sys, time
open(sys.argv[2], "w").write("spinning now")
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
time.sleep(60)
"""


def test_settle_waits_until_a_busy_process_is_idle(tmp_path) -> None:
    spinning = tmp_path / "spinning"
    child = subprocess.Popen([sys.executable, "-c", _BUSY_THEN_IDLE, "0.5", str(spinning)])
    try:
        # Settle from the moment it spins: an interpreter that is still starting (reading
        # its files on a busy machine) can use less than the quiet share of a CPU.
        assert _eventually(spinning.exists)
        waited, quiet = settle([child.pid, os.getpid()], timeout=30.0)
        assert quiet
        # Not before it stopped spinning: by then it has used its 0.5 s. (Judged by its
        # CPU, not by a file it would write after: creating a file can wait on a busy
        # disk for longer than a quiet window, which is quiet.)
        used = cpu_seconds_between({}, threads_cpu_ns(child.pid))
        assert used is not None and used >= 0.5
        assert waited >= SETTLE_WINDOW
    finally:
        child.kill()
        child.wait()


def test_settle_gives_up_after_its_timeout_and_says_so(tmp_path) -> None:
    spinning = tmp_path / "spinning"
    child = subprocess.Popen([sys.executable, "-c", _BUSY_THEN_IDLE, "600", str(spinning)])
    try:
        assert _eventually(spinning.exists)
        waited, quiet = settle([child.pid], timeout=0.5)
        assert not quiet and waited >= 0.5
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_gone_uses_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    waited, quiet = settle([child.pid])
    assert quiet and waited < SETTLE_TIMEOUT

"""The benchmarks' CPU readings: the scheduler's per-thread nanoseconds, and when they
cannot be used (a thread ended between two readings)."""

from __future__ import annotations

import os
import threading
import time

from bridge.bench.programs import cpu_seconds_between, process_cpu_seconds, threads_cpu_ns


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


def test_a_thread_that_ended_makes_the_reading_unusable() -> None:
    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    before = threads_cpu_ns(os.getpid())
    assert before is not None and len(before) >= 2
    done.set()
    worker.join()
    after = threads_cpu_ns(os.getpid())
    assert after is not None and not before.keys() <= after.keys()
    assert cpu_seconds_between(before, after) is None


def test_missing_readings_and_processes() -> None:
    assert cpu_seconds_between(None, {1: 5}) is None
    assert cpu_seconds_between({1: 5}, None) is None
    assert cpu_seconds_between({1: 5}, {1: 2_000_000_005, 2: 1_000_000_000}) == 3.0
    gone = 2 ** 22 + 12345  # above the kernel's default pid_max
    assert threads_cpu_ns(gone) is None and process_cpu_seconds(gone) is None

"""How ``scripts/test.sh`` spreads the suite over two pytest-xdist workers
(:mod:`tests.support.serial_scheduler`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from xdist.scheduler import LoadScopeScheduling

from tests.support.serial_scheduler import (
    SERIAL,
    SERIAL_MODULES,
    SerialAndModules,
    make_scheduler,
    unit_of,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", sorted(SERIAL_MODULES))
def test_serial_module_exists(module: str) -> None:
    """A renamed module would otherwise quietly run alongside the others again."""
    assert (ROOT / module).is_file()


def test_units_of_work() -> None:
    assert unit_of("tests/load/test_load.py::test_ten_thousand_commands_from_120_clients") \
        == SERIAL
    assert unit_of("tests/bench/test_cpu_reading.py::test_x[a::b]") == SERIAL
    assert unit_of("tests/core/test_ids.py::test_allocator") == "tests/core/test_ids.py"
    assert unit_of("tests/core/test_ids.py::TestX::test_y") == "tests/core/test_ids.py"


def test_only_the_plain_n_option_gets_our_scheduler() -> None:
    def config(dist: str) -> SimpleNamespace:
        return SimpleNamespace(getvalue=lambda name: {"dist": dist}[name])

    assert make_scheduler(config("loadfile"), None) is None
    assert make_scheduler(config("each"), None) is None
    assert issubclass(SerialAndModules, LoadScopeScheduling)


def test_two_workers_run_the_serial_modules_on_one_and_each_module_on_one() -> None:
    """A real ``-n 2`` run: every test of the serial modules on one worker, and every
    other module's tests on one worker each."""
    serial = ["tests/bench/test_cpu_reading.py", "tests/bench/test_parse_bench.py"]
    others = ["tests/core/test_ids.py", "tests/core/test_writes.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v",
         *serial, *others], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    workers: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(r"^\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+)", run.stdout,
                                     re.M):
        workers.setdefault(unit_of(nodeid), set()).add(worker)
    assert set(workers) == {SERIAL, *others}, run.stdout[-3000:]
    assert all(len(w) == 1 for w in workers.values()), workers

"""The relay benchmark's round trips: interleaved in blocks, recorded per path over all blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from bridge.bench import relay
from bridge.bench.relay import ROUND_TRIP, Row, _blocks, _measure_round_trips
from tests.bench.fake_peers import SettleCounter


@pytest.mark.parametrize(("count", "blocks", "parts"), [
    (300, 3, [100, 100, 100]), (20, 3, [7, 7, 6]), (2, 3, [1, 1]), (5, 1, [5]), (5, 0, [5]),
])
def test_count_is_split_into_nearly_equal_blocks(count: int, blocks: int,
                                                 parts: list[int]) -> None:
    assert _blocks(count, blocks) == parts


def test_paths_take_turns_block_by_block_and_each_row_covers_all_its_blocks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    cpu_per_path = {"a": 0.001, "c": 0.004}  # seconds of bridge CPU per block

    def round_trips(_peers: Any, path: str, n: int) -> list[float]:
        calls.append((path, n))
        # Path a's third block is slow: its median must still be over all its samples.
        return [9.0 if (path == "a" and len(calls) == 5) else {"a": 2.0, "c": 3.0}[path]] * n

    class Cpu:
        def __init__(self, _peers: Any) -> None:
            pass

        def seconds(self) -> float:
            return cpu_per_path[calls[-1][0]]

    monkeypatch.setattr(relay, "_round_trips", round_trips)
    monkeypatch.setattr(relay, "_BridgeCpu", Cpu)
    rows = {(p, ROUND_TRIP): Row(p, ROUND_TRIP, "ms") for p in ("a", "c")}
    peers = SettleCounter()
    _measure_round_trips(peers, ["a", "c"], 20, rows, 3)  # type: ignore[arg-type]
    assert calls == [("a", 7), ("c", 7), ("a", 7), ("c", 7), ("a", 6), ("c", 6)]
    assert peers.settles == 6  # every block starts on a quiet machine
    a, c = rows["a", ROUND_TRIP], rows["c", ROUND_TRIP]
    assert len(a.samples) == len(c.samples) == 20
    assert a.runs == [2.0] and c.runs == [3.0]  # one value per run: the median of 20
    assert a.bridge_cpu == [pytest.approx(3 * 0.001 / 20 * 1e6)]
    assert c.bridge_cpu == [pytest.approx(3 * 0.004 / 20 * 1e6)]


def test_a_warm_up_measures_the_same_blocks_and_records_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    monkeypatch.setattr(relay, "_round_trips", lambda _p, _path, n: sizes.append(n) or [1.0] * n)
    monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
        "seconds": lambda self: 0.0})())
    _measure_round_trips(SettleCounter(), ["a"], 6, None, 3)  # type: ignore[arg-type]
    assert sizes == [2, 2, 2]


def test_unknown_cpu_in_one_block_makes_the_run_s_cpu_unknown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([0.001, None, 0.001])
    monkeypatch.setattr(relay, "_round_trips", lambda _p, _path, n: [1.0] * n)
    monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
        "seconds": lambda self: next(readings)})())
    rows = {("a", ROUND_TRIP): Row("a", ROUND_TRIP, "ms")}
    _measure_round_trips(SettleCounter(), ["a"], 9, rows, 3)  # type: ignore[arg-type]
    assert rows["a", ROUND_TRIP].bridge_cpu == [] and rows["a", ROUND_TRIP].runs == [1.0]


@pytest.mark.parametrize("bad", [{"runs": 0}, {"count": 0}, {"stream": 0}, {"blocks": 0}])
def test_counts_below_one_are_refused_before_anything_starts(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        relay.run_relay_benchmark(**bad)  # type: ignore[arg-type]


def _sleeping_child() -> subprocess.Popen[str]:
    """A process that has started (its interpreter's start-up CPU spent) and now sleeps."""
    child = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); "
                              "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "up\n"
    return child


def test_every_programs_cpu_is_charged_to_the_path_that_used_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round trip's CPU by program (``Row.cpu_by_process``): the real per-thread
    readings of each program's processes, summed over the path's blocks, per command."""
    def round_trips(_peers: Any, path: str, n: int) -> list[float]:
        if path == "c":  # the legacy client is this process: it works on path c only
            end = time.process_time() + 0.02
            while time.process_time() < end:
                pass
        else:
            time.sleep(0.02)
        return [1.0] * n

    sleeper = _sleeping_child()
    try:
        monkeypatch.setattr(relay, "_round_trips", round_trips)
        monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
            "seconds": lambda self: 0.0})())
        rows = {(p, ROUND_TRIP): Row(p, ROUND_TRIP, "ms") for p in ("a", "c")}
        peers = SettleCounter({"bench": [os.getpid()], "idle": [sleeper.pid]})
        _measure_round_trips(peers, ["a", "c"], 10, rows, 2)  # type: ignore[arg-type]
    finally:
        sleeper.kill()
        sleeper.wait()
    a, c = rows["a", ROUND_TRIP], rows["c", ROUND_TRIP]
    assert set(a.cpu_by_process) == set(c.cpu_by_process) == {"bench", "idle"}
    assert c.cpu_by_process["bench"][0] >= 2 * 0.02 / 10 * 1e6  # 2 blocks of 20 ms, 10 cmds
    assert a.cpu_by_process["bench"][0] < c.cpu_by_process["bench"][0] / 2
    assert c.cpu_by_process["idle"][0] < 100  # µs per command of a sleeping process
    assert c.cpu_us_by_process == {k: v[0] for k, v in c.cpu_by_process.items()}
    assert c.as_dict()["cpu_us_by_process"] == c.cpu_us_by_process
    text = relay.format_relay(relay.RelayResult([a, c], {"runs": 1, "count": 10,
                                                         "stream": 1}, {}))
    assert "CPU per round trip by program" in text and "(c) " in text


def test_a_program_gone_mid_run_leaves_its_cpu_unknown_not_zero(
        monkeypatch: pytest.MonkeyPatch) -> None:
    child = _sleeping_child()

    def round_trips(_peers: Any, _path: str, n: int) -> list[float]:
        child.kill()
        child.wait()
        return [1.0] * n

    monkeypatch.setattr(relay, "_round_trips", round_trips)
    monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
        "seconds": lambda self: 0.0})())
    rows = {("a", ROUND_TRIP): Row("a", ROUND_TRIP, "ms")}
    peers = SettleCounter({"bench": [os.getpid()], "gone": [child.pid]})
    _measure_round_trips(peers, ["a"], 4, rows, 1)  # type: ignore[arg-type]
    assert set(rows["a", ROUND_TRIP].cpu_by_process) == {"bench"}

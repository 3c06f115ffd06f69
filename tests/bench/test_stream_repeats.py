"""The relay benchmark's streams: each path several times per run, path after path in
turn; the run's value is the median rate, the CPU per reply is over all streams."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.bench import relay
from bridge.bench.relay import RAW_STREAM, Row, _measure_streams
from tests.bench.fake_peers import SettleCounter


def test_paths_take_turns_and_a_run_records_the_median_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, bool]] = []
    # seconds per stream of 1,000 replies: e's second stream is slow (a noisy second)
    seconds = {"e": iter([0.1, 0.5, 0.125]), "b-ours": iter([0.2, 0.25, 0.1])}

    def stream(_peers: Any, path: str, n: int, raw: bool = False) -> tuple[int, float]:
        calls.append((path, n, raw))
        return n, next(seconds[path])

    class Cpu:
        def __init__(self, _peers: Any) -> None:
            pass

        def seconds(self) -> float:
            return {"e": 0.0, "b-ours": 0.01}[calls[-1][0]]

    monkeypatch.setattr(relay, "_stream", stream)
    monkeypatch.setattr(relay, "_BridgeCpu", Cpu)
    rows = {(p, RAW_STREAM): Row(p, RAW_STREAM, "replies/s") for p in ("e", "b-ours")}
    peers = SettleCounter()
    _measure_streams(peers, ["e", "b-ours"], RAW_STREAM, 1000, rows, 3)  # type: ignore[arg-type]
    assert [c[0] for c in calls] == ["e", "b-ours"] * 3
    assert all(n == 1000 and raw for _p, n, raw in calls)
    assert peers.settles == 6  # every stream starts on a quiet machine
    assert rows["e", RAW_STREAM].runs == [pytest.approx(8000.0)]  # median of 10k, 2k, 8k
    assert rows["b-ours", RAW_STREAM].runs == [pytest.approx(5000.0)]  # of 5k, 4k, 10k
    assert rows["b-ours", RAW_STREAM].bridge_cpu == [pytest.approx(3 * 0.01 / 3000 * 1e6)]


def test_a_warm_up_streams_once_and_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(relay, "_stream", lambda _p, path, n, raw=False: (
        calls.append(path) or (n, 1.0)))
    monkeypatch.setattr(relay, "_BridgeCpu", lambda _p: type("C", (), {
        "seconds": lambda self: None})())
    _measure_streams(SettleCounter(), ["a", "b"], RAW_STREAM, 10, None, 1)  # type: ignore[arg-type]
    assert calls == ["a", "b"]


def test_streams_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="streams"):
        relay.run_relay_benchmark(streams=0)
